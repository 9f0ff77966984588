//! The built components, loaded by the host, on hand-made cases with known answers. The
//! expected values come from independent computations (the `geo` crate, arithmetic by
//! hand), not from the transforms' own code.

use geo::{Bearing, Distance, Haversine};
use serde_json::Value;
use waystream_tests::*;

fn run_chain(lines_by_trajectory: &[(&str, Vec<String>)]) -> (Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, lines) in lines_by_trajectory {
        write_plt(dir.path(), "007", name, lines);
    }
    let out = dir.path().join("out");
    run(&pipeline_config(
        dir.path(),
        &out,
        &Stage::standard_chain(),
        "batch_size = 4",
    ));
    (
        read_ndjson(&out.join("points.ndjson")),
        read_ndjson(&out.join("dead-letter.ndjson")),
    )
}

fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    Haversine.distance(geo::Point::new(a.1, a.0), geo::Point::new(b.1, b.0))
}

fn zones(doc: &Value) -> Vec<&str> {
    doc["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z.as_str().unwrap())
        .collect()
}

#[test]
fn known_answers_through_the_wasm_chain() {
    let hole = (40.000, 116.390); // inside olympic-green's hole
    let edge = (40.010, 116.375); // on olympic-green's west edge
    let palace = (39.918, 116.397); // forbidden city, inside both ring roads
    let palace_north = (39.919, 116.397);
    let (docs, dead) = run_chain(&[(
        "known",
        vec![
            plt_line(hole.0, hole.1, -777.0, 0),
            plt_line(edge.0, edge.1, 100.0, 0), // same second: dt = 0
            plt_line(palace.0, palace.1, 0.0, 600),
            "this is not a point".into(),
            plt_line(palace_north.0, palace_north.1, -10.0, 610),
        ],
    )]);
    assert_eq!(docs.len(), 4);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["seq"], 3);
    assert_eq!(dead[0]["module"], "parse-plt");
    assert!(dead[0]["cause"].as_str().unwrap().contains("found 1"));

    // -777 → no altitude, flagged; a point in the hole is in no zone.
    assert_eq!(docs[0]["alt_m"], Value::Null);
    assert_eq!(docs[0]["flags"], serde_json::json!(["altitude_missing"]));
    assert_eq!(zones(&docs[0]), Vec::<&str>::new());
    assert_eq!(
        docs[0]["dist_m"],
        Value::Null,
        "first point of a trajectory"
    );
    assert_eq!(docs[0]["ts"], "2008-10-23T02:00:00Z");

    // On the edge: inside. dt = 0: a distance but no speed.
    assert_eq!(zones(&docs[1]), ["olympic-green"]);
    assert!(
        (docs[1]["alt_m"].as_f64().unwrap() - 30.48).abs() < 1e-9,
        "100 ft = 30.48 m"
    );
    let d = haversine(hole, edge);
    assert!((docs[1]["dist_m"].as_f64().unwrap() - d).abs() < 1e-6 * d);
    assert_eq!(docs[1]["speed_mps"], Value::Null);
    assert_eq!(docs[1]["flags"], serde_json::json!(["zone_enter"]));

    // Nested zones, sorted by name; leaving olympic-green and entering three others.
    assert_eq!(
        zones(&docs[2]),
        ["forbidden-city", "inside-2nd-ring", "inside-3rd-ring"]
    );
    assert_eq!(
        docs[2]["flags"],
        serde_json::json!(["zone_enter", "zone_exit"])
    );
    let d = haversine(edge, palace);
    assert!((docs[2]["speed_mps"].as_f64().unwrap() - d / 600.0).abs() < 1e-6);
    assert_eq!(docs[2]["alt_m"], 0.0);

    // 0.001° due north in 10 s: heading 0, speed ≈ 11.1 m/s; -10 ft is a real altitude.
    let d = haversine(palace, palace_north);
    assert!((docs[3]["speed_mps"].as_f64().unwrap() - d / 10.0).abs() < 1e-6);
    let bearing = Haversine.bearing(
        geo::Point::new(palace.1, palace.0),
        geo::Point::new(palace_north.1, palace_north.0),
    );
    assert!((docs[3]["heading_deg"].as_f64().unwrap() - bearing.rem_euclid(360.0)).abs() < 1e-6);
    assert!((docs[3]["alt_m"].as_f64().unwrap() + 3.048).abs() < 1e-9);
    assert_eq!(docs[3]["flags"], serde_json::json!([]));
}

