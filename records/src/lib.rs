//! How GPS point lines travel in Kinesis records.
//!
//! Two producers (the ingest Lambda and `waystream replay`, in `waystream-ingest`) and one
//! consumer (the host's Kinesis source) must agree on the bytes; this crate is that
//! agreement, with no AWS or Wasm dependency so that each side links only what it needs:
//!
//! * [`lines`]: one point line per user record: partition key `<user>/<trajectory>`, data
//!   `<seq>\t<line>`;
//! * [`aggregation`]: the KPL aggregate format, which packs many user records into one
//!   Kinesis record (and its de-aggregation, with KCL's rules for records that only look
//!   like aggregates).

pub mod aggregation;
pub mod lines;
