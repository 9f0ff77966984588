//! Host-side bindings generated from `wit/waystream.wit`.
//!
//! The generated record types (`Batch`, `PointColumns`, `RawLines`, …) are also the host's
//! own data model: a batch is built once by a source and handed to each module by reference,
//! and one module's output columns are the next module's input, with no conversion layer in
//! between. [`Point`] is one row of [`PointColumns`], for code that looks at points one at a
//! time (encoding, dead letters, tests).

// The generated items are documented in the WIT they come from.
#![allow(missing_docs)]

// The 0.3.1 world, a superset of `transform-module`: its `keyed-state` export is optional
// (a module built against 0.3.0 lacks it), so the host looks the two exported interfaces up
// one by one ([`TransformIndices`], [`KeyedIndices`]) instead of through the world's
// all-or-nothing `…Pre` type.
wasmtime::component::bindgen!({
    path: "../wit",
    world: "keyed-transform-module",
    additional_derives: [PartialEq],
});

pub use self::exports::waystream::transform::keyed_state::{
    Guest as KeyedExports, GuestIndices as KeyedIndices, KeyState,
};
pub use self::exports::waystream::transform::transform::Output;
pub use self::exports::waystream::transform::transform::{
    Guest as TransformExports, GuestIndices as TransformIndices,
};
pub use self::waystream::transform::log::Level;
pub use self::waystream::transform::types::{
    Batch, PointColumns, RawLines, Records, Rejection, Trajectory,
};

/// The `zones` column's value for "in no zone" (see `zone-set-index` in the contract).
pub use waystream_contract::NO_ZONES;

/// One point: row `i` of a [`PointColumns`], with the contract's `NaN` / [`NO_ZONES`]
/// markers as `None`. The same type Rust transforms see.
pub use waystream_contract::Point;

// The row methods of points (`len`, `get`, `iter`, `push`, `update`, `collect()`, …), the
// lines' `push` and `iter`, and record counts: the same as the guest SDK's, from one
// definition.
mod methods {
    use super::{Batch, PointColumns, RawLines, Records};
    waystream_contract::__contract_methods!();
}

impl waystream_contract::document::Identity for Trajectory {
    fn user(&self) -> &str {
        &self.user
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl Batch {
    /// The identity (trajectory index, `seq`) of record `index`.
    pub fn identity(&self, index: usize) -> Option<(u32, u32)> {
        match &self.records {
            Records::Lines(raw) => Some((*raw.trajectory.get(index)?, *raw.seq.get(index)?)),
            Records::Points(points) => {
                Some((*points.trajectory.get(index)?, *points.seq.get(index)?))
            }
        }
    }

    /// The raw line of each (trajectory, `seq`) of a batch of lines (none for points): for
    /// dead letters, on the error path only.
    pub fn original_lines(&self) -> std::collections::HashMap<(u32, u32), &[u8]> {
        match &self.records {
            Records::Lines(raw) => raw
                .iter()
                .map(|(bytes, trajectory, seq)| ((trajectory, seq), bytes))
                .collect(),
            Records::Points(_) => std::collections::HashMap::new(),
        }
    }
}
