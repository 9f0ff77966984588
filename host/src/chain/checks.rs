//! What the chain checks in every module's output before trusting it.
//!
//! * **Accounting**: every input record comes out as exactly one point (same trajectory and
//!   `seq`, in input order) or as one rejection with an in-range index. A module that
//!   breaks this fails its whole batch.
//! * **The zone table**: no zone set lists more than `zones_per_point` names (the batch
//!   fails otherwise: every document of the set would repeat them), and a name longer than
//!   `zone_name_bytes` is cut and marked.
//! * **Values no downstream accepts**: a latitude or longitude that is not a number within
//!   its range, an infinite distance, speed, heading or altitude (`NaN` is "absent", which
//!   the contract allows), a timestamp outside `min_year..=max_year`, or a reserved flag
//!   bit (4–15) set. Such a point is rejected with a cause naming the field, not encoded
//!   as a document that looks valid.
//!
//! The value check runs on every module's output, so it is written for the common case:
//! one pass per column, without branches, and the slow path (which point, which field)
//! only when that pass finds something.

use std::ops::RangeInclusive;

use crate::cause::Cause;
use crate::engine::Limits;
use crate::engine::bindings::{Batch, NO_ZONES, Output, PointColumns, Records};

use waystream_contract::flags::RESERVED as RESERVED_FLAGS;

/// Checks that `output` accounts for every input record exactly once. `mask` is scratch
/// space; afterwards `mask[i]` says whether input record `i` was rejected.
pub fn check_accounting(
    input: &Batch,
    output: &Output,
    mask: &mut Vec<bool>,
) -> Result<(), String> {
    let n = input.len();
    if output.points.len() + output.rejected.len() != n {
        return Err(format!(
            "broken accounting: the module returned {} points and {} rejections for {n} records",
            output.points.len(),
            output.rejected.len()
        ));
    }
    mask.clear();
    mask.resize(n, false);
    for r in &output.rejected {
        match mask.get_mut(r.index as usize) {
            None => {
                return Err(format!(
                    "broken accounting: rejection index {} is out of range (batch of {n})",
                    r.index
                ));
            }
            Some(true) => {
                return Err(format!(
                    "broken accounting: record {} rejected twice",
                    r.index
                ));
            }
            Some(seen) => *seen = true,
        }
    }
    if !output.points.is_rectangular() {
        return Err(format!(
            "broken accounting: the module's point columns differ in length ({} points by `seq`)",
            output.points.len()
        ));
    }
    let zone_sets = output.zone_sets.as_ref().unwrap_or(&input.zone_sets).len();
    let points = &output.points;
    let (trajectories, seqs) = match &input.records {
        Records::Lines(raw) => (&raw.trajectory, &raw.seq),
        Records::Points(points) => (&points.trajectory, &points.seq),
    };
    // Nothing rejected (nearly every batch): the identities must be the input's, which
    // two slice comparisons check; otherwise point by point, to say where they differ.
    let same =
        output.rejected.is_empty() && points.trajectory == *trajectories && points.seq == *seqs;
    if !same {
        let kept = (0..n).filter(|&i| !mask[i]);
        let identities = points.trajectory.iter().zip(&points.seq);
        for ((&trajectory, &seq), index) in identities.zip(kept) {
            let expected = input.identity(index);
            if expected != Some((trajectory, seq)) {
                return Err(format!(
                    "broken accounting: output point (trajectory {trajectory}, seq {seq}) does not match input record {index}"
                ));
            }
        }
    }
    if let Some(zones) = points
        .zones
        .iter()
        .find(|&&z| z != NO_ZONES && z as usize >= zone_sets)
    {
        return Err(format!("point refers to zone set {zones} of {zone_sets}"));
    }
    Ok(())
}

/// Holds a module's zone table to the limits: fails when a set lists too many names, cuts
/// (and counts) names that are too long.
pub fn check_zone_table(output: &mut Output, limits: &Limits, cut: &mut u64) -> Result<(), String> {
    let Some(sets) = &mut output.zone_sets else {
        return Ok(());
    };
    for (i, set) in sets.iter_mut().enumerate() {
        if set.len() > limits.zones_per_point {
            return Err(format!(
                "zone set {i} lists {} zones, more than zones_per_point ({})",
                set.len(),
                limits.zones_per_point
            ));
        }
        for name in set.iter_mut().filter(|n| n.len() > limits.zone_name_bytes) {
            let mut end = limits.zone_name_bytes;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
            name.push('…');
            *cut += 1;
        }
    }
    Ok(())
}

