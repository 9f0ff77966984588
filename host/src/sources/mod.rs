//! Sources: where batches of records come from.
//!
//! A source yields [`Batch`]es of raw lines (or points), each line tagged with its
//! trajectory and its `seq`, in order within each trajectory. To add a source, copy
//! `files.rs`: a config struct (a variant of [`SourceConfig`]) and a type implementing
//! [`Source`].

mod files;

use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

use crate::engine::bindings::Batch;

pub use files::{FilesSource, FilesSourceConfig};

/// A stream of batches.
pub trait Source: Send {
    /// The next batch, or none at the end of the input.
    fn next_batch(&mut self) -> Result<Option<Batch>>;

    /// Total input size in bytes, when known in advance (for a progress bar).
    fn total_bytes(&self) -> Option<u64>;

    /// Input bytes consumed so far.
    fn bytes_read(&self) -> u64;
}

/// The `[source]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// PLT files under a folder.
    Files(FilesSourceConfig),
}

impl SourceConfig {
    /// Opens the source; relative paths are resolved against `base`.
    pub fn open(&self, base: &Path, batch_size: usize) -> Result<Box<dyn Source>> {
        match self {
            SourceConfig::Files(config) => {
                Ok(Box::new(FilesSource::open(config, base, batch_size)?))
            }
        }
    }
}
