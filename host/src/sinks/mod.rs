//! Sinks: where output documents and dead letters go.
//!
//! A [`Sink`] takes batches of encoded output documents (see [`crate::document`]); a
//! [`DeadLetterSink`] takes [`DeadLetter`]s. To add one, copy `ndjson.rs`: a config struct
//! (a variant of [`SinkConfig`] or [`DeadLetterConfig`]) and a type implementing the trait.

mod ndjson;

use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

use crate::dead_letter::DeadLetter;
use crate::document::Encoded;

pub use ndjson::{NdjsonConfig, NdjsonFile};

/// Receives output documents.
pub trait Sink: Send {
    /// Writes a batch of documents.
    fn write(&mut self, documents: &Encoded) -> Result<()>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<()>;
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
}

impl SinkConfig {
    /// Opens the sink; relative paths are resolved against `base`.
    pub fn open(&self, base: &Path) -> Result<Box<dyn Sink>> {
        match self {
            SinkConfig::Ndjson(config) => Ok(Box::new(NdjsonFile::create(config, base)?)),
        }
    }
}

/// The `[dead_letter]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    /// One NDJSON file.
    Ndjson(NdjsonConfig),
}

impl DeadLetterConfig {
    /// Opens the dead-letter sink; relative paths are resolved against `base`.
    pub fn open(&self, base: &Path) -> Result<Box<dyn DeadLetterSink>> {
        match self {
            DeadLetterConfig::Ndjson(config) => Ok(Box::new(NdjsonFile::create(config, base)?)),
        }
    }
}
