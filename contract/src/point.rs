//! One GPS point as code that works a point at a time sees it.
//!
//! Points cross the Wasm boundary as columns (`point-columns` in the contract: one list per
//! field), where an absent value is `NaN` (floats) or [`NO_ZONES`]. [`Point`] is one row of
//! those columns with absent values as `None`: what the guest SDK's row view hands a
//! transform, what the host encodes as a document, what documents are read back into. The
//! columns' row methods (`get`, `iter`, `push`, `update`, …) come from
//! [`__contract_methods!`](crate::__contract_methods), stamped on the host's and the
//! guest's generated types alike.

/// The `zones` column's marker for "in no zone" (see `zone-set-index` in the contract).
pub const NO_ZONES: u32 = u32::MAX;

/// One GPS point: a row of the contract's `point-columns`, with absent values as `None`.
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

impl Point {
    /// A point with the given identity, time and position; every derived field absent.
    pub fn at(trajectory: u32, seq: u32, ts_ms: i64, lat: f64, lon: f64) -> Self {
        Point {
            trajectory,
            seq,
            ts_ms,
            lat,
            lon,
            ..Point::default()
        }
    }
}

/// A float column's value as an option: `NaN` is absent.
#[doc(hidden)]
#[inline]
pub fn present(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}
