//! A waystream transform in Rust, the twin of `examples/python-stops` and
//! `examples/js-stops`: flags points slower than a threshold as stops (user flag bit 16).
//! Configured from the pipeline (`config = { max_speed_mps = 5.0 }`, default 0.5 m/s). A
//! point whose speed is absent (NaN) is not a stop. It counts the points it has seen and
//! hands the count over on a hot swap. The three are benchmarked against each other
//! (`cargo xtask bench --polyglot`).

use waystream_guest::{Batch, Output, Records, Transform, state};

/// User flag bit 16: the document shows it as `user_16`.
pub const STOP: u32 = 1 << 16;

/// The transform: its threshold, and the points seen so far.
pub struct Stops {
    max_speed_mps: f64,
    seen: u64,
}

impl Transform for Stops {
    fn init(config: &str) -> Result<Self, String> {
        let config: serde_json::Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
        let max_speed_mps = match &config["max_speed_mps"] {
            serde_json::Value::Null => 0.5,
            value => value
                .as_f64()
                .filter(|v| *v > 0.0)
                .ok_or(format!("max_speed_mps must be a positive number, not {value}"))?,
        };
        Ok(Stops {
            max_speed_mps,
            seen: 0,
        })
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        let Records::Points(mut points) = batch.records else {
            return Err("rust-stops needs points: put it after parse-plt".into());
        };
        // The columns directly: the hot loop of a transform that touches every point.
        for (flags, speed) in points.flags.iter_mut().zip(&points.speed_mps) {
            // NaN (no speed) compares false: such points stay unflagged.
            if *speed < self.max_speed_mps {
                *flags |= STOP;
            }
        }
        self.seen += points.flags.len() as u64;
        Ok(Output::points(points))
    }

    fn snapshot(&self) -> Vec<u8> {
        state::save(1, &self.seen)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Some(seen) = state::load("rust-stops", 1, bytes)? {
            self.seen = seen;
        }
        Ok(())
    }
}

waystream_guest::export_transform!(Stops);

#[cfg(test)]
mod tests {
    use super::*;
    use waystream_guest::testing::{point, points_batch};

    #[test]
    fn slow_points_are_stops_and_absent_speeds_are_not() {
        let mut stops = Stops::init(r#"{"max_speed_mps": 5.0}"#).unwrap();
        let mut points = vec![point(0, 0, 0, 39.9, 116.4); 3];
        points[0].speed_mps = None;
        points[1].speed_mps = Some(1.0);
        points[2].speed_mps = Some(11.1);
        let out = stops.process(points_batch(points)).unwrap();
        assert_eq!(out.points.flags, [0, STOP, 0]);
    }

    #[test]
    fn the_count_carries_over_and_a_bad_threshold_is_refused() {
        let mut stops = Stops::init("{}").unwrap();
        stops
            .process(points_batch(vec![point(0, 0, 0, 39.9, 116.4); 4]))
            .unwrap();
        let mut next = Stops::init("{}").unwrap();
        next.restore(&stops.snapshot()).unwrap();
        assert_eq!(next.seen, 4);
        assert!(Stops::init(r#"{"max_speed_mps": -1}"#).is_err());
    }
}
