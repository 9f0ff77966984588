use super::*;
use geo::{Bearing, Distance, Haversine};
use waystream_guest::Point;
use waystream_guest::testing::{point, points_batch};

fn speed() -> Speed {
    Speed::init("{}").unwrap()
}

fn at(seq: u32, ts_s: i64, lat: f64, lon: f64) -> Point {
    point(0, seq, ts_s * 1000, lat, lon)
}

#[test]
fn known_answers() {
    let out = speed()
        .process(points_batch(vec![
            at(0, 0, 0.0, 0.0),
            at(1, 100, 1.0, 0.0), // 1° north along a meridian in 100 s
            at(2, 100, 1.0, 1.0), // dt = 0: no speed
            at(3, 200, 1.0, 1.0), // not moving: no heading, speed 0
            at(4, 300, 0.0, 1.0), // due south
        ]))
        .unwrap();
    let p: Vec<Point> = out.points.iter().collect();
    assert_eq!(
        (p[0].dist_m, p[0].speed_mps, p[0].heading_deg),
        (None, None, None),
        "first point"
    );
    let one_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0; // 111,195.08 m
    assert!((p[1].dist_m.unwrap() - one_degree).abs() < 1e-6);
    assert!((p[1].speed_mps.unwrap() - one_degree / 100.0).abs() < 1e-9);
    assert_eq!(p[1].heading_deg, Some(0.0));
    assert_eq!(
        p[1].flags & flags::IMPLAUSIBLE_SPEED,
        flags::IMPLAUSIBLE_SPEED,
        "1,112 m/s > 100"
    );
    assert_eq!(p[2].speed_mps, None, "dt = 0");
    assert!(p[2].dist_m.unwrap() > 111_000.0);
    assert_eq!(p[2].flags & flags::IMPLAUSIBLE_SPEED, 0);
    assert_eq!(
        (p[3].dist_m, p[3].speed_mps, p[3].heading_deg),
        (Some(0.0), Some(0.0), None)
    );
    assert!((p[4].heading_deg.unwrap() - 180.0).abs() < 1e-9);
}

#[test]
fn agrees_with_geo_on_many_pairs() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..5000 {
        let (lat1, lon1) = (next() * 178.0 - 89.0, next() * 360.0 - 180.0);
        let (lat2, lon2) = (lat1 + (next() - 0.5) * 0.2, lon1 + (next() - 0.5) * 0.2);
        let (a, b) = (geo::Point::new(lon1, lat1), geo::Point::new(lon2, lat2));
        let want = Haversine.distance(a, b);
        let got = haversine_m(lat1, lon1, lat2, lon2);
        assert!(
            (got - want).abs() <= 1e-6 * want.max(1.0),
            "{got} vs {want}"
        );
        let want = Haversine.bearing(a, b).rem_euclid(360.0);
        let got = bearing_deg(lat1, lon1, lat2, lon2);
        let diff = (got - want).abs();
        assert!(diff.min(360.0 - diff) < 1e-6, "bearing {got} vs {want}");
        assert!((0.0..360.0).contains(&got));
    }
}

#[test]
fn poles_and_the_antimeridian() {
    // Across the 180° meridian: 0.002° of longitude at the equator, heading east.
    let out = speed()
        .process(points_batch(vec![
            at(0, 0, 0.0, 179.999),
            at(1, 1, 0.0, -179.999),
            at(2, 2, 90.0, 0.0),
            at(3, 3, -90.0, 0.0),
        ]))
        .unwrap();
    let p: Vec<Point> = out.points.iter().collect();
    let expected = EARTH_RADIUS_M * 0.002f64.to_radians();
    assert!(
        (p[1].dist_m.unwrap() - expected).abs() < 1e-3,
        "{:?}",
        p[1].dist_m
    );
    assert!((p[1].heading_deg.unwrap() - 90.0).abs() < 1e-6);
    // Pole to pole: half the circumference, finite values.
    assert!((p[3].dist_m.unwrap() - EARTH_RADIUS_M * std::f64::consts::PI).abs() < 1e-3);
    assert!(
        p.iter()
            .all(|p| p.heading_deg.is_none_or(|h| (0.0..360.0).contains(&h)))
    );
}