#[test]
fn implausible_speed_is_flagged() {
    // 1° of latitude (111 km) in 10 s.
    let (docs, _) = run_chain(&[(
        "jump",
        vec![
            plt_line(39.0, 116.0, 0.0, 0),
            plt_line(40.0, 116.0, 0.0, 10),
        ],
    )]);
    assert!(docs[1]["speed_mps"].as_f64().unwrap() > 10_000.0);
    assert_eq!(docs[1]["flags"], serde_json::json!(["implausible_speed"]));
}

#[test]
fn poles_and_the_antimeridian_do_not_panic() {
    let (docs, dead) = run_chain(&[(
        "edges",
        vec![
            plt_line(89.9999, 179.9999, 0.0, 0),
            plt_line(-90.0, -180.0, 0.0, 1),
            plt_line(0.0, 180.0, 0.0, 2),
            plt_line(0.0, -179.9995, 0.0, 3),
        ],
    )]);
    assert_eq!((docs.len(), dead.len()), (4, 0));
    // Across the antimeridian: 0.0005° at the equator, heading east.
    let d = haversine((0.0, 180.0), (0.0, -179.9995));
    assert!((docs[3]["dist_m"].as_f64().unwrap() - d).abs() < 1e-6);
    assert!((docs[3]["heading_deg"].as_f64().unwrap() - 90.0).abs() < 1e-6);
    for doc in &docs[1..] {
        assert!(doc["dist_m"].as_f64().unwrap().is_finite());
    }
}

#[test]
fn trajectories_keep_separate_state_across_batches() {
    // Batches of 4 lines: trajectory "a" spans three batches, "b" follows in the third.
    let a: Vec<String> = (0..10)
        .map(|i| plt_line(39.9 + f64::from(i) * 1e-4, 116.4, 0.0, i * 10))
        .collect();
    let b: Vec<String> = (0..3)
        .map(|i| plt_line(30.0, 120.0 + f64::from(i) * 1e-4, 0.0, i * 10))
        .collect();
    let (docs, _) = run_chain(&[("a", a), ("b", b)]);
    let firsts: Vec<(&str, u64)> = docs
        .iter()
        .filter(|d| d["dist_m"].is_null())
        .map(|d| {
            (
                d["trajectory"].as_str().unwrap(),
                d["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        firsts,
        [("a", 0), ("b", 0)],
        "only each trajectory's first point has no distance"
    );
    for doc in docs
        .iter()
        .filter(|d| d["trajectory"] == "a" && d["seq"] != 0)
    {
        assert!((doc["dist_m"].as_f64().unwrap() - 11.1195).abs() < 1e-3);
    }
}

#[test]
fn the_harness_runs_a_built_module_from_cargo_test() {
    let mut harness = waystream::testing::Harness::module(module("parse-plt"), "{}").unwrap();
    let out = harness
        .run_plt(
            "000",
            "t1",
            "39.9,116.4,0,-777,39744.0,2008-10-23,02:53:04\r\nnot a point\r\n",
        )
        .unwrap();
    assert_eq!(out.documents.len(), 1);
    let doc: serde_json::Value = serde_json::from_str(&out.documents[0]).unwrap();
    assert_eq!(doc["alt_m"], serde_json::Value::Null);
    assert_eq!(doc["ts"], "2008-10-23T02:53:04Z");
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(
        (out.rejected[0].seq, out.rejected[0].line.text().unwrap()),
        (1, "not a point")
    );
    assert!(
        out.rejected[0].cause.contains("fields"),
        "{}",
        out.rejected[0].cause
    );
}
