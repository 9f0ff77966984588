//! Host-side bindings generated from `wit/waystream.wit`.
//!
//! The generated record types (`Batch`, `PointColumns`, `RawLines`, …) are also the host's
//! own data model: a batch is built once by a source and handed to each module by reference,
//! and one module's output columns are the next module's input, with no conversion layer in
//! between. [`Point`] is one row of [`PointColumns`], for code that looks at points one at a
//! time (encoding, dead letters, tests).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "transform-module",
    additional_derives: [PartialEq],
});

pub use self::exports::waystream::transform::transform::Output;
pub use self::waystream::transform::log::Level;
pub use self::waystream::transform::types::{
    Batch, Line, PointColumns, RawLines, Records, Rejection, Trajectory,
};

/// The `zones` column's value for "in no zone" (see `zone-set-index` in the contract).
pub use waystream_guest::NO_ZONES;

/// One point: row `i` of a [`PointColumns`], with the contract's `NaN` / [`NO_ZONES`]
/// markers as `None`. The same type transforms see, from the guest SDK.
pub use waystream_guest::Point;

fn present(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

impl PointColumns {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// Whether every column has as many entries as `seq` (a module's output may not).
    pub fn is_rectangular(&self) -> bool {
        let n = self.len();
        [
            self.trajectory.len(),
            self.ts_ms.len(),
            self.lat.len(),
            self.lon.len(),
            self.alt_m.len(),
            self.zones.len(),
            self.dist_m.len(),
            self.speed_mps.len(),
            self.heading_deg.len(),
            self.flags.len(),
        ]
        .iter()
        .all(|&len| len == n)
    }

    /// Point `i`, if there is one (and every column has it).
    pub fn get(&self, i: usize) -> Option<Point> {
        Some(Point {
            trajectory: *self.trajectory.get(i)?,
            seq: *self.seq.get(i)?,
            ts_ms: *self.ts_ms.get(i)?,
            lat: *self.lat.get(i)?,
            lon: *self.lon.get(i)?,
            alt_m: present(*self.alt_m.get(i)?),
            zones: Some(*self.zones.get(i)?).filter(|&z| z != NO_ZONES),
            dist_m: present(*self.dist_m.get(i)?),
            speed_mps: present(*self.speed_mps.get(i)?),
            heading_deg: present(*self.heading_deg.get(i)?),
            flags: *self.flags.get(i)?,
        })
    }

    /// Every point, in order.
    pub fn iter(&self) -> impl Iterator<Item = Point> + '_ {
        (0..self.len()).map_while(|i| self.get(i))
    }

    /// Appends one point.
    pub fn push(&mut self, p: Point) {
        self.trajectory.push(p.trajectory);
        self.seq.push(p.seq);
        self.ts_ms.push(p.ts_ms);
        self.lat.push(p.lat);
        self.lon.push(p.lon);
        self.alt_m.push(p.alt_m.unwrap_or(f64::NAN));
        self.zones.push(p.zones.unwrap_or(NO_ZONES));
        self.dist_m.push(p.dist_m.unwrap_or(f64::NAN));
        self.speed_mps.push(p.speed_mps.unwrap_or(f64::NAN));
        self.heading_deg.push(p.heading_deg.unwrap_or(f64::NAN));
        self.flags.push(p.flags);
    }
}

// Written out for the same reason as `RawLines`'s.
#[allow(clippy::derivable_impls)]
impl Default for PointColumns {
    fn default() -> Self {
        PointColumns {
            trajectory: Vec::new(),
            seq: Vec::new(),
            ts_ms: Vec::new(),
            lat: Vec::new(),
            lon: Vec::new(),
            alt_m: Vec::new(),
            zones: Vec::new(),
            dist_m: Vec::new(),
            speed_mps: Vec::new(),
            heading_deg: Vec::new(),
            flags: Vec::new(),
        }
    }
}

impl FromIterator<Point> for PointColumns {
    fn from_iter<I: IntoIterator<Item = Point>>(points: I) -> Self {
        let mut columns = PointColumns::default();
        points.into_iter().for_each(|p| columns.push(p));
        columns
    }
}

// Written out because bindgen's `additional_derives` would put `Default` on the
// generated enums too, where it cannot be derived.
#[allow(clippy::derivable_impls)]
impl Default for RawLines {
    fn default() -> Self {
        RawLines {
            data: Vec::new(),
            lines: Vec::new(),
        }
    }
}

impl Batch {
    /// Number of records (lines or points) in the batch.
    pub fn len(&self) -> usize {
        match &self.records {
            Records::Lines(raw) => raw.lines.len(),
            Records::Points(points) => points.len(),
        }
    }

    /// Whether the batch holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
