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
    Batch, PointColumns, RawLines, Records, Rejection, Trajectory,
};

/// The `zones` column's value for "in no zone" (see `zone-set-index` in the contract).
pub use waystream_guest::NO_ZONES;

/// One point: row `i` of a [`PointColumns`], with the contract's `NaN` / [`NO_ZONES`]
/// markers as `None`. The same type Rust transforms see, from the guest SDK.
pub use waystream_guest::Point;

// The row methods of points (`len`, `get`, `iter`, `push`, `update`, `collect()`, …), the
// lines' `push` and `iter`, and record counts: the same as the guest SDK's, from one
// definition.
mod methods {
    use super::{Batch, PointColumns, RawLines, Records};
    waystream_guest::__contract_methods!();
}
