//! Hostile guests against the host's budgets: each attack runs a pipeline
//! (parse-plt → the attacker → speed, `memory_mib = 32`, `call_timeout_ms = 1000`) over a
//! paced stream whose third batch the attacker misbehaves on, and checks that the host
//! survives within the memory the README states, dead-letters the batch (or the records)
//! with a capped cause, runs the next batches, balances its accounting, and still swaps a
//! module in afterwards.
//!
//! The attacks run one at a time (a lock): each measures the process's peak RSS from a
//! reset (`/proc/self/clear_refs`), which other tests running beside it would disturb.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use waystream::status::{Outcome, ReloadStatus};
use waystream::{Pipeline, PipelineConfig, Summary};
use waystream_tests::*;

const BATCH: usize = 100;
const BAD_BATCH: u64 = 2;
/// What the README promises for this chain: 80 MB, plus (modules + 1) × memory_mib
/// (32 MiB), plus batch_size × 8 KiB. The base covers the test binary itself (debug
/// build, wasmtime and the compiled modules).
const RSS_BOUND: u64 = 80_000_000 + 4 * (32 << 20) + BATCH as u64 * 8192;
/// The longest cause a dead letter may carry: the 4 KiB budget plus its cut marker, or
/// a cause the host wrote around a capped guest text.
const CAUSE_MAX: usize = 4096 + 200;

static SERIAL: Mutex<()> = Mutex::new(());

/// What one attack run left behind.
struct Run {
    summary: Summary,
    points: Vec<Value>,
    dead: Vec<Value>,
    /// The longest line of the dead-letter file, in bytes.
    longest_letter: usize,
    status: Arc<ReloadStatus>,
    peak_rss: u64,
}

/// Runs parse-plt → `attacker` → speed with the attacker's TOML lines, swaps speed after
/// the bad batch, and stops. `swap_attacker` more versions of the attacker are swapped in
/// too (for the snapshot attacks).
fn attack_with(attacker: &Path, attacker_toml: &str, swap_attacker: u64) -> Run {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    reset_peak_rss();
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    std::fs::create_dir(dir.path().join("unused")).unwrap();
    for name in ["parse-plt", "speed"] {
        std::fs::copy(module(name), modules.join(format!("{name}.wasm"))).unwrap();
    }
    std::fs::copy(attacker, modules.join("attacker.wasm")).unwrap();
    let stage = |name: &str, file: &str, extra: &str| Stage {
        name: name.into(),
        path: modules.join(format!("{file}.wasm")),
        extra: extra.into(),
    };
    let stages = [
        stage("parse-plt", "parse-plt", ""),
        stage("hostile", "attacker", attacker_toml),
        stage("speed", "speed", ""),
    ];
    let config_path = dir.path().join("pipeline.toml");
    std::fs::write(
        &config_path,
        pipeline_config_text(
            &dir.path().join("unused"),
            &dir.path().join("out"),
            &stages,
            &format!("batch_size = {BATCH}\n[limits]\nmemory_mib = 32\ncall_timeout_ms = 1000"),
        ),
    )
    .unwrap();
    let source = StreamSource::new(10, BATCH, Duration::from_millis(5)).with_bad_batch(BAD_BATCH);
    let (stop, emitted) = (source.stop_flag(), source.emitted());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = config_path.clone();
    let thread = std::thread::spawn(move || {
        let config = PipelineConfig::load(&path).unwrap();
        let pipeline = Pipeline::build(&config)
            .unwrap()
            .show_progress(false)
            .with_source(Box::new(source))
            .hot_reload(Some(&path))
            .unwrap();
        tx.send(pipeline.reload_status()).unwrap();
        pipeline.run().unwrap()
    });
    let status = rx.recv().expect("the pipeline did not start");
    let batches = |n: u64| n * BATCH as u64;
    wait_for("the batches after the bad one", || {
        emitted.load(Ordering::SeqCst) >= batches(BAD_BATCH + 3)
    });
    // Hot reload still works: a new build of speed takes over.
    let speed = std::fs::read(module("speed")).unwrap();
    std::fs::write(modules.join("speed.wasm"), component_variant(&speed, 1)).unwrap();
    wait_for("speed generation 2", || {
        status.active("speed").is_some_and(|a| a.generation == 2)
    });
    let attacker_bytes = std::fs::read(attacker).unwrap();
    for n in 1..=swap_attacker {
        std::fs::write(
            modules.join("attacker.wasm"),
            component_variant(&attacker_bytes, n),
        )
        .unwrap();
        wait_for("the next attacker version", || {
            status
                .active("hostile")
                .is_some_and(|a| a.generation == n + 1)
        });
    }
    let after = emitted.load(Ordering::SeqCst);
    wait_for("two batches on the new versions", || {
        emitted.load(Ordering::SeqCst) >= after + batches(2)
    });
    stop.store(true, Ordering::SeqCst);
    let summary = thread.join().expect("the pipeline thread panicked");
    let peak_rss = waystream::summary::peak_rss_bytes().unwrap();
    eprintln!(
        "attack {attacker_toml:?}: peak RSS {:.1} MB",
        peak_rss as f64 / 1e6
    );
    let out = dir.path().join("out");
    let letters = std::fs::read_to_string(out.join("dead-letter.ndjson")).unwrap_or_default();
    Run {
        summary,
        points: read_ndjson(&out.join("points.ndjson")),
        dead: read_ndjson(&out.join("dead-letter.ndjson")),
        longest_letter: letters.lines().map(str::len).max().unwrap_or(0),
        status,
        peak_rss,
    }
}

