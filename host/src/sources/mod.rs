//! Sources: where batches of records come from.
//!
//! A source yields [`SourceBatch`]es: a [`Batch`] of raw lines (or points), each line
//! tagged with its trajectory and its `seq`, in order within each trajectory; the records
//! the source itself had to refuse (as dead letters); and, for a source that can replay
//! (Kinesis), an [`Acknowledgement`] the pipeline calls once everything that came of the
//! batch is durable in the sinks. That acknowledgement is what makes delivery
//! at-least-once: a source moves its checkpoint only when it is called, in batch order.
//!
//! To add a source, copy `files.rs` (or `kinesis.rs` for a streaming one): a config struct
//! (a variant of [`SourceConfig`]) and a type implementing [`Source`].

mod files;
mod follow;
#[cfg(feature = "aws")]
mod kinesis;

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::dead_letter::DeadLetter;
use crate::engine::bindings::Batch;

pub use files::{FilesSource, FilesSourceConfig};
#[cfg(feature = "aws")]
pub use kinesis::KinesisSource;
#[cfg(feature = "aws")]
pub use waystream_aws::kinesis::KinesisSourceConfig;

/// What a streaming source reports for the metrics (see [`Source::stats`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStats {
    /// Leases this host holds.
    pub leases_held: u64,
    /// Leases it took over from other hosts since it started.
    pub takeovers: u64,
    /// Per shard held: `MillisBehindLatest` of its last read, and the age of its last
    /// checkpoint written by this host.
    pub shards: Vec<(String, Option<i64>, Option<std::time::Duration>)>,
    /// Age of the oldest record of each batch acknowledged since the last call (now − its
    /// arrival in the stream).
    pub ack_ages: Vec<std::time::Duration>,
    /// Why the source cannot do its work now, while it cannot (for Kinesis: the last
    /// lease round failed, so the lease table or the stream is out of reach). The host is
    /// not ready meanwhile.
    pub problem: Option<String>,
}

/// Called once a batch's documents and dead letters are durable in the sinks.
pub type Acknowledgement = Box<dyn FnOnce() + Send>;

/// Which trajectories (by user and id) a piece of state is about: for Kinesis, those whose
/// partition key hashes into a shard's range.
pub type TrajectorySet = Box<dyn Fn(&str, &str) -> bool + Send>;

/// Takes the encoded state a [`StateExchange`] capture asked for.
pub type StateReceiver = Box<dyn FnOnce(Vec<u8>) + Send>;

/// Transform state a source keeps with its checkpoints, so that what it reads again after
/// a crash or a move to another host meets the state it met the first time (see
/// [`crate::chain`]'s saved state). Empty for a source that keeps none.
#[derive(Default)]
pub struct StateExchange {
    /// Before the batch runs: the chain's state of each set's trajectories is replaced by
    /// the saved states (from [`crate::chain::encode_state`]; those outside the set are
    /// ignored, and an empty list means they start fresh).
    pub restore: Vec<(TrajectorySet, Vec<Vec<u8>>)>,
    /// After the batch ran: the state of each set's trajectories, encoded, is handed to
    /// its callback; it goes with the batch's acknowledgement.
    pub capture: Vec<(TrajectorySet, StateReceiver)>,
}

/// One step of a source: lines for the chain, refusals, and how to acknowledge them.
pub struct SourceBatch {
    /// The records for the chain. An empty batch means "nothing yet": a streaming source
    /// returns one now and then while idle, so the pipeline can apply reloads and stop.
    pub batch: Batch,
    /// Records the source could not turn into lines (for example a corrupt aggregate).
    pub rejected: Vec<DeadLetter>,
    /// Called, in batch order, once this batch's outputs are durable; none for a source
    /// that has nothing to checkpoint.
    pub ack: Option<Acknowledgement>,
    /// State to put in place before the batch and to take after it.
    pub state: StateExchange,
}

impl From<Batch> for SourceBatch {
    fn from(batch: Batch) -> Self {
        SourceBatch {
            batch,
            rejected: Vec::new(),
            ack: None,
            state: StateExchange::default(),
        }
    }
}

/// A stream of batches.
pub trait Source: Send {
    /// The next batch, or none at the end of the input.
    fn next_batch(&mut self) -> Result<Option<SourceBatch>>;

    /// Called once after the last batch was acknowledged (at the end of the input or on
    /// shutdown): write the final checkpoints and give back what the source holds.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// Total input size in bytes, when known in advance (for a progress bar).
    fn total_bytes(&self) -> Option<u64>;

    /// Input bytes consumed so far.
    fn bytes_read(&self) -> u64;

    /// Named counts for the closing summary (files read, say), in display order.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Leases, lag and record age, for a source that has them (Kinesis).
    fn stats(&self) -> Option<SourceStats> {
        None
    }
}

/// The `[source]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// PLT files under a folder.
    Files(FilesSourceConfig),
    /// A Kinesis data stream, shards leased through a DynamoDB table as KCL does.
    #[cfg(feature = "aws")]
    Kinesis(KinesisSourceConfig),
}

impl SourceConfig {
    /// Turns on the files source's follow mode (`waystream run --follow`).
    pub fn follow(&mut self) -> Result<()> {
        match self {
            SourceConfig::Files(config) => {
                config.follow = true;
                Ok(())
            }
            #[cfg(feature = "aws")]
            SourceConfig::Kinesis(_) => {
                anyhow::bail!(
                    "--follow is for a files source; a Kinesis source always follows its stream"
                )
            }
        }
    }

    /// Opens the source; relative paths are resolved against `base`.
    pub fn open(&self, base: &Path, batch_size: usize) -> Result<Box<dyn Source>> {
        match self {
            SourceConfig::Files(config) => {
                Ok(Box::new(FilesSource::open(config, base, batch_size)?))
            }
            #[cfg(feature = "aws")]
            SourceConfig::Kinesis(config) => Ok(Box::new(KinesisSource::open(config, batch_size)?)),
        }
    }
}
