//! Points as rows: the types a [`Transform`](crate::Transform) works with.
//!
//! The contract moves points across the Wasm boundary as columns (`point-columns`: one list
//! per field), because a list of plain numbers is one block copy where a list of records is
//! converted field by field. Transform code is easier to write one point at a time, so the
//! SDK turns the columns into a `Vec<`[`Point`]`>` before [`Transform::process`] and back
//! after it, inside the guest, where that is a tight loop over memory the guest already
//! owns. Absent values are `None` here and `NaN` / `u32::MAX` in the columns.
//!
//! [`Transform::process`]: crate::Transform::process

use crate::bindings::waystream::transform::types as wire;
use crate::{RawLines, Rejection, Trajectory};

/// The `zones` column's marker for "in no zone" (see `zone-set-index` in the contract).
pub const NO_ZONES: u32 = u32::MAX;

/// One GPS point.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// Index into the batch's `trajectories` table.
    pub trajectory: u32,
    /// Position of the point in its trajectory. Geolife timestamps have 1-second
    /// resolution and repeat, so order is by `seq`, never by `ts_ms`.
    pub seq: u32,
    /// Time in milliseconds since the Unix epoch, UTC.
    pub ts_ms: i64,
    /// WGS84 degrees.
    pub lat: f64,
    /// WGS84 degrees.
    pub lon: f64,
    /// Altitude in metres; none when the source had none (Geolife's -777).
    pub alt_m: Option<f64>,
    /// Index into the batch's `zone_sets` table; none means "in no zone" or not computed.
    pub zones: Option<u32>,
    /// Great-circle distance from the previous point of the trajectory, metres.
    pub dist_m: Option<f64>,
    /// Speed from the previous point, metres per second.
    pub speed_mps: Option<f64>,
    /// Initial bearing from the previous point, degrees clockwise from north, [0, 360).
    pub heading_deg: Option<f64>,
    /// See [`crate::flags`].
    pub flags: u32,
}

/// What a batch carries: raw lines (for a parser such as `parse-plt`) or points.
#[derive(Debug, Clone, PartialEq)]
pub enum Records {
    /// Raw input lines.
    Lines(RawLines),
    /// Points, in trajectory order.
    Points(Vec<Point>),
}

/// The unit of work: one call to [`Transform::process`](crate::Transform::process) per batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Per-batch identity table; `Point::trajectory` and `Line::trajectory` index it.
    pub trajectories: Vec<Trajectory>,
    /// Per-batch zone table: each entry is a sorted list of zone names; `Point::zones`
    /// indexes it.
    pub zone_sets: Vec<Vec<String>>,
    /// The records.
    pub records: Records,
}

/// What [`Transform::process`](crate::Transform::process) returns for a batch: every input
/// record either as one point in `points` (in input order) or listed in `rejected`.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The points, in input order.
    pub points: Vec<Point>,
    /// A replacement for the batch's `zone_sets` table, when the transform changed it;
    /// none keeps the input's table.
    pub zone_sets: Option<Vec<Vec<String>>>,
    /// Records refused one by one, with their reasons.
    pub rejected: Vec<Rejection>,
}

fn present(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// Columns to rows. Columns shorter than `seq` (the host never sends such) end the rows early.
fn rows(c: wire::PointColumns) -> Vec<Point> {
    let rows = c
        .trajectory
        .iter()
        .zip(&c.seq)
        .zip(&c.ts_ms)
        .zip(c.lat.iter().zip(&c.lon))
        .zip(c.alt_m.iter().zip(&c.zones))
        .zip(c.dist_m.iter().zip(&c.speed_mps))
        .zip(c.heading_deg.iter().zip(&c.flags));
    rows.map(
        |(
            (((((&trajectory, &seq), &ts_ms), (&lat, &lon)), (&alt, &zones)), (&dist, &speed)),
            (&heading, &flags),
        )| Point {
            trajectory,
            seq,
            ts_ms,
            lat,
            lon,
            alt_m: present(alt),
            zones: (zones != NO_ZONES).then_some(zones),
            dist_m: present(dist),
            speed_mps: present(speed),
            heading_deg: present(heading),
            flags,
        },
    )
    .collect()
}

/// Rows to columns.
fn columns(points: &[Point]) -> wire::PointColumns {
    let column = |f: fn(&Point) -> f64| points.iter().map(f).collect();
    wire::PointColumns {
        trajectory: points.iter().map(|p| p.trajectory).collect(),
        seq: points.iter().map(|p| p.seq).collect(),
        ts_ms: points.iter().map(|p| p.ts_ms).collect(),
        lat: column(|p| p.lat),
        lon: column(|p| p.lon),
        alt_m: column(|p| p.alt_m.unwrap_or(f64::NAN)),
        zones: points.iter().map(|p| p.zones.unwrap_or(NO_ZONES)).collect(),
        dist_m: column(|p| p.dist_m.unwrap_or(f64::NAN)),
        speed_mps: column(|p| p.speed_mps.unwrap_or(f64::NAN)),
        heading_deg: column(|p| p.heading_deg.unwrap_or(f64::NAN)),
        flags: points.iter().map(|p| p.flags).collect(),
    }
}

impl From<wire::Batch> for Batch {
    fn from(batch: wire::Batch) -> Self {
        Batch {
            trajectories: batch.trajectories,
            zone_sets: batch.zone_sets,
            records: match batch.records {
                wire::Records::Lines(raw) => Records::Lines(raw),
                wire::Records::Points(c) => Records::Points(rows(c)),
            },
        }
    }
}

impl From<Batch> for wire::Batch {
    fn from(batch: Batch) -> Self {
        wire::Batch {
            trajectories: batch.trajectories,
            zone_sets: batch.zone_sets,
            records: match batch.records {
                Records::Lines(raw) => wire::Records::Lines(raw),
                Records::Points(points) => wire::Records::Points(columns(&points)),
            },
        }
    }
}

impl From<Output> for wire::Output {
    fn from(output: Output) -> Self {
        wire::Output {
            points: columns(&output.points),
            zone_sets: output.zone_sets,
            rejected: output.rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{point, points_batch};

    #[test]
    fn points_survive_columns_with_absent_values_as_markers() {
        let mut full = point(1, 7, 1_000, 39.9, 116.4);
        full.alt_m = Some(-12.5);
        full.zones = Some(0);
        full.dist_m = Some(0.0);
        full.speed_mps = Some(1.5);
        full.heading_deg = Some(359.9);
        full.flags = 1 << 16;
        let empty = point(0, 8, 2_000, -33.0, 151.0);
        let batch = points_batch(vec![full, empty]);
        let wire = wire::Batch::from(batch.clone());
        let wire::Records::Points(c) = &wire.records else {
            panic!("points expected")
        };
        assert!(c.alt_m[1].is_nan() && c.dist_m[1].is_nan());
        assert_eq!(c.zones, vec![0, NO_ZONES]);
        assert_eq!(Batch::from(wire), batch);
    }
}