/// Finds the points no downstream accepts and takes them out of `points`: returns each
/// one's position in `points` (before removal) with the cause.
pub fn take_invalid_points(points: &mut PointColumns, limits: &Limits) -> Vec<(usize, Cause)> {
    let ts_range = limits.ts_range_ms();
    if all_valid(points, &ts_range) {
        return Vec::new();
    }
    let invalid: Vec<(usize, Cause)> = (0..points.len())
        .filter_map(|i| invalid_field(points, i, limits, &ts_range).map(|why| (i, why)))
        .collect();
    let mut keep = vec![true; points.len()];
    for (i, _) in &invalid {
        keep[*i] = false;
    }
    retain_points(points, &keep);
    invalid
}

/// One branch-free pass per column: whether every point is valid. Each pass counts the
/// values outside their range (a sum of comparisons, which the compiler turns into vector
/// compares and adds); this runs on every module's output of every batch.
fn all_valid(p: &PointColumns, ts_range: &RangeInclusive<i64>) -> bool {
    // A NaN latitude or longitude is outside too.
    let outside = |column: &[f64], bound: f64| -> usize {
        column
            .iter()
            .map(|v| usize::from((v.abs() > bound) | v.is_nan()))
            .sum()
    };
    // NaN is "absent" for these; only an infinity is not a value.
    let infinite = |column: &[f64]| -> usize {
        column
            .iter()
            .map(|v| usize::from(v.abs() == f64::INFINITY))
            .sum()
    };
    let (low, high) = (*ts_range.start(), *ts_range.end());
    let times: usize = p
        .ts_ms
        .iter()
        .map(|&t| usize::from((t < low) | (t > high)))
        .sum();
    let flags = p.flags.iter().fold(0, |all, f| all | f);
    outside(&p.lat, 90.0)
        + outside(&p.lon, 180.0)
        + times
        + infinite(&p.alt_m)
        + infinite(&p.dist_m)
        + infinite(&p.speed_mps)
        + infinite(&p.heading_deg)
        == 0
        && flags & RESERVED_FLAGS == 0
}

/// Why point `i` is not valid, naming the first field that is not.
fn invalid_field(
    p: &PointColumns,
    i: usize,
    limits: &Limits,
    ts_range: &RangeInclusive<i64>,
) -> Option<Cause> {
    // `within` is false for NaN too.
    let within = |v: f64, bound: f64| v.abs() <= bound;
    let why = if !within(p.lat[i], 90.0) {
        format!("lat is {} (must be a number within ±90)", p.lat[i])
    } else if !within(p.lon[i], 180.0) {
        format!("lon is {} (must be a number within ±180)", p.lon[i])
    } else if !ts_range.contains(&p.ts_ms[i]) {
        format!(
            "ts_ms {} is outside the years {}–{}",
            p.ts_ms[i], limits.min_year, limits.max_year
        )
    } else if let Some((name, value)) = [
        ("alt_m", p.alt_m[i]),
        ("dist_m", p.dist_m[i]),
        ("speed_mps", p.speed_mps[i]),
        ("heading_deg", p.heading_deg[i]),
    ]
    .into_iter()
    .find(|(_, v)| v.is_infinite())
    {
        format!("{name} is {value} (JSON has no infinity; NaN means absent)")
    } else if p.flags[i] & RESERVED_FLAGS != 0 {
        format!(
            "flags set reserved bits 0x{:04x} (bits 4–15 are waystream's; user bits are 16–31)",
            p.flags[i] & RESERVED_FLAGS
        )
    } else {
        return None;
    };
    Some(Cause::host(format!(
        "the module returned an invalid point: {why}"
    )))
}

