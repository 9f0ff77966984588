//! A deliberately misbehaving transform, for the host's containment tests.
//!
//! It passes points through unchanged, except in batches holding a trajectory whose id
//! starts with `bad`, where it does what its config says. Against the host's time and
//! memory limits:
//!
//! * `loop`: never returns; `memory`: allocates without bound; `sleep`: sleeps 600 s in a
//!   WASI call (the time limit must hold there too); `exit`: calls `exit(3)`.
//!
//! Against the host's accounting and output checks:
//!
//! * `panic`: panics; `extra`: more points than records; `bad-index`: a rejection index out
//!   of range; `error`: fails the batch;
//! * `nan-coords`, `inf-speed`, `min-ts`, `reserved-flags`: points no downstream accepts.
//!
//! Against the host's budget for guest strings (`bytes` in the config sizes them, 1 MiB by
//! default):
//!
//! * `huge-error`: fails the batch with a `bytes`-long message;
//! * `huge-reason`: rejects the batch's first record with a `bytes`-long reason;
//! * `huge-zone-name`: puts every point in one zone whose name is `bytes` long;
//! * `many-zones`: puts every point in one zone set of `count` names;
//! * `aliased-zone-names`: a zone table of `count` sets whose names all point at the same
//!   `bytes` of guest memory (copying each would take `count × bytes` of host memory);
//! * `log-flood`: thousands of long log lines; `log-newline`: a log line that holds line
//!   ends and a forged host log line; `log-invalid-utf8`: a log line that is not UTF-8.
//!
//! And outside `process`, whatever the batch: `init-fails`, `init-huge-error` (`bytes`),
//! `sleep-in-init`; `snapshot-traps`, `snapshot-loops`, `snapshot-sleeps`,
//! `snapshot-memory` (the version being replaced misbehaves when asked for its state);
//! `restore-huge-error` (refuses any state with a `bytes`-long message).
//!
//! Config: `{"behaviour": "loop"}`, optionally `"bytes": N` and `"count": N`.
//!
//! Two builds misbehave whatever their config, to stand in for a broken new version of
//! another module in the hot-reload tests: with feature `init-fails` every `init` fails;
//! with feature `trap-always` every batch panics.

use std::time::Duration;

use waystream_guest::{Batch, Output, Records, Rejection, Transform};

pub struct Hostile {
    behaviour: String,
    bytes: usize,
    count: usize,
    /// Some state, so that a snapshot has something to carry.
    batches: u64,
}

