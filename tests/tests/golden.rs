//! Golden files: the whole chain on a small synthetic fixture gives exactly the committed
//! output. Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate
//! change (and review the diff).

use serde_json::Value;
use waystream::synth::{SynthConfig, generate};
use waystream_tests::*;

fn compare_or_update(name: &str, actual: &[Value]) {
    let path = workspace().join("tests/golden").join(name);
    let text: String = actual.iter().map(|v| format!("{v}\n")).collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    for (i, (want, got)) in expected.lines().zip(text.lines()).enumerate() {
        assert_eq!(got, want, "{name}: line {} differs", i + 1);
    }
    assert_eq!(
        text.lines().count(),
        expected.lines().count(),
        "{name}: line count differs"
    );
}

/// The standard chain's documents and dead letters (digests masked) on the golden
/// fixture, with `extra` config.
fn run_fixture(extra: &str) -> (Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    // Start inside the demo zones so that zone changes happen.
    generate(&SynthConfig {
        out: dir.path().join("in"),
        users: 2,
        trajectories: 2,
        points: 60,
        corrupt: 0.05,
        seed: 11,
    })
    .unwrap();
    let out = dir.path().join("out");
    run(&pipeline_config(
        &dir.path().join("in"),
        &out,
        &Stage::standard_chain(),
        extra,
    ));
    let points = read_ndjson(&out.join("points.ndjson"));
    let mut dead = read_ndjson(&out.join("dead-letter.ndjson"));
    // Digests depend on the build (paths embedded in the component), not on behaviour.
    for letter in &mut dead {
        letter["digest"] = Value::String("<digest>".into());
    }
    assert!(!points.is_empty() && !dead.is_empty());
    (points, dead)
}

/// Small batches: trajectories cross batch boundaries, so per-trajectory state must carry.
const SMALL_BATCHES: &str = "batch_size = 16";

#[test]
fn standard_chain_matches_the_golden_files() {
    let (points, dead) = run_fixture(SMALL_BATCHES);
    compare_or_update("chain-points.ndjson", &points);
    compare_or_update("chain-dead-letter.ndjson", &dead);
}

#[test]
fn without_a_call_timeout_the_chain_gives_the_same_output() {
    // Modules compiled without deadline checks run the same code paths otherwise.
    let timed = run_fixture(SMALL_BATCHES);
    let untimed = run_fixture(&format!("{SMALL_BATCHES}\n[limits]\ncall_timeout_ms = 0"));
    assert_eq!(untimed, timed);
}
