//! Every AWS part of waystream, in one crate with one way of talking to AWS.
//!
//! * [`runtime`]: one Tokio runtime and one SDK config (aws-config's default chain:
//!   environment, profiles, SSO, instance roles; `AWS_ENDPOINT_URL_<SERVICE>` points a
//!   service at a local server) shared by every part below;
//! * [`retry`]: one retry policy: exponential backoff with jitter, and when each kind of
//!   call gives up, stated once; every retry loop also stops when the process is told to;
//! * [`kinesis`]: the Kinesis consumer: KCL-compatible leases and checkpoints in DynamoDB,
//!   resharding, KPL de-aggregation (`waystream_contract::aggregation`);
//! * [`firehose`], [`opensearch`] and [`s3`]: the Firehose sink, the OpenSearch sink
//!   (idempotent: `_bulk` with `_id = point_id`) and the S3 dead-letter sink, which take
//!   encoded records (bytes) and make them durable;
//! * [`ingest`]: putting PLT trajectories into Kinesis: the S3-triggered Lambda (binary
//!   `waystream-ingest-lambda`, feature `lambda`) and `waystream replay`.
//!
//! The host uses this crate through its `aws` feature (on by default); a host built
//! without it runs local files only and links no AWS SDK and no Lambda runtime. (Tokio is
//! still in its tree, but only as a dependency of `wasmtime-wasi`, which the WASI p2
//! linker needs; no runtime is started.)

#![warn(missing_docs)]

pub mod firehose;
pub mod ingest;
pub mod kinesis;
pub mod opensearch;
pub mod retry;
pub mod runtime;
pub mod s3;

pub use runtime::Aws;
