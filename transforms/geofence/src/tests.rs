use super::*;
use serde_json::json;
use waystream_guest::Point;
use waystream_guest::testing::{point, points_batch};

/// A square ring from (x0, y0) to (x1, y1), counter-clockwise, closed.
fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<[f64; 2]> {
    vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
}

fn feature(name: &str, geometry: serde_json::Value) -> serde_json::Value {
    json!({"type": "Feature", "properties": {"name": name}, "geometry": geometry})
}

/// Zones: "donut" (a square with a square hole), "left" overlapping it, "islands" (two
/// squares as one MultiPolygon).
fn zones() -> serde_json::Value {
    json!({"type": "FeatureCollection", "features": [
        feature("donut", json!({"type": "Polygon", "coordinates": [square(0., 0., 10., 10.), square(4., 4., 6., 6.)]})),
        feature("left", json!({"type": "Polygon", "coordinates": [square(-5., 0., 2., 10.)]})),
        feature("islands", json!({"type": "MultiPolygon", "coordinates": [
            [square(20., 20., 21., 21.)], [square(30., 30., 31., 31.)]]})),
    ]})
}

fn geofence(zones: serde_json::Value) -> Geofence {
    Geofence::init(&json!({ "zones": zones }).to_string()).unwrap()
}

/// The zone names of each output point.
fn names(out: &Output) -> Vec<Vec<String>> {
    let table = out.zone_sets.clone().unwrap_or_default();
    out.points
        .iter()
        .map(|p| {
            p.zones
                .map(|z| table[z as usize].clone())
                .unwrap_or_default()
        })
        .collect()
}

fn at(seq: u32, lon: f64, lat: f64) -> Point {
    point(0, seq, i64::from(seq) * 1000, lat, lon)
}

#[test]
fn holes_edges_overlaps_and_multipolygons() {
    let mut g = geofence(zones());
    let out = g
        .process(points_batch(vec![
            at(0, 5., 5.),     // in the hole: in no zone
            at(1, 10., 5.),    // on donut's outer edge: inside
            at(2, 4., 5.),     // on the hole's edge: still inside donut
            at(3, 1., 1.),     // donut and left overlap: sorted names
            at(4, 30.5, 30.5), // the second island
            at(5, 50., 50.),   // nowhere
        ]))
        .unwrap();
    let expected: Vec<Vec<&str>> = vec![
        vec![],
        vec!["donut"],
        vec!["donut"],
        vec!["donut", "left"],
        vec!["islands"],
        vec![],
    ];
    assert_eq!(names(&out), expected);
}

#[test]
fn enter_and_exit_flags_follow_zone_set_changes() {
    let mut g = geofence(zones());
    let out = g
        .process(points_batch(vec![
            at(0, 1., 1.),
            at(1, 3., 1.),
            at(2, 3., 2.),
            at(3, 5., 5.),
            at(4, 1., 1.),
        ]))
        .unwrap();
    let f: Vec<u32> = out.points.iter().map(|p| p.flags).collect();
    use flags::{ZONE_ENTER as E, ZONE_EXIT as X};
    // first point enters {donut, left}; leaves left; stays; leaves donut into the hole;
    // re-enters both.
    assert_eq!(f, [E, X, 0, X, E]);
}

#[test]
fn state_carries_across_batches_and_through_snapshot() {
    let mut g = geofence(zones());
    g.process(points_batch(vec![at(0, 1., 1.)])).unwrap();
    let state = g.snapshot();
    let mut next = geofence(zones());
    next.restore(&state).unwrap();
    // Same zones as before: no enter flag on the next point.
    let out = next.process(points_batch(vec![at(1, 1., 2.)])).unwrap();
    assert_eq!(out.points.flags[0], 0);
    // A fresh instance would have flagged it as entering.
    let out = geofence(zones())
        .process(points_batch(vec![at(1, 1., 2.)]))
        .unwrap();
    assert_eq!(out.points.flags[0], flags::ZONE_ENTER);
    assert!(next.restore(b"not json").is_err());
}

