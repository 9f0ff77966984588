//! Hostile guests: each misbehaviour is contained, its batch goes to the dead-letter sink
//! with the cause, and the batches after it still flow.

use waystream_tests::*;

const LINES_PER_FILE: u32 = 20;

/// Three trajectories of 20 lines; batches of 20 lines, so each batch is one file and only
/// the middle one ("bad") triggers the hostile guest.
fn fixture(dir: &std::path::Path) {
    for name in ["a-good", "b-bad", "c-good"] {
        let lines: Vec<String> = (0..LINES_PER_FILE)
            .map(|i| plt_line(39.9 + f64::from(i) * 1e-4, 116.4, 100.0, i))
            .collect();
        write_plt(dir, "001", name, &lines);
    }
}

/// Runs parse-plt → hostile(behaviour) and checks the containment; returns the causes.
fn contained(behaviour: &str, expected_cause: &str) {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    // The trigger is the trajectory id: make it start with "bad".
    std::fs::rename(
        dir.path().join("Data/001/Trajectory/b-bad.plt"),
        dir.path().join("Data/001/Trajectory/bad.plt"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let stages = [
        Stage::new("parse-plt"),
        Stage::with(
            "hostile",
            &format!("config = {{ behaviour = {behaviour:?} }}"),
        ),
    ];
    let config = pipeline_config(
        dir.path(),
        &out,
        &stages,
        "batch_size = 20\n[limits]\nmemory_mib = 32\ncall_timeout_ms = 300",
    );
    let summary = run(&config);

    assert!(summary.balanced(), "{behaviour}: {summary}");
    let points = read_ndjson(&out.join("points.ndjson"));
    let dead = read_ndjson(&out.join("dead-letter.ndjson"));
    let trajectories: Vec<&str> = points
        .iter()
        .map(|p| p["trajectory"].as_str().unwrap())
        .collect();
    assert_eq!(
        points.len() as u32,
        2 * LINES_PER_FILE,
        "{behaviour}: the good batches flow"
    );
    assert!(trajectories.iter().all(|t| *t != "bad"));
    assert!(
        trajectories.contains(&"c-good"),
        "{behaviour}: the batch after the bad one flows"
    );
    assert_eq!(
        dead.len() as u32,
        LINES_PER_FILE,
        "{behaviour}: the bad batch is dead-lettered whole"
    );
    for letter in &dead {
        assert_eq!(letter["module"], "hostile");
        assert_eq!(letter["trajectory"], "bad");
        assert_eq!(letter["batch_failed"], true);
        assert!(letter["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(
            letter["line"].as_str().unwrap().starts_with("39.9"),
            "the original line is kept"
        );
        let cause = letter["cause"].as_str().unwrap();
        assert!(
            cause.contains(expected_cause),
            "{behaviour}: cause {cause:?} should say {expected_cause:?}"
        );
    }
}

#[test]
fn infinite_loop_trips_the_time_limit() {
    contained("loop", "time limit");
}

#[test]
fn memory_bomb_trips_the_memory_limit() {
    contained("memory", "memory limit");
}

#[test]
fn panic_is_contained_and_the_instance_recreated() {
    // The SDK's panic hook says the message (and where) before the trap: the cause leads
    // with it, and wasmtime's trap follows.
    contained("panic", "the guest panicked: panicked at ");
    contained("panic", "hostile guest panics on purpose");
}

#[test]
fn more_points_than_records_is_rejected() {
    contained("extra", "broken accounting");
}

#[test]
fn out_of_range_rejection_index_is_rejected() {
    contained("bad-index", "out of range");
}

#[test]
fn batch_error_is_dead_lettered() {
    contained("error", "hostile guest fails the batch on purpose");
}

#[test]
fn log_flood_is_capped_and_the_batch_still_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let lines: Vec<String> = (0..5).map(|i| plt_line(39.9, 116.4, 100.0, i)).collect();
    write_plt(dir.path(), "001", "bad-chatty", &lines);
    let out = dir.path().join("out");
    let stages = [
        Stage::new("parse-plt"),
        Stage::with("hostile", "config = { behaviour = \"log-flood\" }"),
    ];
    let summary = run(&pipeline_config(
        dir.path(),
        &out,
        &stages,
        "batch_size = 20",
    ));
    assert_eq!(summary.documents_out, u64::from(3 * LINES_PER_FILE) + 5);
    assert_eq!(summary.dead_letters, 0);
}

#[test]
fn init_failure_refuses_the_pipeline_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let stages = [
        Stage::new("parse-plt"),
        Stage::with("hostile", "config = { behaviour = \"init-fails\" }"),
    ];
    let config = pipeline_config(dir.path(), &dir.path().join("out"), &stages, "");
    let err = waystream::Pipeline::build(&config)
        .err()
        .expect("the pipeline must not start");
    let text = format!("{err:#}");
    assert!(
        text.contains("init refused its config") && text.contains("refusing to start"),
        "{text}"
    );
}
