//! Host-side bindings generated from `wit/waystream.wit`.
//!
//! The generated record types (`Batch`, `Point`, `RawLines`, …) are also the host's own data
//! model: a batch is built once by a source and handed to each module by reference, with no
//! conversion layer in between.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "transform-module",
    additional_derives: [PartialEq],
});

pub use self::exports::waystream::transform::transform::Output;
pub use self::waystream::transform::log::Level;
pub use self::waystream::transform::types::{
    Batch, Line, Point, RawLines, Records, Rejection, Trajectory,
};

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
