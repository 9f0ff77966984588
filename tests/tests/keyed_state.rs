//! Per-trajectory state moved between chains (contract 0.3.1's `keyed-state`), with the
//! built modules: what a host that takes over some trajectories needs so that they go on
//! as if they had never moved. Modules built against 0.3.0 still load and keep their state
//! whole. Bounded state (`[state]`): the chain makes its modules forget the least recently
//! seen trajectories, and a run whose trajectories end before they are dropped writes what
//! an unbounded run writes.

use std::path::Path;

use waystream::chain::{Chain, ModuleState, StateConfig, decode_state};
use waystream::engine::bindings::{Batch, RawLines, Records, Trajectory};
use waystream::engine::{Engine, Module};
use waystream::pipeline::load_modules;
use waystream_contract::Point;
use waystream_tests::*;

fn standard_chain() -> Chain {
    let config = pipeline_config(
        Path::new("."),
        Path::new("out"),
        &Stage::standard_chain(),
        "",
    );
    let engine = Engine::new(config.limits.clone()).unwrap();
    let modules = load_modules(&engine, &config.transforms, &config.base, false).unwrap();
    Chain::new(engine, modules).unwrap()
}

fn key(id: &str) -> Trajectory {
    Trajectory {
        user: "007".into(),
        id: id.into(),
    }
}

/// Lines `seqs` of trajectories `a` and `b`, walking north through the demo zones (so
/// geofence's enter/exit flags and speed's distances both depend on the previous point).
fn batch(seqs: std::ops::Range<u32>) -> Batch {
    batch_of(&["a", "b"], seqs)
}

/// Lines `seqs` of each trajectory of `ids`, side by side, walking north.
fn batch_of(ids: &[&str], seqs: std::ops::Range<u32>) -> Batch {
    let mut raw = RawLines::default();
    for (t, _) in ids.iter().enumerate() {
        let lon = 116.390 + 0.007 * t as f64;
        for seq in seqs.clone() {
            let line = plt_line(39.90 + 0.004 * f64::from(seq), lon, 100.0, seq * 30);
            raw.push(line.as_bytes(), t as u32, seq);
        }
    }
    Batch {
        trajectories: ids.iter().map(|id| key(id)).collect(),
        zone_sets: Vec::new(),
        records: Records::Lines(raw),
    }
}

/// The points of a chain's output for `batch`, with their zones by name.
fn run_points(chain: &mut Chain, batch: Batch) -> Vec<(Point, Vec<String>)> {
    let mut dead = Vec::new();
    let out = chain.run(batch, &mut dead);
    assert!(dead.is_empty(), "{dead:?}");
    out.points
        .iter()
        .map(|p| {
            let zones = p
                .zones
                .map(|z| out.zone_sets[z as usize].clone())
                .unwrap_or_default();
            (p, zones)
        })
        .collect()
}

fn of(points: &[(Point, Vec<String>)], t: u32) -> Vec<(Point, Vec<String>)> {
    points
        .iter()
        .filter(|p| p.0.trajectory == t)
        .cloned()
        .collect()
}

#[test]
fn trajectories_moved_to_another_chain_go_on_as_if_they_had_not_moved() {
    let mut stayed = standard_chain();
    let mut left = standard_chain();
    for chain in [&mut stayed, &mut left] {
        chain.run(batch(0..6), &mut Vec::new());
    }
    assert_eq!(left.keys(), [key("a"), key("b")]);

    // Trajectory a moves from `left` to `arrived`; b does not.
    let moved = left.export_state(&[key("a")]);
    let modules: Vec<&str> = moved.iter().map(|m| m.module.as_str()).collect();
    assert_eq!(modules, ["geofence", "speed"], "parse-plt keeps no state");
    assert!(moved.iter().all(|m| m.states.len() == 1));
    left.drop_keys(&[key("a")]);
    assert_eq!(left.keys(), [key("b")]);
    let mut arrived = standard_chain();
    assert!(arrived.import_state(&moved).is_empty());
    assert_eq!(arrived.keys(), [key("a")]);

    let expected = run_points(&mut stayed, batch(6..12));
    let got = run_points(&mut arrived, batch(6..12));
    assert_eq!(of(&got, 0), of(&expected, 0));
    assert!(
        of(&got, 0)[0].0.dist_m.is_some(),
        "the first point after the move is measured from the last one before it"
    );
    assert!(
        of(&expected, 0).iter().any(|p| !p.1.is_empty()),
        "the walk passes through zones"
    );
    // b was not moved: it starts afresh there, and differs from where it stayed.
    assert_eq!(of(&got, 1)[0].0.dist_m, None);
    assert_ne!(of(&got, 1), of(&expected, 1));
}

