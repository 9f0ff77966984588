//! Sinks: where output documents and dead letters go.
//!
//! A [`Sink`] takes encoded records — output documents (see
//! [`waystream_contract::document`]) or dead letters, which the pipeline encodes as NDJSON
//! too ([`crate::dead_letter::DeadLetter::encode`]) — and makes them durable. The same
//! trait serves `[sink]` and `[dead_letter]`: a sink is told bytes, not what they mean.
//! To add one, copy `ndjson.rs`: a config struct (a variant of [`SinkConfig`] or
//! [`DeadLetterConfig`]) and a type implementing [`Sink`].
//!
//! The AWS sinks (Firehose, S3 dead letters) live in `waystream-aws` and are here with the
//! `aws` feature (see `aws.rs`).

#[cfg(feature = "aws")]
mod aws;
mod ndjson;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use waystream_contract::document::Encoded;

pub use ndjson::{NdjsonConfig, NdjsonFile};
#[cfg(feature = "aws")]
pub use waystream_aws::firehose::{FirehoseConfig, FirehoseSink};
#[cfg(feature = "aws")]
pub use waystream_aws::opensearch::{OpenSearchConfig, OpenSearchSink};
#[cfg(feature = "aws")]
pub use waystream_aws::s3::{S3DeadLetterConfig, S3DeadLetters};

/// Receives encoded records and makes them durable.
pub trait Sink: Send {
    /// Writes a batch of records (each ending in `\n`).
    fn write(&mut self, records: &Encoded) -> Result<()>;
    /// Makes everything written so far durable: once it returns, the pipeline
    /// acknowledges those records to the source.
    fn flush(&mut self) -> Result<()>;
    /// The largest record the sink can take (with its `\n`), if it has a limit: the
    /// pipeline sends larger documents to the dead-letter sink instead, and cuts the line
    /// of a larger dead letter.
    fn max_record_bytes(&self) -> Option<usize> {
        None
    }

    /// Records the sink refused for good since the last call (a document OpenSearch
    /// cannot map, say), with why: the pipeline writes them to the dead-letter sink before
    /// it acknowledges anything. Most sinks refuse nothing.
    fn take_refused(&mut self) -> Vec<(Vec<u8>, String)> {
        Vec::new()
    }

    /// Calls, retries and throttling, for a sink behind a service that has them
    /// (Firehose).
    fn stats(&self) -> Option<SinkStats> {
        None
    }
}

/// What a sink behind a service reports for the metrics (see [`Sink::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Calls made to the service.
    pub calls: u64,
    /// Records the service refused within a call it accepted (each was sent again).
    pub retried_records: u64,
    /// Calls the service refused as throttled.
    pub throttled_calls: u64,
    /// Attempts made after the sink began pushing back on the pipeline.
    pub backpressure_attempts: u64,
}

/// The `[sink]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SinkConfig {
    /// One NDJSON file.
    Ndjson(NdjsonConfig),
    /// An Amazon Data Firehose delivery stream.
    #[cfg(feature = "aws")]
    Firehose(FirehoseConfig),
    /// An OpenSearch index, through `_bulk` with `_id = point_id` (idempotent).
    #[cfg(feature = "aws")]
    Opensearch(OpenSearchConfig),
}

impl SinkConfig {
    /// Opens the sink; relative paths are resolved against `base`. `stop` is the
    /// pipeline's stop flag: a sink that retries gives up some time after it is set.
    pub fn open(&self, base: &Path, stop: &Arc<AtomicBool>) -> Result<Box<dyn Sink>> {
        let _ = stop;
        match self {
            SinkConfig::Ndjson(config) => Ok(Box::new(NdjsonFile::create(config, base)?)),
            #[cfg(feature = "aws")]
            SinkConfig::Firehose(config) => Ok(Box::new(FirehoseSink::open(config, stop.clone())?)),
            #[cfg(feature = "aws")]
            SinkConfig::Opensearch(config) => {
                Ok(Box::new(OpenSearchSink::open(config, stop.clone())?))
            }
        }
    }
}

/// The `[dead_letter]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    /// One NDJSON file.
    Ndjson(NdjsonConfig),
    /// NDJSON objects in an S3 bucket, one per flush.
    #[cfg(feature = "aws")]
    S3(S3DeadLetterConfig),
    /// A (second) Firehose delivery stream, one letter per record.
    #[cfg(feature = "aws")]
    Firehose(FirehoseConfig),
}

impl DeadLetterConfig {
    /// Opens the dead-letter sink; relative paths are resolved against `base`.
    pub fn open(&self, base: &Path, stop: &Arc<AtomicBool>) -> Result<Box<dyn Sink>> {
        let _ = stop;
        match self {
            DeadLetterConfig::Ndjson(config) => Ok(Box::new(NdjsonFile::create(config, base)?)),
            #[cfg(feature = "aws")]
            DeadLetterConfig::S3(config) => {
                Ok(Box::new(S3DeadLetters::open(config, stop.clone())?))
            }
            #[cfg(feature = "aws")]
            DeadLetterConfig::Firehose(config) => {
                Ok(Box::new(FirehoseSink::open(config, stop.clone())?))
            }
        }
    }
}
