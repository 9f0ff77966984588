//! Hot reload under load: module versions swapped while a paced stream runs through the
//! chain, with every point counted by `point_id` afterwards.
//!
//! "Different builds" of a module are the built component with a custom section appended:
//! a different file and digest, the same behaviour, so the output can be checked exactly.
//! Latency (file write → version active) and the pause (time spent swapping at the batch
//! boundary) are printed, not asserted: timing targets are checked by measurement
//! (`cargo test --release -p waystream-tests --test hot_reload -- --nocapture`), not by
//! tests that a slow debug build or a busy machine would fail.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use waystream::engine::digest_of;
use waystream::status::{Outcome, ReloadEvent, ReloadStatus};
use waystream::{Pipeline, PipelineConfig, Summary};
use waystream_tests::*;

/// How a new module file arrives.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// `cp new module.wasm`: truncate and write in place.
    CopyOver,
    /// Write `module.wasm.tmp`, then rename it over `module.wasm`.
    RenameIn,
    /// Like a build: delete the old file, create a new one, write it in chunks.
    FreshOutput,
}

/// Installs `bytes` at `path` in the given way; returns when the write is complete.
fn install(way: Way, path: &Path, bytes: &[u8]) -> Instant {
    match way {
        Way::CopyOver => std::fs::write(path, bytes).unwrap(),
        Way::RenameIn => {
            let temp = path.with_extension("wasm.tmp");
            std::fs::write(&temp, bytes).unwrap();
            std::fs::rename(&temp, path).unwrap();
        }
        Way::FreshOutput => {
            use std::io::Write;
            std::fs::remove_file(path).unwrap();
            let mut file = std::fs::File::create(path).unwrap();
            for chunk in bytes.chunks(64 * 1024) {
                file.write_all(chunk).unwrap();
                file.flush().unwrap();
            }
        }
    }
    Instant::now()
}

/// A running pipeline over a [`StreamSource`], with its modules in a folder of their own
/// and its config in a file, both watched.
struct Running {
    dir: tempfile::TempDir,
    status: Arc<ReloadStatus>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    emitted: Arc<std::sync::atomic::AtomicU64>,
    thread: JoinHandle<Summary>,
}

impl Running {
    fn start() -> Running {
        Running::start_with(|_| String::new())
    }