/// Picks trajectories by user and id.
type Selects = dyn Fn(&str, &str) -> bool;

/// What a Kinesis host does with the state kept with a checkpoint: the state of the
/// trajectories a shard carries, taken after a batch, replaces on another chain whatever it
/// held for them (stale state from an earlier read included), so the records after the
/// checkpoint give what they gave the first time.
#[test]
fn a_captured_state_replaces_what_another_chain_holds_for_those_trajectories() {
    let only_a = |_: &str, id: &str| id == "a";
    let only_b = |_: &str, id: &str| id == "b";
    let mut first = standard_chain();
    first.run(batch(0..6), &mut Vec::new());
    let sets: [&Selects; 2] = [&only_a, &only_b];
    let [saved, saved_b]: [Vec<u8>; 2] = first.capture_state(&sets).try_into().unwrap();
    let held = |saved: &[u8]| -> Vec<(String, String)> {
        let mut keys: Vec<_> = decode_state(saved)
            .unwrap()
            .into_iter()
            .flat_map(|m| {
                m.states
                    .into_iter()
                    .map(move |s| (m.module.clone(), s.key.id))
            })
            .collect();
        keys.sort();
        keys
    };
    let in_both = |id: &str| {
        vec![
            ("geofence".to_string(), id.to_string()),
            ("speed".into(), id.into()),
        ]
    };
    assert_eq!(
        held(&saved),
        in_both("a"),
        "a's state in geofence and speed, not b's"
    );
    assert_eq!(
        held(&saved_b),
        in_both("b"),
        "each set its own trajectories"
    );

    // The other chain read a and b further, then lost them: its state of a is stale.
    let mut second = standard_chain();
    second.run(batch(0..9), &mut Vec::new());
    second.replace_state(&[(only_a, vec![saved])]);
    let expected = run_points(&mut first, batch(6..12));
    let got = run_points(&mut second, batch(6..12));
    assert_eq!(
        of(&got, 0),
        of(&expected, 0),
        "a goes on from the saved state"
    );
    assert_ne!(
        of(&got, 1),
        of(&expected, 1),
        "b kept its own (other) state"
    );

    // No saved state: the set's trajectories start fresh; a damaged one is skipped.
    let mut third = standard_chain();
    third.run(batch(0..6), &mut Vec::new());
    third.replace_state(&[(only_a, vec![b"not a state".to_vec()])]);
    assert_eq!(third.keys(), [key("b")]);
    assert_eq!(
        of(&run_points(&mut third, batch(6..7)), 0)[0].0.dist_m,
        None
    );
}

#[test]
fn state_a_chain_cannot_take_is_refused_with_its_reason_and_the_rest_is_taken() {
    let mut from = standard_chain();
    from.run(batch(0..3), &mut Vec::new());
    let mut moved = from.export_state(&[key("a")]);
    moved.push(ModuleState {
        module: "not-in-the-chain".into(),
        states: moved[0].states.clone(),
    });
    // speed's entry in geofence's place: another layout.
    moved[0].states = moved[1].states.clone();
    let mut to = standard_chain();
    let refused = to.import_state(&moved);
    let names: Vec<&str> = refused.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(names, ["geofence", "not-in-the-chain"], "{refused:?}");
    assert!(
        refused[0].1.contains("geofence state of 007/a"),
        "{refused:?}"
    );
    assert_eq!(to.keys(), [key("a")], "speed took its part");
}