/// [`attack_with`] the hostile test guest configured with `config` (a TOML inline table).
fn attack(config: &str) -> Run {
    attack_with(&module("hostile"), &format!("config = {config}"), 0)
}

/// Resets the process's peak resident set size (VmHWM) to what it holds now, after giving
/// back to the OS what the allocator kept of earlier tests' freed memory.
fn reset_peak_rss() {
    // SAFETY: glibc's malloc_trim only releases free memory; no pointer is involved.
    unsafe { libc::malloc_trim(0) };
    std::fs::write("/proc/self/clear_refs", "5").expect("Linux: /proc/self/clear_refs");
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Run {
    /// What every attack must leave: balanced accounting, bounded memory and dead
    /// letters, documents after the bad batch, and the swapped-in speed.
    fn survived(&self) -> &Self {
        self.contained();
        let after_bad = self.points.iter().filter(|p| {
            !p["trajectory"].as_str().unwrap().starts_with("bad-")
                && p["seq"].as_u64().unwrap() >= (BAD_BATCH + 1) * BATCH as u64 / 10
        });
        assert!(after_bad.count() > 0, "no point after the bad batch");
        self
    }

    /// [`Run::survived`] but for an attacker that misbehaves on every batch: the batches
    /// after the first still ran (and failed the same way).
    fn contained(&self) -> &Self {
        let s = &self.summary;
        assert!(s.balanced(), "{s}");
        assert_eq!(self.points.len() as u64, s.documents_out);
        assert_eq!(self.dead.len() as u64, s.dead_letters);
        assert!(
            self.peak_rss < RSS_BOUND,
            "peak RSS {} MB over the bound {} MB",
            self.peak_rss / 1_000_000,
            RSS_BOUND / 1_000_000
        );
        assert!(
            self.longest_letter < CAUSE_MAX + 2048,
            "a dead letter of {} bytes",
            self.longest_letter
        );
        let speed = self.status.active("speed").unwrap();
        assert_eq!(speed.generation, 2, "the swap after the attack");
        self
    }

    /// The attacker's dead letters.
    fn attacker_letters(&self) -> Vec<&Value> {
        self.dead
            .iter()
            .filter(|l| l["module"] == "hostile")
            .collect()
    }

    /// The bad batch failed as a whole, every letter with a capped cause saying `why`.
    fn batch_failed(&self, why: &str) -> &Self {
        let letters = self.attacker_letters();
        assert_eq!(letters.len(), BATCH, "the bad batch, whole");
        for letter in letters {
            assert_eq!(letter["batch_failed"], true);
            assert!(letter["trajectory"].as_str().unwrap().starts_with("bad-"));
            let cause = letter["cause"].as_str().unwrap();
            assert!(cause.len() <= CAUSE_MAX, "a cause of {} bytes", cause.len());
            assert!(cause.contains(why), "cause {cause:.300} should say {why:?}");
        }
        self
    }

    /// The bad batch's points were refused one by one (`batch_failed` false), each cause
    /// saying `why`.
    fn points_refused(&self, count: usize, why: &str) -> &Self {
        let letters = self.attacker_letters();
        assert_eq!(letters.len(), count);
        for letter in letters {
            assert_eq!(letter["batch_failed"], false);
            let cause = letter["cause"].as_str().unwrap();
            assert!(cause.len() <= CAUSE_MAX, "a cause of {} bytes", cause.len());
            assert!(cause.contains(why), "cause {cause:.300} should say {why:?}");
        }
        self
    }
}

#[test]
fn a_megabyte_error_message_is_cut_and_shared() {
    attack("{ behaviour = \"huge-error\", bytes = 1048576 }")
        .survived()
        .batch_failed("(1048576 bytes, cut)");
}

#[test]
fn an_eight_megabyte_error_message_is_cut_and_shared() {
    attack("{ behaviour = \"huge-error\", bytes = 8388608 }")
        .survived()
        .batch_failed("(8388608 bytes, cut)");
}

#[test]
fn a_huge_rejection_reason_is_cut() {
    attack("{ behaviour = \"huge-reason\", bytes = 16777216 }")
        .survived()
        .points_refused(1, "(16777216 bytes, cut)");
}

#[test]
fn a_huge_zone_name_is_cut_before_it_reaches_any_document() {
    let run = attack("{ behaviour = \"huge-zone-name\", bytes = 8388608 }");
    run.survived();
    assert!(run.attacker_letters().is_empty());
    let bad: Vec<&Value> = run
        .points
        .iter()
        .filter(|p| p["trajectory"].as_str().unwrap().starts_with("bad-"))
        .collect();
    assert_eq!(bad.len(), BATCH);
    for point in bad {
        let zone = point["zones"][0].as_str().unwrap();
        assert!(zone.len() <= 256 + '…'.len_utf8() && zone.ends_with('…'));
    }
    let cut: u64 = run.summary.modules.iter().map(|(_, s)| s.texts_cut).sum();
    assert_eq!(cut, 1, "one name cut, counted");
}

#[test]
fn a_zone_set_of_a_hundred_thousand_names_fails_its_batch() {
    attack("{ behaviour = \"many-zones\", count = 100000 }")
        .survived()
        .batch_failed("more than zones_per_point (32)");
}

#[test]
fn zone_names_aliasing_one_buffer_cannot_multiply_host_memory() {
    // 2,000 names each claiming the same 8 MiB: 16 GB if the host copied each.
    let run = attack("{ behaviour = \"aliased-zone-names\", count = 2000, bytes = 8388608 }");
    run.survived();
    let letters = run.attacker_letters();
    assert_eq!(letters.len(), BATCH, "the bad batch, whole");
    assert!(letters.iter().all(|l| l["batch_failed"] == true));
}

#[test]
fn a_sleeping_guest_fails_its_batch_at_once() {
    let run = attack("{ behaviour = \"sleep\" }");
    run.survived().batch_failed("blocking call");
    let hostile = &run.summary.modules[1].1;
    assert!(
        hostile.busy < Duration::from_secs(1),
        "the sleep was not cut short: {:?} in the module",
        hostile.busy
    );
}

#[test]
fn a_guest_calling_exit_is_a_clear_cause() {
    attack("{ behaviour = \"exit\" }")
        .survived()
        .batch_failed("the guest called exit(");
}

#[test]
fn a_log_line_that_is_not_utf8_keeps_its_reason() {
    attack("{ behaviour = \"log-invalid-utf8\" }")
        .survived()
        .batch_failed("utf-8");
}

#[test]
fn a_loop_trips_the_time_limit() {
    attack("{ behaviour = \"loop\" }")
        .survived()
        .batch_failed("time limit: the call ran longer than 1000 ms");
}

#[test]
fn a_memory_bomb_trips_the_memory_limit() {
    attack("{ behaviour = \"memory\" }")
        .survived()
        .batch_failed("memory limit");
}

#[test]
fn non_finite_coordinates_are_refused_point_by_point() {
    attack("{ behaviour = \"nan-coords\" }")
        .survived()
        .points_refused(BATCH, "invalid point: lat is NaN");
}

#[test]
fn an_infinite_speed_is_refused() {
    attack("{ behaviour = \"inf-speed\" }")
        .survived()
        .points_refused(BATCH, "speed_mps is inf");
}

#[test]
fn a_timestamp_outside_the_plausible_years_is_refused() {
    attack("{ behaviour = \"min-ts\" }")
        .survived()
        .points_refused(BATCH, "outside the years 1970–2100");
}

#[test]
fn reserved_flag_bits_are_refused() {
    attack("{ behaviour = \"reserved-flags\" }")
        .survived()
        .points_refused(BATCH, "reserved bits 0x0010");
}

#[test]
fn memories_are_limited_together_not_one_by_one() {
    // Four memories of 31 MiB each under a 32 MiB budget: 124 MiB if limited one by one.
    let dir = tempfile::tempdir().unwrap();
    let grower = dir.path().join("grower.wasm");
    std::fs::write(&grower, handmade::grower(4, 496, 0)).unwrap();
    let run = attack_with(&grower, "", 0);
    run.contained();
    // The grower grows on every batch: every one of its batches fails the same way.
    let letters = run.attacker_letters();
    assert!(letters.len() > BATCH, "the batches after the first ran");
    for letter in letters {
        let cause = letter["cause"].as_str().unwrap();
        assert!(
            cause.contains("memory limit") && cause.contains("together, over its 32 MiB"),
            "{cause}"
        );
    }
}

#[test]
fn tables_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let grower = dir.path().join("grower.wasm");
    std::fs::write(&grower, handmade::grower(0, 0, 50_000_000)).unwrap();
    let run = attack_with(&grower, "", 0);
    run.contained();
    let letters = run.attacker_letters();
    assert!(letters.len() > BATCH, "the batches after the first ran");
    assert!(letters.iter().all(|l| {
        l["cause"]
            .as_str()
            .unwrap()
            .contains("table limit: the instance's tables would hold 50000000 elements")
    }));
}