#[test]
fn a_trajectory_moved_to_another_instance_keeps_its_zones() {
    let mut g = geofence(zones());
    let first = points_batch(vec![at(0, 1., 1.)]);
    let keys = first.trajectories.clone();
    g.process(first).unwrap();
    let moved = g.keyed().unwrap().export(&keys);
    let mut there = geofence(zones());
    there.keyed().unwrap().import(moved).unwrap();
    assert_eq!(there.keyed().unwrap().keys(), keys);
    // Same zones as before: no enter flag on the next point, as on the first instance.
    let out = there.process(points_batch(vec![at(1, 1., 2.)])).unwrap();
    assert_eq!(out.points.flags[0], 0);
    let bad = vec![waystream_guest::keyed::KeyState {
        key: keys[0].clone(),
        state: b"[]".to_vec(),
    }];
    assert!(there.keyed().unwrap().import(bad).is_err());
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    for (config, reason) in [
        (json!({}), "zones"),
        (
            json!({"zones": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]}}),
            "no string property",
        ),
        (
            json!({"zones": {"type": "FeatureCollection", "features": [
            feature("p", json!({"type": "Point", "coordinates": [0, 0]}))]}}),
            "only Polygon",
        ),
        (
            json!({"zones": {"type": "FeatureCollection", "features": [
            feature("a", json!({"type": "Polygon", "coordinates": [square(0., 0., 1., 1.)]})),
            feature("a", json!({"type": "Polygon", "coordinates": [square(0., 0., 1., 1.)]}))]}}),
            "used twice",
        ),
    ] {
        let err = Geofence::init(&config.to_string())
            .err()
            .expect("config must be refused");
        assert!(err.contains(reason), "{err:?} should mention {reason:?}");
    }
}

#[test]
fn poles_and_antimeridian_do_not_panic() {
    let mut g = geofence(zones());
    let out = g
        .process(points_batch(vec![
            at(0, 180., 90.),
            at(1, -180., -90.),
            at(2, 179.999, 0.),
        ]))
        .unwrap();
    assert!(out.points.iter().all(|p| p.zones.is_none()));
}

/// Independent point-in-polygon: crossing-number test plus an explicit on-segment check.
fn in_ring(ring: &[[f64; 2]], x: f64, y: f64) -> (bool, bool) {
    let mut inside = false;
    for w in ring.windows(2) {
        let ([x1, y1], [x2, y2]) = (w[0], w[1]);
        let cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1);
        let within = x >= x1.min(x2) && x <= x1.max(x2) && y >= y1.min(y2) && y <= y1.max(y2);
        if cross == 0.0 && within {
            return (true, true);
        }
        if (y1 > y) != (y2 > y) && x < x1 + (y - y1) * (x2 - x1) / (y2 - y1) {
            inside = !inside;
        }
    }
    (inside, false)
}

#[test]
fn grid_of_2500_zones_agrees_with_a_brute_force_check() {
    // A 50 x 50 grid of 0.01° cells, like ../shared/data/zones/beijing-grid-2500.geojson.
    let mut features = Vec::new();
    let mut rings = Vec::new();
    for i in 0..50 {
        for j in 0..50 {
            let ring = square(
                116.0 + j as f64 * 0.01,
                39.6 + i as f64 * 0.01,
                116.01 + j as f64 * 0.01,
                39.61 + i as f64 * 0.01,
            );
            features.push(feature(
                &format!("cell-{i:02}-{j:02}"),
                json!({"type": "Polygon", "coordinates": [ring.clone()]}),
            ));
            rings.push((format!("cell-{i:02}-{j:02}"), ring));
        }
    }
    let mut g = geofence(json!({"type": "FeatureCollection", "features": features}));
    // Deterministic pseudo-random points over and around the grid.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let points: Vec<Point> = (0..2000)
        .map(|s| at(s, 115.95 + next() * 0.6, 39.55 + next() * 0.6))
        .collect();
    let out = g.process(points_batch(points.clone())).unwrap();
    for (p, got) in points.iter().zip(names(&out)) {
        let mut want: Vec<String> = rings
            .iter()
            .filter(|(_, ring)| in_ring(ring, p.lon, p.lat).0)
            .map(|(n, _)| n.clone())
            .collect();
        want.sort();
        assert_eq!(got, want, "point {}, {}", p.lon, p.lat);
    }
}

