//! Sinks: where output documents and dead letters go.
//!
//! A [`Sink`] takes batches of encoded output documents (see [`crate::document`]); a
//! [`DeadLetterSink`] takes [`DeadLetter`]s. To add one, copy `ndjson.rs`: a config struct
//! (a variant of [`SinkConfig`] or [`DeadLetterConfig`]) and a type implementing the trait.

pub mod firehose;
mod ndjson;
mod s3;

use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

use crate::cause::Cause;
use crate::dead_letter::DeadLetter;
use crate::document::Encoded;

pub use firehose::{FirehoseConfig, FirehoseSink};
pub use ndjson::{NdjsonConfig, NdjsonFile};
pub use s3::{S3DeadLetterConfig, S3DeadLetters};

/// Receives output documents.
pub trait Sink: Send {
    /// Writes a batch of documents.
    fn write(&mut self, documents: &Encoded) -> Result<()>;
    /// Makes everything written so far durable: once it returns, the pipeline
    /// acknowledges those records to the source.
    fn flush(&mut self) -> Result<()>;
    /// The largest document the sink can take (with its `\n`), if it has a limit; the
    /// pipeline sends larger ones to the dead-letter sink instead.
    fn max_document_bytes(&self) -> Option<usize> {
        None
    }
}

/// Receives records the pipeline could not deliver.
pub trait DeadLetterSink: Send {
    /// Writes dead letters.
    fn write(&mut self, letters: &[DeadLetter]) -> Result<()>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<()>;
}

/// The `[sink]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SinkConfig {
    /// One NDJSON file.
    Ndjson(NdjsonConfig),
    /// An Amazon Data Firehose delivery stream.
    Firehose(FirehoseConfig),
}

impl SinkConfig {
    /// Opens the sink; relative paths are resolved against `base`.
    pub fn open(&self, base: &Path) -> Result<Box<dyn Sink>> {
        match self {
            SinkConfig::Ndjson(config) => Ok(Box::new(NdjsonFile::create(config, base)?)),
            SinkConfig::Firehose(config) => Ok(Box::new(FirehoseSink::open(config)?)),
        }
    }
}

/// The `[dead_letter]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    /// One NDJSON file.
    Ndjson(NdjsonConfig),
    /// NDJSON objects in an S3 bucket, one per flush.
    S3(S3DeadLetterConfig),
    /// A (second) Firehose delivery stream, one letter per record.
    Firehose(FirehoseConfig),
}

impl DeadLetterConfig {
    /// Opens the dead-letter sink; relative paths are resolved against `base`.
    pub fn open(&self, base: &Path) -> Result<Box<dyn DeadLetterSink>> {
        match self {
            DeadLetterConfig::Ndjson(config) => Ok(Box::new(NdjsonFile::create(config, base)?)),
            DeadLetterConfig::S3(config) => Ok(Box::new(S3DeadLetters::open(config)?)),
            DeadLetterConfig::Firehose(config) => Ok(Box::new(FirehoseSink::open(config)?)),
        }
    }
}

/// A small runtime and the AWS config from aws-config's default chain, for a sink that
/// calls AWS from the pipeline's output thread (which is not async).
fn blocking_aws() -> Result<(tokio::runtime::Runtime, aws_config::SdkConfig)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shared = runtime.block_on(aws_config::load_defaults(
        aws_config::BehaviorVersion::latest(),
    ));
    Ok((runtime, shared))
}

/// Splits off the documents over `limit` bytes as dead letters (rare: the caller checks
/// first). The letters carry the document as their `point` and say which sink refused it.
pub fn split_oversize(documents: &Encoded, limit: usize, sink: &str) -> (Encoded, Vec<DeadLetter>) {
    let mut kept = Encoded::default();
    let mut letters = Vec::new();
    for document in documents.iter() {
        if document.len() <= limit {
            kept.bytes.extend_from_slice(document);
            kept.ends.push(kept.bytes.len());
            continue;
        }
        let parsed: serde_json::Value = serde_json::from_slice(document).unwrap_or_default();
        letters.push(DeadLetter::from_sink(
            sink,
            Cause::host(format!(
                "a document of {} bytes is over the sink's limit of {limit}",
                document.len()
            )),
            parsed,
        ));
    }
    (kept, letters)
}