    /// Like [`Running::start`], with `top(dir)` at the top of the config.
    fn start_with(top: impl FnOnce(&Path) -> String) -> Running {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("modules")).unwrap();
        // The configured files source is replaced by the stream; it only has to open.
        std::fs::create_dir(dir.path().join("unused")).unwrap();
        for name in ["parse-plt", "geofence", "speed"] {
            std::fs::copy(
                module(name),
                dir.path().join(format!("modules/{name}.wasm")),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("pipeline.toml"),
            config_text(dir.path(), &top(dir.path())),
        )
        .unwrap();
        let source = StreamSource::new(40, 200, Duration::from_millis(2));
        let (stop, emitted) = (source.stop_flag(), source.emitted());
        let config_path = dir.path().join("pipeline.toml");
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let config = PipelineConfig::load(&config_path).unwrap();
            let pipeline = Pipeline::build(&config)
                .unwrap()
                .show_progress(false)
                .with_source(Box::new(source))
                .hot_reload(Some(&config_path))
                .unwrap();
            tx.send(pipeline.reload_status()).unwrap();
            pipeline.run().unwrap()
        });
        let status = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        Running {
            dir,
            status,
            stop,
            emitted,
            thread,
        }
    }

    fn module_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("modules/{name}.wasm"))
    }

    fn write_config(&self, text: &str) {
        install(
            Way::RenameIn,
            &self.dir.path().join("pipeline.toml"),
            text.as_bytes(),
        );
    }

    /// Waits for the first reload event after the first `seen` events that `matches`.
    fn wait_event(&self, seen: usize, matches: impl Fn(&ReloadEvent) -> bool) -> ReloadEvent {
        self.wait_event_for(Duration::from_secs(20), seen, matches)
    }

    /// [`Running::wait_event`] with a deadline of `timeout`.
    fn wait_event_for(
        &self,
        timeout: Duration,
        seen: usize,
        matches: impl Fn(&ReloadEvent) -> bool,
    ) -> ReloadEvent {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.status.events().into_iter().skip(seen).find(&matches) {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no matching reload event; events: {:#?}",
                self.status.events()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the stream and checks the output: every point exactly once, in the sink.
    fn finish(self) -> (Summary, Vec<Value>, Vec<Value>) {
        self.stop.store(true, Ordering::SeqCst);
        let summary = self.thread.join().unwrap();
        let out = self.dir.path().join("out");
        let points = read_ndjson(&out.join("points.ndjson"));
        let dead = read_ndjson(&out.join("dead-letter.ndjson"));
        let emitted = self.emitted.load(Ordering::SeqCst);
        let ids: HashSet<&str> = points
            .iter()
            .map(|p| p["point_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), points.len(), "duplicated points");
        assert_eq!(
            points.len() as u64 + dead.len() as u64,
            emitted,
            "points lost"
        );
        assert!(summary.balanced());
        (summary, points, dead)
    }
}

/// The test pipeline's config, with `top` at the top.
fn config_text(dir: &Path, top: &str) -> String {
    let stages: Vec<Stage> = Stage::standard_chain()
        .into_iter()
        .map(|s| Stage {
            path: dir.join(format!("modules/{}.wasm", s.name)),
            ..s
        })
        .collect();
    pipeline_config_text(
        &dir.join("unused"),
        &dir.join("out"),
        &stages,
        &format!("batch_size = 200\n{top}"),
    )
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[test]
fn swaps_under_load_lose_nothing_and_keep_state() {
    let running = Running::start();
    let originals: HashMap<&str, Vec<u8>> = ["geofence", "speed"]
        .into_iter()
        .map(|m| (m, std::fs::read(module(m)).unwrap()))
        .collect();
    let ways = [Way::CopyOver, Way::RenameIn, Way::FreshOutput];
    let (mut latencies, mut pauses) = (Vec::new(), Vec::new());
    for i in 0..24u64 {
        let name = if i % 2 == 0 { "geofence" } else { "speed" };
        let way = ways[(i / 2) as usize % 3];
        let bytes = component_variant(&originals[name], i);
        let digest = digest_of(&bytes);
        let seen = running.status.events().len();
        let written = install(way, &running.module_path(name), &bytes);
        let event = running.wait_event(seen, |e| e.digest.as_deref() == Some(&digest));
        let Outcome::Activated { pause, .. } = event.outcome else {
            panic!("{name} via {way:?} was not activated: {event:?}");
        };
        let latency = event.at.saturating_duration_since(written);
        eprintln!(
            "swap {i:2} {name:<8} {way:<11?} active after {latency:>10.1?}, pause {pause:>9.1?}"
        );
        latencies.push(latency);
        pauses.push(pause);
        // Let batches flow through the new version before the next swap.
        std::thread::sleep(Duration::from_millis(60));
    }
    let (summary, points, dead) = running.finish();
    let worst = *latencies.iter().max().unwrap();
    eprintln!(
        "{} swaps: write → active median {:.1?}, worst {worst:.1?}; pause median {:.1?}, worst {:.1?}; {} points",
        latencies.len(),
        median(&mut latencies),
        median(&mut pauses),
        pauses.iter().max().unwrap(),
        points.len()
    );
    assert_eq!(summary.swaps, 24);
    assert_eq!(summary.reload_failures, 0);
    assert!(
        dead.is_empty(),
        "the stream has no bad lines: {:?}",
        dead.first()
    );
    assert_state_carried_over(&points, true);
}

/// No restarted trajectories: after the first point every point has a distance (speed
/// kept its state), and, if `zone_flags`, zone enter/exit flags match the zone sets
/// (geofence kept its state).
fn assert_state_carried_over(points: &[Value], zone_flags: bool) {
    let mut by_trajectory: HashMap<&str, Vec<&Value>> = HashMap::new();
    for p in points {
        by_trajectory
            .entry(p["trajectory"].as_str().unwrap())
            .or_default()
            .push(p);
    }
    let zones = |p: &Value| -> HashSet<String> {
        p["zones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| z.as_str().unwrap().to_string())
            .collect()
    };
    let has_flag = |p: &Value, flag: &str| p["flags"].as_array().unwrap().iter().any(|f| f == flag);
    let mut zone_changes = 0;
    for points in by_trajectory.values_mut() {
        points.sort_by_key(|p| p["seq"].as_u64());
        for pair in points.windows(2) {
            let (prev, cur) = (pair[0], pair[1]);
            assert_eq!(
                cur["seq"].as_u64(),
                prev["seq"].as_u64().map(|s| s + 1),
                "a gap in a trajectory"
            );
            assert!(
                !cur["dist_m"].is_null(),
                "speed restarted a trajectory: {cur}"
            );
            if !zone_flags {
                continue;
            }
            let (before, after) = (zones(prev), zones(cur));
            assert_eq!(
                has_flag(cur, "zone_enter"),
                !after.is_subset(&before),
                "enter flag wrong: {cur}"
            );
            assert_eq!(
                has_flag(cur, "zone_exit"),
                !before.is_subset(&after),
                "exit flag wrong: {cur}"
            );
            zone_changes += usize::from(before != after);
        }
    }
    assert!(
        !zone_flags || zone_changes > 0,
        "the stream never changed zones: the check above proved nothing"
    );
}

#[test]
fn broken_versions_are_refused_and_the_old_one_keeps_running() {
    let running = Running::start();
    let path = running.module_path("geofence");
    let original = running.status.active("geofence").unwrap();
    let geofence = std::fs::read(module("geofence")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "half-written file",
            component_variant(&geofence, 1)[..geofence.len() / 2].to_vec(),
            "does not compile",
        ),
        (
            "incompatible WIT",
            std::fs::read(module("incompatible")).unwrap(),
            "does not export the waystream:transform@0.3 world",
        ),
        (
            "init fails",
            std::fs::read(module("hostile-init-fails")).unwrap(),
            "init refused",
        ),
    ];
    for (what, bytes, reason) in cases {
        let (seen, failures) = (running.status.events().len(), running.status.failures());
        install(Way::CopyOver, &path, &bytes);
        let event = running.wait_event(seen, |e| e.module == "geofence");
        match &event.outcome {
            Outcome::Refused(r) => {
                assert!(r.contains(reason), "{what}: reason {r:?} lacks {reason:?}")
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        assert_eq!(
            running.status.failures(),
            failures + 1,
            "{what}: the counter did not move"
        );
        assert_eq!(
            running.status.active("geofence").as_ref(),
            Some(&original),
            "{what}"
        );
    }

    // Validation cannot catch a module that traps on real data: it runs one batch on
    // probation, fails, and the old version takes that batch back.
    let seen = running.status.events().len();
    install(
        Way::CopyOver,
        &path,
        &std::fs::read(module("hostile-trap-always")).unwrap(),
    );
    let event = running.wait_event(seen, |e| matches!(e.outcome, Outcome::RolledBack(_)));
    assert!(
        matches!(&event.outcome, Outcome::RolledBack(r) if r.contains("panic") || r.contains("unreachable")),
        "{event:?}"
    );
    assert_eq!(running.status.active("geofence").as_ref(), Some(&original));
    // Put the running version's file back (same digest as the running version: no reload).
    install(Way::CopyOver, &path, &geofence);

    // Pinning: the running versions are allowed, a new build of geofence is not.
    let digests = |m: &str| {
        format!(
            "allowed_digests = [{:?}]",
            running.status.active(m).unwrap().digest
        )
    };
    let seen = running.status.events().len();
    let text = config_text(running.dir.path(), "require_pinned_digests = true")
        .replace(
            "name = \"parse-plt\"",
            &format!("name = \"parse-plt\"\n{}", digests("parse-plt")),
        )
        .replace(
            "name = \"geofence\"",
            &format!("name = \"geofence\"\n{}", digests("geofence")),
        )
        .replace(
            "name = \"speed\"",
            &format!("name = \"speed\"\n{}", digests("speed")),
        );
    running.write_config(&text);
    running.wait_event(seen, |e| e.outcome == Outcome::ConfigApplied);
    let seen = running.status.events().len();
    let unpinned = component_variant(&geofence, 2);
    install(Way::RenameIn, &path, &unpinned);
    let event = running.wait_event(seen, |e| e.digest.as_deref() == Some(&digest_of(&unpinned)));
    assert!(
        matches!(&event.outcome, Outcome::Refused(r) if r.contains("allowed_digests")),
        "{event:?}"
    );
    assert_eq!(running.status.active("geofence").as_ref(), Some(&original));

    // An invalid config is refused as a whole.
    let (seen, reloads) = (
        running.status.events().len(),
        running.status.config_reloads(),
    );
    running.write_config("batch_size = [");
    let event = running.wait_event(seen, |e| e.module == "config");
    assert!(matches!(event.outcome, Outcome::Refused(_)), "{event:?}");
    assert_eq!(running.status.config_reloads(), reloads);

    let (summary, points, dead) = running.finish();
    assert!(
        dead.is_empty(),
        "nothing may be dead-lettered: {:?}",
        dead.first()
    );
    assert!(summary.reload_failures >= 6, "{}", summary.reload_failures);
    assert_state_carried_over(&points, true);
}

#[test]
fn config_reload_reconfigures_and_removes_modules_between_batches() {
    let running = Running::start();
    let seen = running.status.events().len();
    // Drop geofence; give speed a threshold every point exceeds.
    let text = config_text(running.dir.path(), "");
    let geofence_table = text.find("[[transforms]]\nname = \"geofence\"").unwrap();
    let speed_table = text.find("[[transforms]]\nname = \"speed\"").unwrap();
    let text = format!("{}{}", &text[..geofence_table], &text[speed_table..]).replace(
        "name = \"speed\"",
        "name = \"speed\"\nconfig = { max_speed_mps = 1 }",
    );
    running.write_config(&text);
    running.wait_event(seen, |e| e.outcome == Outcome::ConfigApplied);
    assert_eq!(running.status.active("geofence"), None);
    assert_eq!(
        running.status.active("speed").unwrap().generation,
        2,
        "speed got a new config"
    );
    std::thread::sleep(Duration::from_millis(100));
    let (_, points, dead) = running.finish();
    assert!(dead.is_empty());
    let implausible = |p: &Value| {
        p["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "implausible_speed")
    };
    let zoned = |p: &Value| !p["zones"].as_array().unwrap().is_empty();
    assert!(
        points.iter().any(implausible),
        "the new speed config never took effect"
    );
    assert!(
        points.iter().any(zoned),
        "geofence never ran before the reload"
    );
    // Both changes landed at the same batch boundary.
    assert!(!points.iter().any(|p| implausible(p) && zoned(p)));
    assert_state_carried_over(&points, false);
}

/// A component that takes long to compile (many functions) and is then refused (it
/// exports nothing), unique per call so no cache has it: a stand-in for a JavaScript or
/// Python module's seconds of compiling.
fn slow_to_compile() -> Vec<u8> {
    let mut text = String::from("(component (core module\n");
    for f in 0..6000 {
        text.push_str(&format!("(func $f{f} (param i64) (result i64) local.get 0"));
        for k in 0..40 {
            text.push_str(&format!(
                " i64.const {} i64.mul i64.const {k} i64.xor",
                f * 41 + k
            ));
        }
        text.push_str(")\n");
    }
    text.push_str("))");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    component_variant(&wat::parse_str(&text).unwrap(), nanos)
}

#[test]
fn a_slow_compile_does_not_hold_up_another_modules_swap() {
    let running = Running::start();
    let slow = slow_to_compile();
    let speed = component_variant(&std::fs::read(module("speed")).unwrap(), 1_000_001);
    let speed_digest = digest_of(&speed);
    let seen = running.status.events().len();
    let slow_written = install(Way::RenameIn, &running.module_path("geofence"), &slow);
    install(Way::RenameIn, &running.module_path("speed"), &speed);
    let activated = running.wait_event(seen, |e| e.digest.as_deref() == Some(&speed_digest));
    assert!(
        matches!(activated.outcome, Outcome::Activated { .. }),
        "{activated:?}"
    );
    let refused = running.wait_event(seen, |e| e.module == "geofence");
    assert!(
        matches!(&refused.outcome, Outcome::Refused(r) if r.contains("waystream:transform")),
        "{refused:?}"
    );
    eprintln!(
        "speed active {:.1?} after the slow write, the slow module refused after {:.1?}",
        activated.at.saturating_duration_since(slow_written),
        refused.at.saturating_duration_since(slow_written)
    );
    assert!(
        activated.at < refused.at,
        "the speed swap waited for the slow compile: active {:?} after the refusal",
        activated.at.saturating_duration_since(refused.at)
    );
    let (summary, _, dead) = running.finish();
    assert_eq!(summary.swaps, 1);
    assert_eq!(summary.reload_failures, 1);
    assert!(dead.is_empty(), "{:?}", dead.first());
}

/// The JavaScript and Python examples' components, which `guest-sdk/check-polyglot.sh`
/// builds into the modules folder; `None` (the test skips, saying so) unless
/// `WAYSTREAM_POLYGLOT_MODULES` is set, as `cargo xtask test` sets it after that script.
fn polyglot_modules() -> Option<(Vec<u8>, Vec<u8>)> {
    if std::env::var_os("WAYSTREAM_POLYGLOT_MODULES").is_none() {
        eprintln!(
            "skipped: WAYSTREAM_POLYGLOT_MODULES is unset (cargo xtask test sets it once \
             guest-sdk/check-polyglot.sh has built js-stops.wasm and python-stops.wasm)"
        );
        return None;
    }
    let read = |name| std::fs::read(module(name)).unwrap();
    Some((read("js-stops"), read("python-stops")))
}

/// Real JavaScript and Python modules swapped into a running chain (the geofence slot):
/// a Rust module's swap written while a JavaScript module compiles is active before that
/// compile ends, and a JavaScript or Python version the compiled-module cache holds is
/// active within a second of its file being written. The cache is the run's own folder,
/// so the first swap of each really compiles.
#[test]
fn javascript_and_python_swaps_compile_aside_and_come_back_from_the_cache() {
    let Some((js, python)) = polyglot_modules() else {
        return;
    };
    let running = Running::start_with(|dir| {
        format!(
            "[cache]\ndir = {:?}\n",
            dir.join("cache").display().to_string()
        )
    });
    // Debug builds compile a JavaScript module in 15-60 s.
    let compile_time = Duration::from_secs(300);
    let js = component_variant(&js, 2_000_001);
    let python = component_variant(&python, 2_000_002);
    let speed = component_variant(&std::fs::read(module("speed")).unwrap(), 2_000_003);
    let activated = |event: &ReloadEvent| matches!(event.outcome, Outcome::Activated { .. });

    // A Rust swap while the JavaScript module compiles.
    let seen = running.status.events().len();
    let js_written = install(Way::RenameIn, &running.module_path("geofence"), &js);
    install(Way::RenameIn, &running.module_path("speed"), &speed);
    let speed_active =
        running.wait_event(seen, |e| e.digest.as_deref() == Some(&digest_of(&speed)));
    assert!(activated(&speed_active), "{speed_active:?}");
    let js_active = running.wait_event_for(compile_time, seen, |e| {
        e.digest.as_deref() == Some(&digest_of(&js))
    });
    assert!(activated(&js_active), "{js_active:?}");
    let compiled_js = js_active.at.saturating_duration_since(js_written);
    eprintln!(
        "speed (Rust) active {:.1?} after the JavaScript module was written; the JavaScript \
         module, compiled, {compiled_js:.1?} after",
        speed_active.at.saturating_duration_since(js_written),
    );
    assert!(
        speed_active.at < js_active.at,
        "the Rust swap waited for the JavaScript compile: active {:?} after it",
        speed_active.at.saturating_duration_since(js_active.at)
    );

    // Each language once compiled, then back from the cache after another version ran.
    let swap = |bytes: &[u8], timeout| {
        let seen = running.status.events().len();
        let written = install(Way::RenameIn, &running.module_path("geofence"), bytes);
        let event = running.wait_event_for(timeout, seen, |e| {
            e.digest.as_deref() == Some(&digest_of(bytes))
        });
        assert!(activated(&event), "{event:?}");
        event.at.saturating_duration_since(written)
    };
    let compiled_python = swap(&python, compile_time);
    let cached_js = swap(&js, Duration::from_secs(60));
    let cached_python = swap(&python, Duration::from_secs(60));
    eprintln!(
        "file written -> active: JavaScript {compiled_js:.1?} compiling, {cached_js:.1?} from the \
         cache; Python {compiled_python:.1?} compiling, {cached_python:.1?} from the cache"
    );
    // Not the 1 s target (measured in release, see the issue notes): a bound that only a
    // compile, seconds long even in release, would break.
    for (language, cached, compiled) in [
        ("JavaScript", cached_js, compiled_js),
        ("Python", cached_python, compiled_python),
    ] {
        assert!(
            cached < Duration::from_secs(3) && cached * 4 < compiled,
            "a cached {language} swap took {cached:?} (compiling took {compiled:?})"
        );
    }
    let (summary, _, dead) = running.finish();
    assert_eq!(summary.swaps, 5);
    assert!(dead.is_empty(), "{:?}", dead.first());
}