#[test]
fn trajectories_are_independent_and_state_survives_snapshot() {
    let mut s = speed();
    let mut batch = points_batch(vec![
        at(0, 0, 0.0, 0.0),
        point(1, 0, 0, 10.0, 10.0),
        at(1, 10, 0.0, 0.001),
    ]);
    if let Records::Points(p) = &mut batch.records {
        p.trajectory[1] = 1;
    }
    let out = s.process(batch).unwrap();
    assert!(
        out.points.get(1).unwrap().dist_m.is_none(),
        "trajectory 1 starts fresh"
    );
    assert!(
        out.points.get(2).unwrap().dist_m.unwrap() < 200.0,
        "trajectory 0 continues from its own last point"
    );

    let mut restored = speed();
    restored.restore(&s.snapshot()).unwrap();
    let out = restored
        .process(points_batch(vec![at(2, 20, 0.0, 0.002)]))
        .unwrap();
    assert!(
        (out.points.get(0).unwrap().dist_m.unwrap() - EARTH_RADIUS_M * 0.001f64.to_radians()).abs()
            < 1e-6
    );
    // A replayed point (seq not after the last) gets nothing and moves nothing.
    let out = restored
        .process(points_batch(vec![
            at(1, 10, 5.0, 5.0),
            at(3, 30, 0.0, 0.003),
        ]))
        .unwrap();
    assert_eq!(out.points.get(0).unwrap().dist_m, None);
    assert!(out.points.get(1).unwrap().dist_m.unwrap() < 200.0);
    assert!(restored.restore(b"{}").is_err());
}

#[test]
fn config_threshold_and_validation() {
    let mut s = Speed::init(r#"{"max_speed_mps": 5}"#).unwrap();
    let out = s
        .process(points_batch(vec![
            at(0, 0, 0.0, 0.0),
            at(1, 10, 0.0, 0.001),
        ]))
        .unwrap();
    assert_ne!(
        out.points.get(1).unwrap().flags & flags::IMPLAUSIBLE_SPEED,
        0,
        "11 m/s > 5"
    );
    assert!(Speed::init(r#"{"max_speed_mps": -1}"#).is_err());
    assert!(Speed::init(r#"{"max_sped": 1}"#).is_err());
}

#[test]
fn a_refused_batch_leaves_the_state_as_it_was() {
    let mut s = speed();
    s.process(points_batch(vec![at(0, 0, 0.0, 0.0)])).unwrap();
    let mut bad = points_batch(vec![at(1, 10, 0.0, 0.001), at(2, 11, 0.0, 0.5)]);
    if let Records::Points(p) = &mut bad.records {
        p.trajectory[1] = 3;
    }
    let err = s.process(bad).unwrap_err();
    assert!(err.contains("trajectory 3"), "{err}");
    // Measured from the last point of the last accepted batch: 0.002° of longitude.
    let out = s
        .process(points_batch(vec![at(3, 20, 0.0, 0.002)]))
        .unwrap();
    let dist = out.points.dist_m[0];
    assert!(
        (dist - EARTH_RADIUS_M * 0.002f64.to_radians()).abs() < 1e-6,
        "{dist}"
    );
}

#[test]
fn a_trajectory_moved_to_another_instance_continues_where_it_left_off() {
    let two = |seq: u32, ts_s: i64, lon: f64| {
        vec![
            point(0, seq, ts_s * 1000, 0.0, lon),
            point(1, seq, ts_s * 1000, 1.0, lon),
        ]
    };
    let mut here = speed();
    let first = points_batch(two(0, 0, 0.0));
    let keys = first.trajectories.clone();
    here.process(first).unwrap();
    // Only trajectory 0 moves: the other instance has no state for trajectory 1.
    let moved = here.keyed().unwrap().export(&keys[..1]);
    assert_eq!(moved.len(), 1);
    let mut there = speed();
    there.keyed().unwrap().import(moved).unwrap();
    let stayed = here.process(points_batch(two(1, 10, 0.001))).unwrap();
    let went = there.process(points_batch(two(1, 10, 0.001))).unwrap();
    assert_eq!(went.points.get(0), stayed.points.get(0));
    assert!(went.points.get(0).unwrap().dist_m.is_some());
    assert_eq!(went.points.get(1).unwrap().dist_m, None, "not moved: fresh");
    // Dropped keys are forgotten.
    here.keyed().unwrap().drop_keys(&keys);
    assert!(here.keyed().unwrap().keys().is_empty());
}
