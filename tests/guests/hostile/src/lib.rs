//! A deliberately misbehaving transform, for the host's containment tests.
//!
//! It passes points through unchanged, except in batches holding a trajectory whose id
//! starts with `bad`, where it does what its config says:
//!
//! * `loop`: never returns (the host's time limit must trip);
//! * `memory`: allocates without bound (the memory limit must trip);
//! * `panic`: panics (the trap must be contained);
//! * `extra`: returns more points than it was given;
//! * `bad-index`: rejects a record index that is out of range;
//! * `error`: fails the batch with an error;
//! * `log-flood`: writes thousands of long log lines (the host's log caps must hold).
//!
//! Config: `{"behaviour": "loop"}`; `{"behaviour": "init-fails"}` refuses to start.
//!
//! Two builds misbehave whatever their config, to stand in for a broken new version of
//! another module in the hot-reload tests: with feature `init-fails` every `init` fails;
//! with feature `trap-always` every batch panics.

use waystream_guest::{Batch, Output, Records, Rejection, Transform};

pub struct Hostile {
    behaviour: String,
}

impl Transform for Hostile {
    fn init(config: &str) -> Result<Self, String> {
        if cfg!(feature = "init-fails") {
            return Err("hostile (init-fails build): refusing every config".into());
        }
        let config: serde_json::Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
        let behaviour = config["behaviour"].as_str().unwrap_or("none").to_string();
        if behaviour == "init-fails" {
            return Err("hostile: refusing to start, as configured".into());
        }
        Ok(Hostile { behaviour })
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        if cfg!(feature = "trap-always") {
            panic!("hostile (trap-always build): every batch panics");
        }
        let triggered = batch.trajectories.iter().any(|t| t.id.starts_with("bad"));
        let Records::Points(mut points) = batch.records else {
            return Err("hostile needs points".into());
        };
        if !triggered {
            return Ok(Output::points(points));
        }
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
            "log-flood" => {
                let line = "x".repeat(100_000);
                for _ in 0..10_000 {
                    waystream_guest::info!("{line}");
                }
                Ok(Output::points(points))
            }
            _ => Ok(Output::points(points)),
        }
    }
}

waystream_guest::export_transform!(Hostile);