#[test]
fn a_component_with_too_many_memories_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let grower = dir.path().join("grower.wasm");
    std::fs::write(&grower, handmade::grower(16, 0, 0)).unwrap();
    let stages = [Stage {
        name: "grower".into(),
        path: grower,
        extra: String::new(),
    }];
    let config = pipeline_config(&dir.path().join("in"), &dir.path().join("out"), &stages, "");
    let err = Pipeline::build(&config).err().expect("refused");
    let text = format!("{err:#}");
    assert!(text.contains("memory count too high"), "{text}");
}

/// Swaps in three more versions of an attacker whose `snapshot` misbehaves: each swap must
/// go through, the new version starting fresh, with the failure counted against the
/// replaced version's digest.
fn snapshot_attack(behaviour: &str) {
    let run = attack_with(
        &module("hostile"),
        &format!("config = {{ behaviour = {behaviour:?} }}"),
        3,
    );
    run.survived();
    assert!(run.attacker_letters().is_empty());
    assert_eq!(run.summary.snapshot_failures, 3, "{behaviour}");
    let events = run.status.events();
    let replaced: Vec<&str> = events
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::SnapshotFailed(_)))
        .map(|e| e.digest.as_deref().unwrap())
        .collect();
    let activated: Vec<&str> = events
        .iter()
        .filter(|e| e.module == "hostile" && matches!(e.outcome, Outcome::Activated { .. }))
        .map(|e| e.digest.as_deref().unwrap())
        .collect();
    assert_eq!(activated.len(), 3);
    // Each failure names the version that was replaced: the first one, then each new one.
    assert_eq!(replaced[1..], activated[..2], "{behaviour}");
    assert_ne!(replaced[0], activated[0]);
}

