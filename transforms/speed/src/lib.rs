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
//! through snapshot/restore, so a hot swap does not restart trajectories, and is keyed by
//! trajectory, so the host can move it with a shard.
//!
//! Config (JSON): `{ "max_speed_mps": 100 }` (the default).

use serde::{Deserialize, Serialize};
use waystream_guest::keyed::{Keyed, KeyedState};
use waystream_guest::{Batch, Output, Records, Transform, flags};

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

/// What the next point of a trajectory is measured from. Stored as a [`SavedPoint`] (the
/// sines are recomputed when it is read back).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "SavedPoint", into = "SavedPoint")]
struct LastPoint {
    seq: u32,
    ts_ms: i64,
    at: Position,
}

/// A [`LastPoint`] as snapshots and exported keys hold it.
#[derive(Serialize, Deserialize)]
struct SavedPoint {
    seq: u32,
    ts_ms: i64,
    lat: f64,
    lon: f64,
}

impl From<SavedPoint> for LastPoint {
    fn from(p: SavedPoint) -> Self {
        LastPoint {
            seq: p.seq,
            ts_ms: p.ts_ms,
            at: Position::new(p.lat, p.lon),
        }
    }
}

impl From<LastPoint> for SavedPoint {
    fn from(p: LastPoint) -> Self {
        SavedPoint {
            seq: p.seq,
            ts_ms: p.ts_ms,
            lat: p.at.lat,
            lon: p.at.lon,
        }
    }
}

/// The speed transform.
pub struct Speed {
    max_speed_mps: f64,
    /// Each trajectory's last point.
    last: Keyed<LastPoint>,
}

/// The layout of a trajectory's state (and of the snapshot, the same as before keyed state).
const STATE_VERSION: u32 = 1;

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
            last: Keyed::new("speed", STATE_VERSION),
        })
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        let Records::Points(mut points) = batch.records else {
            return Err("speed needs points; put a parser such as parse-plt before it".into());
        };
        // Checked before any state is taken out, so a refused batch leaves the state as it was.
        points.check(batch.trajectories.len())?;
        let mut states: Vec<Option<LastPoint>> = batch
            .trajectories
            .iter()
            .map(|t| self.last.take(t))
            .collect();
        // Straight on the columns this transform reads and writes (a row view would copy
        // all eleven fields in and out per point).
        let n = points.len();
        let (trajectory, seq, ts_ms) = (
            &points.trajectory[..n],
            &points.seq[..n],
            &points.ts_ms[..n],
        );
        let (lat, lon) = (&points.lat[..n], &points.lon[..n]);
        let (dist_m, speed_mps) = (&mut points.dist_m[..n], &mut points.speed_mps[..n]);
        let (heading_deg, point_flags) = (&mut points.heading_deg[..n], &mut points.flags[..n]);
        for i in 0..n {
            let state = &mut states[trajectory[i] as usize];
            point_flags[i] &= !flags::IMPLAUSIBLE_SPEED;
            (dist_m[i], speed_mps[i], heading_deg[i]) = (f64::NAN, f64::NAN, f64::NAN);
            let here = LastPoint {
                seq: seq[i],
                ts_ms: ts_ms[i],
                at: Position::new(lat[i], lon[i]),
            };
            match *state {
                // A replayed duplicate: no derived values, the state stays.
                Some(prev) if here.seq <= prev.seq => continue,
                Some(prev) => {
                    let step = step(&prev, &here);
                    dist_m[i] = step.dist_m;
                    speed_mps[i] = step.speed_mps.unwrap_or(f64::NAN);
                    heading_deg[i] = step.heading_deg.unwrap_or(f64::NAN);
                    if step.speed_mps.is_some_and(|v| v > self.max_speed_mps) {
                        point_flags[i] |= flags::IMPLAUSIBLE_SPEED;
                    }
                }
                None => {}
            }
            *state = Some(here);
        }
        for (t, state) in batch.trajectories.into_iter().zip(states) {
            if let Some(state) = state {
                self.last.insert_owned(t, state);
            }
        }
        Ok(Output::points(points))
    }

    fn snapshot(&self) -> Vec<u8> {
        self.last.snapshot()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.last.restore(bytes)
    }

    fn keyed(&mut self) -> Option<&mut dyn KeyedState> {
        Some(&mut self.last)
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
    let leg = Leg::new(&from.at, &to.at);
    let dist_m = leg.distance_m();
    let dt_s = (to.ts_ms - from.ts_ms) as f64 / 1000.0;
    Step {
        dist_m,
        speed_mps: (dt_s > 0.0).then(|| dist_m / dt_s),
        heading_deg: (dist_m > 0.0).then(|| leg.bearing_deg()),
    }
}

