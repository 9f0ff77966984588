//! Putting PLT trajectories into Kinesis, the way the Kinesis source reads them.
//!
//! Two front ends share one producer:
//!
//! * the **ingest Lambda** ([`handler`], binary `waystream-ingest-lambda`, feature
//!   `lambda`): on an S3
//!   `ObjectCreated` event it reads each PLT object (plain or gzip), takes user and
//!   trajectory from the key (Geolife layout `.../<user>/Trajectory/<name>.plt`), and puts
//!   the point lines into the stream;
//! * **`waystream replay`** ([`replay`]): the same from a local folder or an S3 prefix, as
//!   fast as possible or paced at N × real time by the points' timestamps.
//!
//! The [`producer`] packs each trajectory's lines into KPL aggregates (≤ 1 MiB) with the
//! partition key `<user>/<trajectory>`, sends them in PutRecords calls (≤ 500 records,
//! ≤ 5 MiB), resends refused entries, and never lets a trajectory's later aggregate
//! overtake an earlier one, so each trajectory stays in order on its shard.

pub mod handler;
pub mod objects;
pub mod producer;
pub mod replay;

pub use aws_lambda_events::event::s3::S3Event;
pub use handler::{Clients, handle_s3_event, ingest_object};
pub use producer::{Producer, PutReport, Run};
pub use replay::{ReplayFrom, ReplayOptions, replay};