#[test]
fn a_snapshot_that_traps_does_not_block_the_next_version() {
    snapshot_attack("snapshot-traps");
}

#[test]
fn a_snapshot_that_loops_does_not_block_the_next_version() {
    snapshot_attack("snapshot-loops");
}

#[test]
fn a_snapshot_that_sleeps_does_not_block_the_next_version() {
    snapshot_attack("snapshot-sleeps");
}

#[test]
fn a_snapshot_that_runs_out_of_memory_does_not_block_the_next_version() {
    snapshot_attack("snapshot-memory");
}

#[test]
fn a_huge_restore_refusal_is_cut() {
    let run = attack_with(
        &module("hostile"),
        "config = { behaviour = \"restore-huge-error\", bytes = 8388608 }",
        1,
    );
    run.survived();
    let events = run.status.events();
    let fresh_because = events
        .iter()
        .find_map(|e| match &e.outcome {
            Outcome::Activated { fresh_because, .. } if e.module == "hostile" => {
                fresh_because.clone()
            }
            _ => None,
        })
        .expect("the new version started fresh, and says why");
    assert!(fresh_because.starts_with("restore refused the state: sss"));
    assert!(fresh_because.len() <= CAUSE_MAX, "{}", fresh_because.len());
}

/// Builds a pipeline whose attacker fails `init`; returns the error.
fn init_attack(config: &str) -> (String, Duration) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    reset_peak_rss();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let stages = [
        Stage::new("parse-plt"),
        Stage::with("hostile", &format!("config = {config}")),
    ];
    let config = pipeline_config(
        &dir.path().join("in"),
        &dir.path().join("out"),
        &stages,
        "[limits]\nmemory_mib = 160\ncall_timeout_ms = 1000",
    );
    let started = Instant::now();
    let err = Pipeline::build(&config).err().expect("init must fail");
    let peak = waystream::summary::peak_rss_bytes().unwrap();
    assert!(peak < 80_000_000 + 2 * (160 << 20), "peak RSS {peak}");
    (format!("{err:#}"), started.elapsed())
}

#[test]
fn a_64_mib_init_error_is_cut() {
    let (text, _) = init_attack("{ behaviour = \"init-huge-error\", bytes = 67108864 }");
    assert!(text.len() < CAUSE_MAX + 200, "{} bytes", text.len());
    assert!(text.contains("(67108864 bytes, cut)"), "{text:.300}");
}

#[test]
fn a_sleep_in_init_fails_the_load_at_once() {
    let (text, took) = init_attack("{ behaviour = \"sleep-in-init\" }");
    assert!(text.contains("blocking call"), "{text}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}
