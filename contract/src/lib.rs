//! What every part of waystream agrees on.
//!
//! Producers (the ingest Lambda, `waystream replay`), the host's sources and sinks, the
//! guest SDK, the tests and the synthetic generator all read or write the same formats;
//! each fact about them lives here once, with no AWS, Wasm or async dependency, so that
//! every side links only what it needs:
//!
//! * [`plt`]: the Geolife PLT file layout: its header, its line ends, and the user and
//!   trajectory a file's path or S3 key names;
//! * [`point`]: one point as a row ([`Point`]), and [`__contract_methods!`], the row view
//!   stamped on the host's and the guest's generated column types;
//! * [`flags`]: the bits of a point's `flags` and their names;
//! * [`document`]: the output document (its encoder, reader, `point_id` and timestamps);
//! * [`kinesis`]: how a point line travels in a Kinesis record, and (feature `kpl`)
//!   [`aggregation`]: many of them in one record, as the KPL packs them.

#![warn(missing_docs)]

#[cfg(feature = "kpl")]
pub mod aggregation;
pub mod document;
pub mod flags;
pub mod kinesis;
pub mod plt;
pub mod point;

mod columns;

pub use point::{NO_ZONES, Point};
