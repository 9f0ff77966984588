//! The waystream host: runs a chain of WebAssembly transforms over GPS trajectories.
//!
//! The data flow is the module layout:
//!
//! ```text
//! sources/ ──► chain (engine/: one Wasm instance per module) ──► document ──► sinks/
//!                   └──► dead_letter ──────────────────────────────────────► sinks/
//! ```
//!
//! * [`sources`]: where batches of raw lines come from (PLT files; Kinesis with the `aws`
//!   feature).
//! * [`engine`]: wasmtime, the WIT bindings, module versions and sandboxed instances.
//! * [`chain`]: a batch through every module, with the output checked at each step;
//!   per-trajectory state moved between chains, and bounded (`chain::retention`).
//! * [`dead_letter`]: records that did not make it, with their [`cause`].
//! * [`sinks`]: where encoded documents and dead letters go (NDJSON files; Firehose and S3
//!   with the `aws` feature). The documents themselves are `waystream_contract::document`.
//! * [`reload`]: hot reload of module versions and of the pipeline config; [`status`]:
//!   the versions running and the reload events; [`watch`]: files reported once
//!   complete, for reloads and the files source's follow mode.
//! * [`http`]: the optional HTTP server: Prometheus metrics, health, status and a live
//!   page.
//! * [`pipeline`]: the run loop; [`config`]: the TOML that describes it; [`summary`]: the
//!   closing report.
//! * [`testing`]: built modules under test (`waystream test` and a `cargo test` harness).
//! * [`synth`]: the synthetic Geolife-format generator used by the demo and the tests;
//!   [`new`]: transform projects to start from (`waystream new`).

#![warn(missing_docs)]

pub mod cause;
pub mod chain;
pub mod config;
pub mod dead_letter;
pub mod engine;
pub mod http;
pub mod new;
pub mod pipeline;
pub mod reload;
pub mod sinks;
pub mod sources;
pub mod status;
pub mod summary;
pub mod synth;
pub mod testing;
pub mod watch;

pub use config::PipelineConfig;
pub use pipeline::Pipeline;
pub use summary::Summary;
