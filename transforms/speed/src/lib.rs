//! `speed`: distance, time step, speed and heading from the previous point of a trajectory.
//!
//! Points are taken per trajectory in `seq` order (the host's sources deliver them so).
//! For each point after the first:
//!
//! * `dist-m`: haversine great-circle distance, R = 6,371,008.8 m (the mean Earth radius);
//! * `speed-mps`: distance / time step; none when the time step is ≤ 0 (Geolife repeats
//!   timestamps at 1-second resolution);
//! * `heading-deg`: initial bearing, clockwise from north, in [0, 360); none when the two
//!   positions coincide (no direction);
//! * the `implausible-speed` flag when the speed is above `max_speed_mps`.
//!
//! A point whose `seq` is not after the trajectory's last one (a replayed duplicate) gets no
//! derived values and does not move the state. The state (last point per trajectory) goes
//! through snapshot/restore, so a hot swap does not restart trajectories.
//!
//! Config (JSON): `{ "max_speed_mps": 100 }` (the default).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use waystream_guest::{Batch, Output, Records, Transform, flags, state};

/// Mean Earth radius in metres (IUGG).
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_max_speed")]
    max_speed_mps: f64,
}

fn default_max_speed() -> f64 {
    100.0
}

/// What the next point of a trajectory is measured from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
struct LastPoint {
    seq: u32,
    ts_ms: i64,
    lat: f64,
    lon: f64,
}

/// The speed transform.
pub struct Speed {
    max_speed_mps: f64,
    last: HashMap<(String, String), LastPoint>,
}

/// State handed to the next version: each trajectory's last point.
type Snapshot = Vec<(String, String, LastPoint)>;

const SNAPSHOT_VERSION: u32 = 1;

impl Transform for Speed {
    fn init(config: &str) -> Result<Self, String> {
        let config: Config =
            serde_json::from_str(config).map_err(|e| format!("speed config: {e}"))?;
        if config.max_speed_mps.is_nan() || config.max_speed_mps <= 0.0 {
            return Err(format!(
                "speed config: max_speed_mps must be > 0, not {}",
                config.max_speed_mps
            ));
        }
        Ok(Speed {
            max_speed_mps: config.max_speed_mps,
            last: HashMap::new(),
        })
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        let Records::Points(mut points) = batch.records else {
            return Err("speed needs points; put a parser such as parse-plt before it".into());
        };
        let mut states: Vec<Option<LastPoint>> = batch
            .trajectories
            .iter()
            .map(|t| self.last.remove(&(t.user.clone(), t.id.clone())))
            .collect();
        for p in &mut points {
            let Some(state) = states.get_mut(p.trajectory as usize) else {
                return Err(format!(
                    "point refers to trajectory {} not in the batch",
                    p.trajectory
                ));
            };
            p.flags &= !flags::IMPLAUSIBLE_SPEED;
            (p.dist_m, p.speed_mps, p.heading_deg) = (None, None, None);
            let here = LastPoint {
                seq: p.seq,
                ts_ms: p.ts_ms,
                lat: p.lat,
                lon: p.lon,
            };
            match *state {
                Some(prev) if p.seq <= prev.seq => continue,
                Some(prev) => {
                    let step = step(&prev, &here);
                    p.dist_m = Some(step.dist_m);
                    p.speed_mps = step.speed_mps;
                    p.heading_deg = step.heading_deg;
                    if step.speed_mps.is_some_and(|v| v > self.max_speed_mps) {
                        p.flags |= flags::IMPLAUSIBLE_SPEED;
                    }
                }
                None => {}
            }
            *state = Some(here);
        }
        for (t, state) in batch.trajectories.into_iter().zip(states) {
            if let Some(state) = state {
                self.last.insert((t.user, t.id), state);
            }
        }
        Ok(Output::points(points))
    }

    fn snapshot(&self) -> Vec<u8> {
        let last: Snapshot = self
            .last
            .iter()
            .map(|((u, t), p)| (u.clone(), t.clone(), *p))
            .collect();
        state::save(SNAPSHOT_VERSION, &last)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some(last) = state::load::<Snapshot>("speed", SNAPSHOT_VERSION, bytes)? else {
            return Ok(());
        };
        self.last = last.into_iter().map(|(u, t, p)| ((u, t), p)).collect();
        Ok(())
    }
}

waystream_guest::export_transform!(Speed);

/// The movement between two consecutive points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub dist_m: f64,
    pub speed_mps: Option<f64>,
    pub heading_deg: Option<f64>,
}

fn step(from: &LastPoint, to: &LastPoint) -> Step {
    let dist_m = haversine_m(from.lat, from.lon, to.lat, to.lon);
    let dt_s = (to.ts_ms - from.ts_ms) as f64 / 1000.0;
    Step {
        dist_m,
        speed_mps: (dt_s > 0.0).then(|| dist_m / dt_s),
        heading_deg: (dist_m > 0.0).then(|| bearing_deg(from.lat, from.lon, to.lat, to.lon)),
    }
}

/// Great-circle distance in metres between two WGS84 positions (degrees).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Initial bearing from the first position to the second, degrees in [0, 360).
pub fn bearing_deg(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dl = (lon2 - lon1).to_radians();
    let y = dl.sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
    let deg = y.atan2(x).to_degrees().rem_euclid(360.0);
    // rem_euclid can round -0.0000…1 up to exactly 360.0.
    if deg >= 360.0 { 0.0 } else { deg }
}

#[cfg(test)]
mod tests;