#[test]
fn a_module_built_against_contract_0_3_0_loads_and_keeps_its_state_whole() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.wasm");
    std::fs::write(&old, handmade::grower(0, 0, 0)).unwrap();
    let engine = Engine::new(Default::default()).unwrap();
    let old_module = Module::load(&engine, "old", &old, "{}".into()).unwrap();
    assert!(!old_module.is_keyed());
    let speed = Module::load(&engine, "speed", &module("speed"), "{}".into()).unwrap();
    assert!(speed.is_keyed());

    let mut chain = Chain::new(engine, vec![old_module]).unwrap();
    assert!(chain.export_state(&[key("a")]).is_empty());
    assert!(chain.keys().is_empty());
    let state = ModuleState {
        module: "old".into(),
        states: vec![waystream::engine::bindings::KeyState {
            key: key("a"),
            state: b"{}".to_vec(),
        }],
    };
    let refused = chain.import_state(std::slice::from_ref(&state));
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].1.contains("no per-trajectory state"),
        "{refused:?}"
    );
}

#[test]
fn a_bounded_chain_forgets_the_least_recently_seen_trajectories_and_they_start_fresh() {
    let mut chain = standard_chain();
    chain.bound_state(&StateConfig {
        idle_secs: 0,
        max_trajectories: 3,
    });
    let ids = ["t0", "t1", "t2", "t3", "t4", "t5"];
    for (n, id) in ids.iter().enumerate() {
        chain.run(batch_of(&[id], 0..4), &mut Vec::new());
        let held = chain.keys();
        assert_eq!(held.len(), (n + 1).min(3), "{held:?}");
    }
    assert_eq!(chain.keys(), [key("t3"), key("t4"), key("t5")]);
    let stats = chain.retention_stats().unwrap();
    assert_eq!(
        (stats.tracked, stats.dropped_bound, stats.dropped_idle),
        (3, 3, 0)
    );

    // t5 goes on from its last point; t0, dropped, starts afresh.
    let t5 = run_points(&mut chain, batch_of(&["t5"], 4..6));
    assert!(t5[0].0.dist_m.is_some(), "{t5:?}");
    let t0 = run_points(&mut chain, batch_of(&["t0"], 4..6));
    assert_eq!(t0[0].0.dist_m, None, "{t0:?}");
    assert!(
        !chain.keys().contains(&key("t3")),
        "t3 is now the least recent"
    );
}

#[test]
fn a_bounded_run_whose_trajectories_end_before_the_bound_writes_what_an_unbounded_one_writes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    for t in 0..40u32 {
        let lon = 116.30 + 0.002 * f64::from(t);
        let lines: Vec<String> = (0..30)
            .map(|seq| plt_line(39.90 + 0.0005 * f64::from(seq), lon, 100.0, seq * 5))
            .collect();
        write_plt(
            &input,
            &format!("{:03}", t % 5),
            &format!("2008102302{t:04}"),
            &lines,
        );
    }
    let outputs: Vec<(Vec<u8>, serde_json::Value)> = [
        "idle_secs = 0\nmax_trajectories = 0",
        "idle_secs = 0\nmax_trajectories = 8",
    ]
    .into_iter()
    .enumerate()
    .map(|(n, state)| {
        let out = dir.path().join(format!("out{n}"));
        let config = pipeline_config(
            &input,
            &out,
            &Stage::standard_chain(),
            &format!("batch_size = 16\n[state]\n{state}"),
        );
        let summary = run(&config);
        assert!(summary.balanced());
        let points = std::fs::read(out.join("points.ndjson")).unwrap();
        (points, summary.to_json()["state"].clone())
    })
    .collect();
    assert_eq!(
        outputs[0].1,
        serde_json::Value::Null,
        "nothing bounded, nothing tracked"
    );
    let bounded = &outputs[1].1;
    assert_eq!(bounded["dropped_idle"], 0);
    assert!(
        bounded["dropped_bound"].as_u64().unwrap() >= 32,
        "{bounded}"
    );
    assert!(
        bounded["trajectories_held"].as_u64().unwrap() <= 8,
        "{bounded}"
    );
    assert_eq!(read_lines(&outputs[0].0), 40 * 30);
    assert!(
        outputs[0].0 == outputs[1].0,
        "the bounded run wrote other documents"
    );
}

fn read_lines(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
}
