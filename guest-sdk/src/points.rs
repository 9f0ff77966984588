//! Points: the contract's columns, with rows for code that works one point at a time.
//!
//! The contract moves points across the Wasm boundary as columns (`point-columns`: one list
//! per field), because a list of plain numbers is one block copy where a list of records is
//! converted field by field. The SDK hands those columns to [`Transform::process`] as they
//! arrive and sends back the ones it returns, so nothing is converted on the way in or out
//! (converting every batch to rows and back was measured at 60 % of a module's boundary
//! cost, 20 ns per point per module).
//!
//! Code that thinks in points uses the rows of [`PointColumns`]: [`PointColumns::update`]
//! (and [`PointColumns::try_update`]) calls a closure with each point as a [`Point`], absent
//! values as `None`, and writes back what it changed, in one pass; [`PointColumns::push`]
//! and `collect()` build columns from points; [`PointColumns::get`] and
//! [`PointColumns::iter`] read them. Code that wants every last nanosecond reads and writes
//! the columns (`points.lat`, `points.speed_mps`, …) directly, where absent is `NaN` (floats)
//! or [`NO_ZONES`].
//!
//! ```
//! use waystream_guest::{Point, PointColumns, testing::point};
//!
//! let mut points: PointColumns = (0..3).map(|i| point(0, i, 1_000 * i64::from(i), 39.9, 116.4)).collect();
//! points.update(|p| p.speed_mps = Some(f64::from(p.seq)));
//! assert_eq!(points.speed_mps, [0.0, 1.0, 2.0]);
//! assert_eq!(points.get(2).and_then(|p| p.alt_m), None);
//! assert!(points.alt_m.iter().all(|v| v.is_nan()));
//! ```
//!
//! [`Transform::process`]: crate::Transform::process

pub use crate::bindings::waystream::transform::types::PointColumns;
pub use waystream_contract::{NO_ZONES, Point};

impl PointColumns {
    /// Checks what code indexing the columns point by point relies on: every column is as
    /// long as `seq`, and every point's `trajectory` is an entry of a table of
    /// `trajectories` entries (the batch's). A stateful transform checks first, so that a
    /// batch it refuses leaves its state as the batch found it.
    pub fn check(&self, trajectories: usize) -> Result<(), String> {
        if !self.is_rectangular() {
            return Err("the batch's point columns differ in length".into());
        }
        match self
            .trajectory
            .iter()
            .find(|&&t| t as usize >= trajectories)
        {
            Some(t) => Err(format!(
                "point refers to trajectory {t}, not in the batch's table of {trajectories}"
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::point;

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
        let columns: PointColumns = [full, empty].into_iter().collect();
        assert!(columns.is_rectangular());
        assert!(columns.alt_m[1].is_nan() && columns.dist_m[1].is_nan());
        assert_eq!(columns.zones, vec![0, NO_ZONES]);
        assert_eq!(columns.iter().collect::<Vec<_>>(), [full, empty]);
        assert_eq!(columns.get(2), None);
        assert_eq!(columns.check(2), Ok(()));
        let err = columns.check(1).unwrap_err();
        assert!(err.contains("trajectory 1,"), "{err}");
    }

    #[test]
    fn update_writes_back_every_changed_field_and_try_update_stops_at_an_error() {
        let mut columns: PointColumns = (0..3).map(|i| point(0, i, 0, 1.0, 2.0)).collect();
        columns.update(|p| {
            p.lat += 1.0;
            p.alt_m = Some(3.0);
            p.zones = (p.seq == 1).then_some(4);
            p.heading_deg = Some(5.0);
            p.flags = 6;
        });
        let changed = columns.get(1).unwrap();
        assert_eq!(
            (changed.lat, changed.alt_m, changed.zones),
            (2.0, Some(3.0), Some(4))
        );
        assert_eq!((changed.heading_deg, changed.flags), (Some(5.0), 6));
        assert_eq!(columns.zones, [NO_ZONES, 4, NO_ZONES]);

        let result = columns.try_update(|p| {
            if p.seq == 1 {
                return Err(format!("seq {}", p.seq));
            }
            p.speed_mps = Some(9.0);
            Ok(())
        });
        assert_eq!(result, Err("seq 1".to_string()));
        assert_eq!(columns.speed_mps[0], 9.0);
        assert!(columns.speed_mps[1].is_nan() && columns.speed_mps[2].is_nan());
        columns.flags.pop();
        assert!(columns.check(1).unwrap_err().contains("differ in length"));
    }
}
