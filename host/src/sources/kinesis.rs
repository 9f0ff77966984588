//! The Kinesis source: `waystream-aws`'s KCL-style consumer as a [`Source`] (feature
//! `aws`). The consumer does the leases, checkpoints, resharding and de-aggregation (see
//! `waystream_aws::kinesis`); this file only moves its batches into the contract's types
//! (no copy: the line columns are the same vectors) and turns the records it refused into
//! dead letters.

use anyhow::Result;
use waystream_aws::kinesis::state::ShardRange;
use waystream_aws::kinesis::{KinesisConsumer, KinesisSourceConfig, LineBatch};

use super::{Source, SourceBatch, SourceStats, StateExchange, StateReceiver, TrajectorySet};
use crate::cause::Cause;
use crate::dead_letter::DeadLetter;
use crate::engine::bindings::{Batch, RawLines, Records, Trajectory};

/// The name dead letters give for records this source refused.
const SOURCE_NAME: &str = "source:kinesis";
/// Longest cause a dead letter of this source keeps, in bytes (a cause may quote the
/// record: its key, its first field).
const CAUSE_BYTES: usize = 4096;

/// Reads a Kinesis stream through leases shared with other hosts.
pub struct KinesisSource {
    consumer: KinesisConsumer,
}

impl KinesisSource {
    /// Connects, makes sure the lease table exists and starts reading.
    pub fn open(config: &KinesisSourceConfig, batch_size: usize) -> Result<Self> {
        Ok(KinesisSource {
            consumer: KinesisConsumer::open(config, batch_size)?,
        })
    }
}

impl Source for KinesisSource {
    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        Ok(Some(source_batch(self.consumer.next_batch()?)))
    }

    fn finish(&mut self) -> Result<()> {
        self.consumer.finish()
    }

    fn total_bytes(&self) -> Option<u64> {
        None
    }

    fn bytes_read(&self) -> u64 {
        self.consumer.bytes_read()
    }

    fn stats(&self) -> Option<SourceStats> {
        let stats = self.consumer.stats();
        Some(SourceStats {
            leases_held: stats.leases_held,
            takeovers: stats.takeovers,
            shards: stats
                .shards
                .into_iter()
                .map(|s| (s.shard, s.millis_behind_latest, s.checkpoint_age))
                .collect(),
            ack_ages: stats.ack_ages,
            problem: stats.round_error,
        })
    }
}

fn source_batch(lines: LineBatch) -> SourceBatch {
    let rejected = lines
        .refused
        .into_iter()
        .map(|r| {
            DeadLetter::from_source(
                SOURCE_NAME,
                Cause::capped(&r.cause, CAUSE_BYTES),
                &r.data,
                r.position,
            )
        })
        .collect();
    SourceBatch {
        batch: Batch {
            trajectories: lines
                .trajectories
                .into_iter()
                .map(|(user, id)| Trajectory { user, id })
                .collect(),
            zone_sets: Vec::new(),
            records: Records::Lines(RawLines {
                data: lines.data,
                ends: lines.ends,
                trajectory: lines.trajectory,
                seq: lines.seq,
            }),
        },
        rejected,
        ack: lines.ack,
        state: StateExchange {
            restore: lines
                .restores
                .into_iter()
                .map(|saved| (trajectories_of(saved.range), saved.states))
                .collect(),
            capture: lines
                .captures
                .into_iter()
                .map(|capture| {
                    let set = trajectories_of(capture.range);
                    let fill: StateReceiver = Box::new(move |state| capture.fill(state));
                    (set, fill)
                })
                .collect(),
        },
    }
}

/// The trajectories a shard carries: those whose partition key hashes into its range.
fn trajectories_of(range: ShardRange) -> TrajectorySet {
    Box::new(move |user, trajectory| range.carries(user, trajectory))
}