/// Keeps the points whose `keep` entry is true, in order.
fn retain_points(p: &mut PointColumns, keep: &[bool]) {
    fn retain<T>(column: &mut Vec<T>, keep: &[bool]) {
        let mut i = 0;
        column.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    retain(&mut p.trajectory, keep);
    retain(&mut p.seq, keep);
    retain(&mut p.ts_ms, keep);
    retain(&mut p.lat, keep);
    retain(&mut p.lon, keep);
    retain(&mut p.alt_m, keep);
    retain(&mut p.zones, keep);
    retain(&mut p.dist_m, keep);
    retain(&mut p.speed_mps, keep);
    retain(&mut p.heading_deg, keep);
    retain(&mut p.flags, keep);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::bindings::{Point, Trajectory};

    fn points_batch(points: PointColumns) -> Batch {
        Batch {
            trajectories: vec![Trajectory {
                user: "u".into(),
                id: "t".into(),
            }],
            zone_sets: Vec::new(),
            records: Records::Points(points),
        }
    }

    fn point(seq: u32) -> Point {
        Point::at(0, seq, 1_224_730_384_000, 39.9, 116.4)
    }

    fn output(points: PointColumns) -> Output {
        Output {
            points,
            zone_sets: None,
            rejected: Vec::new(),
        }
    }

    #[test]
    fn columns_of_different_lengths_fail_the_batch() {
        let input = points_batch((0..3).map(point).collect());
        let mut ragged: PointColumns = (0..3).map(point).collect();
        assert_eq!(
            check_accounting(&input, &output(ragged.clone()), &mut Vec::new()),
            Ok(())
        );
        ragged.lat.pop();
        let error = check_accounting(&input, &output(ragged), &mut Vec::new()).unwrap_err();
        assert!(error.contains("columns differ in length"), "{error}");
    }

    #[test]
    fn a_zone_set_index_past_the_table_fails_the_batch_and_no_zones_does_not() {
        let input = points_batch((0..2).map(point).collect());
        let mut points: PointColumns = (0..2).map(point).collect();
        assert_eq!(points.zones, vec![NO_ZONES, NO_ZONES]);
        assert_eq!(
            check_accounting(&input, &output(points.clone()), &mut Vec::new()),
            Ok(())
        );
        points.zones[1] = 0;
        let error = check_accounting(&input, &output(points), &mut Vec::new()).unwrap_err();
        assert!(error.contains("zone set 0 of 0"), "{error}");
    }

    #[test]
    fn invalid_values_are_taken_out_with_the_field_named() {
        let mut points: PointColumns = (0..7).map(point).collect();
        points.lat[1] = f64::NAN;
        points.lon[2] = 180.5;
        points.ts_ms[3] = i64::MIN;
        points.speed_mps[4] = f64::INFINITY;
        points.flags[5] = 1 << 4;
        // Absent values (NaN) and user flag bits are fine.
        points.heading_deg[6] = f64::NAN;
        points.flags[6] = 1 << 16;
        let invalid = take_invalid_points(&mut points, &Limits::default());
        let found: Vec<(usize, &str)> = invalid.iter().map(|(i, c)| (*i, c.as_str())).collect();
        assert_eq!(found.len(), 5, "{found:?}");
        for ((index, cause), (want_index, want)) in found.iter().zip([
            (1, "lat is NaN"),
            (2, "lon is 180.5"),
            (
                3,
                "ts_ms -9223372036854775808 is outside the years 1970–2100",
            ),
            (4, "speed_mps is inf"),
            (5, "reserved bits 0x0010"),
        ]) {
            assert_eq!(*index, want_index);
            assert!(cause.contains(want), "{cause}");
        }
        assert_eq!(points.seq, [0, 6]);
        assert!(points.is_rectangular());
        assert!(take_invalid_points(&mut points, &Limits::default()).is_empty());
    }

    #[test]
    fn zone_tables_are_held_to_their_limits() {
        let limits = Limits {
            zone_name_bytes: 4,
            zones_per_point: 2,
            ..Limits::default()
        };
        let mut out = output(PointColumns::default());
        out.zone_sets = Some(vec![vec!["short".into(), "ok".into()]]);
        let mut cut = 0;
        check_zone_table(&mut out, &limits, &mut cut).unwrap();
        assert_eq!(out.zone_sets.as_ref().unwrap()[0], ["shor…", "ok"]);
        assert_eq!(cut, 1);
        out.zone_sets = Some(vec![vec!["a".into(), "b".into(), "c".into()]]);
        let err = check_zone_table(&mut out, &limits, &mut cut).unwrap_err();
        assert!(err.contains("zone set 0 lists 3 zones, more than zones_per_point (2)"));
    }
}
