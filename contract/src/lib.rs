//! What every part of waystream agrees on.
//!
//! Producers (the ingest Lambda, `waystream replay`), the host's sources, the tests and
//! the synthetic generator all read or write the same formats; each fact about them lives
//! here once, with no AWS or Wasm dependency, so that every side links only what it needs:
//!
//! * [`plt`]: the Geolife PLT file layout: its header, its line ends, and the user and
//!   trajectory a file's path or S3 key names.

pub mod plt;
