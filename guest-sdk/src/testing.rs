//! Builders for batches in native tests of a transform.
//!
//! Each builder puts its records under trajectory `0` of user `"test"`, id `"t"` unless
//! told otherwise, which is what most unit tests want.

use crate::{Batch, Point, RawLines, Records, Trajectory};

/// A trajectory table entry.
pub fn trajectory(user: &str, id: &str) -> Trajectory {
    Trajectory {
        user: user.into(),
        id: id.into(),
    }
}

/// A point with the given identity, time and position; every derived field empty.
pub fn point(trajectory: u32, seq: u32, ts_ms: i64, lat: f64, lon: f64) -> Point {
    Point::at(trajectory, seq, ts_ms, lat, lon)
}

/// A batch of points, all belonging to one trajectory table entry `test/t` (index 0) unless
/// they refer to more: the table gets one entry `test/t<N>` per index used.
pub fn points_batch(points: Vec<Point>) -> Batch {
    let count = points.iter().map(|p| p.trajectory + 1).max().unwrap_or(1);
    Batch {
        trajectories: trajectories(count),
        zone_sets: Vec::new(),
        records: Records::Points(points.into_iter().collect()),
    }
}

/// A batch of raw lines of trajectory 0, numbered from `seq` 0.
pub fn lines_batch<'a>(lines: impl IntoIterator<Item = &'a str>) -> Batch {
    let mut raw = RawLines::default();
    for (seq, line) in lines.into_iter().enumerate() {
        raw.push(line.as_bytes(), 0, seq as u32);
    }
    Batch {
        trajectories: trajectories(1),
        zone_sets: Vec::new(),
        records: Records::Lines(raw),
    }
}

fn trajectories(count: u32) -> Vec<Trajectory> {
    (0..count)
        .map(|i| match i {
            0 => trajectory("test", "t"),
            _ => trajectory("test", &format!("t{i}")),
        })
        .collect()
}