/// Great-circle distance in metres between two WGS84 positions (degrees).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    Leg::new(&Position::new(lat1, lon1), &Position::new(lat2, lon2)).distance_m()
}

/// Initial bearing from the first position to the second, degrees in [0, 360).
pub fn bearing_deg(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    Leg::new(&Position::new(lat1, lon1), &Position::new(lat2, lon2)).bearing_deg()
}

/// A position with the sine and cosine of its latitude, which the step to it and the
/// step from it both use: computed once per point, not twice.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Position {
    lat: f64,
    lon: f64,
    sin_lat: f64,
    cos_lat: f64,
}

impl Position {
    fn new(lat: f64, lon: f64) -> Self {
        let (sin_lat, cos_lat) = libm::sincos(lat.to_radians());
        Position {
            lat,
            lon,
            sin_lat,
            cos_lat,
        }
    }
}

/// The trigonometry of the way between two positions, shared by its distance and its
/// bearing: with the latitudes' sines and cosines from [`Position`], three more sines and
/// cosines per step where the two textbook formulas take ten (in Wasm, each is a call into
/// the module's own libm, most of this transform's time).
struct Leg {
    sin_half_dlat: f64,
    sin_half_dlon: f64,
    cos_half_dlon: f64,
    sin_lat1: f64,
    cos_lat1: f64,
    sin_lat2: f64,
    cos_lat2: f64,
}

impl Leg {
    fn new(from: &Position, to: &Position) -> Self {
        let (p1, p2) = (from.lat.to_radians(), to.lat.to_radians());
        let (sin_half_dlon, cos_half_dlon) = libm::sincos((to.lon - from.lon).to_radians() / 2.0);
        Leg {
            sin_half_dlat: libm::sin((p2 - p1) / 2.0),
            sin_half_dlon,
            cos_half_dlon,
            sin_lat1: from.sin_lat,
            cos_lat1: from.cos_lat,
            sin_lat2: to.sin_lat,
            cos_lat2: to.cos_lat,
        }
    }

    /// Haversine distance, metres.
    fn distance_m(&self) -> f64 {
        let a =
            self.sin_half_dlat.powi(2) + self.cos_lat1 * self.cos_lat2 * self.sin_half_dlon.powi(2);
        // Rounding can push `a` past 1. `clamp`, not `min`: in Wasm `f64::min` is a call.
        2.0 * EARTH_RADIUS_M * libm::asin(a.sqrt().clamp(0.0, 1.0))
    }

    /// Initial bearing, degrees in [0, 360).
    fn bearing_deg(&self) -> f64 {
        // sin and cos of the whole longitude difference, from the half angle.
        let sin_dlon = 2.0 * self.sin_half_dlon * self.cos_half_dlon;
        let cos_dlon = 1.0 - 2.0 * self.sin_half_dlon.powi(2);
        let y = sin_dlon * self.cos_lat2;
        let x = self.cos_lat1 * self.sin_lat2 - self.sin_lat1 * self.cos_lat2 * cos_dlon;
        // atan2 gives (-180, 180]: adding 360 to negatives is `rem_euclid(360)` without
        // its `fmod` call.
        let deg = libm::atan2(y, x).to_degrees();
        let deg = if deg < 0.0 { deg + 360.0 } else { deg };
        // Adding 360 to -0.0000…1 rounds to exactly 360.0.
        if deg >= 360.0 { 0.0 } else { deg }
    }
}

#[cfg(test)]
mod tests;