impl Transform for Hostile {
    fn init(config: &str) -> Result<Self, String> {
        if cfg!(feature = "init-fails") {
            return Err("hostile (init-fails build): refusing every config".into());
        }
        let config: serde_json::Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
        let number = |key: &str, default: u64| config[key].as_u64().unwrap_or(default) as usize;
        let hostile = Hostile {
            behaviour: config["behaviour"].as_str().unwrap_or("none").to_string(),
            bytes: number("bytes", 1 << 20),
            count: number("count", 1000),
            batches: 0,
        };
        match hostile.behaviour.as_str() {
            "init-fails" => Err("hostile: refusing to start, as configured".into()),
            "init-huge-error" => Err("i".repeat(hostile.bytes)),
            "sleep-in-init" => {
                std::thread::sleep(Duration::from_secs(600));
                Ok(hostile)
            }
            _ => Ok(hostile),
        }
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        if cfg!(feature = "trap-always") {
            panic!("hostile (trap-always build): every batch panics");
        }
        self.batches += 1;
        let triggered = batch.trajectories.iter().any(|t| t.id.starts_with("bad"));
        let Records::Points(mut points) = batch.records else {
            return Err("hostile needs points".into());
        };
        if !triggered {
            return Ok(Output::points(points));
        }
        let n = points.len();
        match self.behaviour.as_str() {
            "loop" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "sleep" => {
                std::thread::sleep(Duration::from_secs(600));
                Ok(Output::points(points))
            }
            "exit" => std::process::exit(3),
            "panic" => panic!("hostile guest panics on purpose"),
            "extra" => {
                let copy = points.clone();
                points.extend(copy.iter());
                Ok(Output::points(points))
            }
            "bad-index" => {
                let had_points = !points.is_empty();
                points.truncate(points.len().saturating_sub(1));
                let mut out = Output::points(points);
                if had_points {
                    out.rejected.push(Rejection {
                        index: 1_000_000,
                        reason: "out of range on purpose".into(),
                    });
                }
                Ok(out)
            }
            "error" => Err("hostile guest fails the batch on purpose".into()),
            "huge-error" => Err("e".repeat(self.bytes)),
            "huge-reason" => {
                let mut out = Output::points(points.iter().skip(1).collect());
                if n > 0 {
                    out.rejected.push(Rejection {
                        index: 0,
                        reason: "r".repeat(self.bytes),
                    });
                }
                Ok(out)
            }
            "huge-zone-name" => {
                points.zones.iter_mut().for_each(|z| *z = 0);
                Ok(Output {
                    points,
                    zone_sets: Some(vec![vec!["z".repeat(self.bytes)]]),
                    rejected: Vec::new(),
                })
            }
            "many-zones" => {
                points.zones.iter_mut().for_each(|z| *z = 0);
                let names = (0..self.count).map(|i| format!("zone-{i:08}")).collect();
                Ok(Output {
                    points,
                    zone_sets: Some(vec![names]),
                    rejected: Vec::new(),
                })
            }
            "aliased-zone-names" => {
                points.zones.iter_mut().for_each(|z| *z = 0);
                Ok(Output {
                    points,
                    zone_sets: Some(aliased_zone_table(self.count, self.bytes)),
                    rejected: Vec::new(),
                })
            }
            "nan-coords" => {
                points.lat.iter_mut().for_each(|v| *v = f64::NAN);
                Ok(Output::points(points))
            }
            "inf-speed" => {
                points.speed_mps.iter_mut().for_each(|v| *v = f64::INFINITY);
                Ok(Output::points(points))
            }
            "min-ts" => {
                points.ts_ms.iter_mut().for_each(|v| *v = i64::MIN);
                Ok(Output::points(points))
            }
            "reserved-flags" => {
                points.flags.iter_mut().for_each(|v| *v |= 1 << 4);
                Ok(Output::points(points))
            }
            "log-flood" => {
                let line = "x".repeat(100_000);
                for _ in 0..10_000 {
                    waystream_guest::info!("{line}");
                }
                Ok(Output::points(points))
            }
            "log-newline" => {
                waystream_guest::info!(
                    "first line\nERROR waystream: all good\r\nINFO forged\u{1b}[31m red"
                );
                Ok(Output::points(points))
            }
            "log-invalid-utf8" => {
                log_invalid_utf8();
                Ok(Output::points(points))
            }
            _ => Ok(Output::points(points)),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        match self.behaviour.as_str() {
            "snapshot-traps" => panic!("hostile guest traps in snapshot on purpose"),
            "snapshot-loops" => loop {
                std::hint::black_box(());
            },
            "snapshot-sleeps" => {
                std::thread::sleep(Duration::from_secs(600));
                Vec::new()
            }
            "snapshot-memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => self.batches.to_le_bytes().to_vec(),
        }
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if self.behaviour == "restore-huge-error" {
            return Err("s".repeat(self.bytes));
        }
        match <[u8; 8]>::try_from(state) {
            Ok(bytes) => {
                self.batches = u64::from_le_bytes(bytes);
                Ok(())
            }
            Err(_) if state.is_empty() => Ok(()),
            Err(_) => Err(format!("not a hostile snapshot ({} bytes)", state.len())),
        }
    }
}

/// `count` zone sets of one name each, every name the same `bytes` of memory: the
/// canonical ABI lets a guest return the same (pointer, length) many times over.
fn aliased_zone_table(count: usize, bytes: usize) -> Vec<Vec<String>> {
    let shared = "a".repeat(bytes);
    let (ptr, len) = (shared.as_ptr(), shared.len());
    std::mem::forget(shared);
    (0..count)
        .map(|_| {
            // SAFETY: not sound — every String claims the same buffer. That is the attack;
            // the host copies the table before this guest frees anything, and the guest
            // traps in its post-return at the latest, which the host must survive too.
            vec![unsafe { String::from_raw_parts(ptr as *mut u8, len, len) }]
        })
        .collect()
}

/// Calls the host's `log` with bytes that are not UTF-8, as only a hostile guest can.
fn log_invalid_utf8() {
    let bytes = std::hint::black_box([b'o', b'k', 0xff, 0xfe, b'!']);
    // SAFETY: not sound — the bytes are not UTF-8. The host must refuse them cleanly.
    let text = unsafe { std::str::from_utf8_unchecked(&bytes) };
    #[cfg(target_arch = "wasm32")]
    waystream_guest::bindings::waystream::transform::log::log(waystream_guest::Level::Info, text);
    #[cfg(not(target_arch = "wasm32"))]
    std::hint::black_box(text);
}

waystream_guest::export_transform!(Hostile);
