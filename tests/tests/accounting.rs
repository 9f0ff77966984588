//! Accounting: every input point line ends up exactly once, in the output or in the
//! dead-letter file, on synthetic data and (when WAYSTREAM_GEOLIFE is set) on Geolife.

use std::collections::HashSet;
use std::path::Path;

use waystream::synth::{SynthConfig, count_point_lines, generate};
use waystream_contract::document::point_id::point_id_hex;
use waystream_tests::*;

/// Runs the standard chain on `input` and checks that every point line is accounted for
/// exactly once; returns (documents, dead letters).
fn check_accounting(input: &Path) -> (usize, usize) {
    let out = tempfile::tempdir().unwrap();
    let summary = run(&pipeline_config(
        input,
        out.path(),
        &Stage::standard_chain(),
        "",
    ));
    println!("{summary}");
    let expected = count_point_lines(input).unwrap();
    let points = read_ndjson(&out.path().join("points.ndjson"));
    let dead = read_ndjson(&out.path().join("dead-letter.ndjson"));
    assert_eq!(summary.records_in, expected, "every point line is read");
    assert_eq!(
        (points.len() + dead.len()) as u64,
        expected,
        "every line is a document or a dead letter"
    );
    assert!(summary.balanced());

    // Exactly once: no (user, trajectory, seq) appears twice across both files.
    let mut seen = HashSet::new();
    for doc in points.iter().chain(&dead) {
        let key = (
            doc["user"].as_str().unwrap().to_string(),
            doc["trajectory"].as_str().unwrap().to_string(),
            doc["seq"].as_u64().unwrap(),
        );
        assert!(seen.insert(key.clone()), "{key:?} appears twice");
    }
    for doc in &points {
        let id = point_id_hex(
            doc["user"].as_str().unwrap(),
            doc["trajectory"].as_str().unwrap(),
            doc["seq"].as_u64().unwrap() as u32,
        );
        assert_eq!(doc["point_id"], id.as_str());
    }
    for letter in &dead {
        assert!(!letter["cause"].as_str().unwrap().is_empty());
        assert_eq!(
            letter["module"], "parse-plt",
            "only parse-plt rejects lines here: {letter}"
        );
    }
    (points.len(), dead.len())
}

#[test]
fn synthetic_data_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&SynthConfig {
        out: dir.path().into(),
        users: 3,
        trajectories: 3,
        points: 1500,
        corrupt: 0.005,
        seed: 3,
    })
    .unwrap();
    let (points, dead) = check_accounting(dir.path());
    assert_eq!(
        dead as u64, report.corrupt_lines,
        "exactly the corrupt lines are rejected"
    );
    assert_eq!((points + dead) as u64, report.point_lines);
}

#[test]
fn geolife_small_is_accounted_for() {
    let Some(dir) = std::env::var_os("WAYSTREAM_GEOLIFE") else {
        eprintln!(
            "SKIPPED: WAYSTREAM_GEOLIFE is not set (e.g. ../shared/data/geolife/small); Geolife accounting not checked"
        );
        return;
    };
    let (points, dead) = check_accounting(Path::new(&dir));
    println!(
        "Geolife {}: {points} documents, {dead} dead letters",
        dir.to_string_lossy()
    );
    assert!(points > 0);
}

#[test]
fn a_failing_sink_stops_the_run_with_its_error() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    generate(&SynthConfig {
        out: dir.path().join("in"),
        users: 1,
        trajectories: 2,
        points: 3000,
        corrupt: 0.0,
        seed: 5,
    })
    .unwrap();
    let text = pipeline_config_text(
        &dir.path().join("in"),
        &dir.path().join("out"),
        &Stage::standard_chain(),
        "",
    )
    .replace(
        &format!(
            "{:?}",
            dir.path().join("out/points.ndjson").display().to_string()
        ),
        "\"/dev/full\"",
    );
    let config = waystream::PipelineConfig::parse(&text, Path::new(".")).unwrap();
    let Err(err) = waystream::Pipeline::build(&config)
        .unwrap()
        .show_progress(false)
        .run()
    else {
        panic!("writing to /dev/full succeeded");
    };
    let message = format!("{err:#}");
    assert!(
        message.contains("sink") && message.contains("/dev/full"),
        "{message}"
    );
}