/// Random simple polygons (stars around a centre, some with a hole), overlapping, of very
/// different sizes; points anywhere, on vertices, on edges and a hair off them: the grid
/// index gives what testing every zone directly gives.
#[test]
fn the_grid_agrees_with_testing_every_zone_on_random_shapes_and_points() {
    use geo::coordinate_position::{CoordPos, CoordinatePosition};
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut features = Vec::new();
    let mut shapes = Vec::new();
    let mut on_edges = Vec::new();
    for z in 0..40 {
        let (cx, cy) = (116.0 + next() * 0.5, 39.7 + next() * 0.5);
        let size = [0.002, 0.02, 0.2][z % 3] * (0.5 + next());
        let n = 3 + (next() * 9.0) as usize;
        let star = |scale: f64, next: &mut dyn FnMut() -> f64| -> Vec<[f64; 2]> {
            let mut ring: Vec<[f64; 2]> = (0..n)
                .map(|k| {
                    let angle = std::f64::consts::TAU * k as f64 / n as f64;
                    let r = scale * (0.4 + 0.6 * next());
                    [cx + r * angle.cos(), cy + r * angle.sin()]
                })
                .collect();
            ring.push(ring[0]);
            ring
        };
        let outer = star(size, &mut next);
        let mut rings = vec![outer.clone()];
        if z % 4 == 0 {
            // A hole well inside the outer ring's inner radius.
            let mut hole = star(size * 0.3, &mut next);
            hole.reverse();
            rings.push(hole);
        }
        for ring in &rings {
            for w in ring.windows(2) {
                on_edges.push(w[0]);
                let t = next();
                on_edges.push([
                    w[0][0] + t * (w[1][0] - w[0][0]),
                    w[0][1] + t * (w[1][1] - w[0][1]),
                ]);
            }
        }
        let name = format!("z{z:02}");
        features.push(feature(
            &name,
            json!({"type": "Polygon", "coordinates": rings}),
        ));
        let polygon = geo::Polygon::new(
            outer.iter().map(|&[x, y]| geo::Coord { x, y }).collect(),
            rings[1..]
                .iter()
                .map(|r| r.iter().map(|&[x, y]| geo::Coord { x, y }).collect())
                .collect(),
        );
        shapes.push((name, polygon));
    }
    shapes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut index = ZoneIndex::from_geojson(
        json!({"type": "FeatureCollection", "features": features}),
        "name",
    )
    .unwrap();
    let mut points: Vec<[f64; 2]> = (0..20_000)
        .map(|_| [115.95 + next() * 0.6, 39.65 + next() * 0.6])
        .collect();
    for &[x, y] in &on_edges {
        points.push([x, y]);
        points.push([x + 1e-12, y - 1e-12]);
        points.push([x - 1e-9, y + 1e-9]);
    }
    let (mut inside, mut mixed_answers) = (0, std::collections::HashSet::new());
    for [x, y] in points {
        let coord = geo::Coord { x, y };
        let want: Vec<String> = shapes
            .iter()
            .filter(|(_, p)| p.coordinate_position(&coord) != CoordPos::Outside)
            .map(|(n, _)| n.clone())
            .collect();
        let got = index.set_at(x, y, SetId::EMPTY);
        assert_eq!(index.names_of(got), want, "point {x}, {y}");
        inside += usize::from(!want.is_empty());
        mixed_answers.insert(got);
    }
    // The checks above covered points in zones and many different answers.
    assert!(inside > 5_000, "{inside} points in some zone");
    assert!(
        mixed_answers.len() > 40,
        "{} distinct zone sets",
        mixed_answers.len()
    );
}

#[test]
fn a_refused_batch_leaves_the_state_and_the_zone_table_as_they_were() {
    let mut g = geofence(zones());
    let out = g.process(points_batch(vec![at(0, 30.5, 30.5)])).unwrap();
    assert_eq!(out.points.flags[0] & flags::ZONE_ENTER, flags::ZONE_ENTER);
    // The trajectory moves on, then a point refers past the trajectory table: refused.
    let mut bad = vec![at(1, 1., 1.), at(2, 20.5, 20.5), at(3, 5., 5.)];
    bad[2].trajectory = 7;
    let mut batch = points_batch(bad);
    batch.trajectories.truncate(1);
    let err = g.process(batch).unwrap_err();
    assert!(err.contains("trajectory 7"), "{err}");
    // The next point continues from the last accepted one (still in "islands": no enter
    // flag), and the batch's table holds its own sets only, from entry 0.
    let out = g.process(points_batch(vec![at(4, 30.5, 30.5)])).unwrap();
    assert_eq!(
        out.points.flags[0] & (flags::ZONE_ENTER | flags::ZONE_EXIT),
        0
    );
    assert_eq!(out.points.zones, [0]);
    assert_eq!(names(&out), [vec!["islands".to_string()]]);
}
