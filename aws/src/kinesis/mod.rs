//! The Kinesis consumer: a data stream read by several hosts at once, KCL-compatible.
//!
//! Configured by `[source] type = "kinesis"` in a pipeline config; its keys and their
//! defaults are in the README's config reference, the one place they are written down
//! (a test checks it against the config types).
//!
//! Credentials and region come from aws-config's default chain; endpoints can be pointed
//! elsewhere with `AWS_ENDPOINT_URL_KINESIS` and `AWS_ENDPOINT_URL_DYNAMODB` (or
//! `AWS_ENDPOINT_URL`), which is how the tests use local servers.
//!
//! How it fits together, one file per part:
//!
//! * [`leases`]: the DynamoDB lease table, in KCL 2.x's layout, every write conditional;
//! * [`worker`]: lists shards, renews and takes leases, starts a reader per lease, and
//!   writes acknowledged checkpoints;
//! * [`balance`]: which leases to take, so several hosts share a stream;
//! * [`reader`]: GetRecords polling for one shard, to its end;
//! * [`state`]: the transform state kept with the checkpoints (`state_bucket`), so a
//!   shard's trajectories go on with their state on the host that takes it over;
//! * [`crate::aggregation`] and [`waystream_contract::kinesis`] (shared with the
//!   producers): KPL aggregates, and how a point line is put in a record
//!   (`<user>/<trajectory>` key, `<seq>\t<line>` data);
//! * this file: the [`KinesisConsumer`] the host's Kinesis source pulls [`LineBatch`]es
//!   from. It runs the workers on the shared runtime ([`crate::Aws`]) and hands each
//!   batch an acknowledgement; the checkpoint moves only when that is called, after the
//!   sinks made the batch durable (at-least-once). [`KinesisConsumer::finish`] writes the
//!   last checkpoints and releases the leases, so another host takes them at once.

mod balance;
mod leases;
mod position;
mod reader;
pub mod state;
pub mod stats;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use leases::{HeldLease, LeaseTable};
pub use position::{Checkpoint, Position};
use reader::{Chunk, ReadOptions, StreamId};
use state::{SavedState, StateCapture, StateStore};
use stats::{ConsumerStats, StatsSnapshot};
use waystream_contract::kinesis as lines;

use crate::runtime::Aws;
use worker::{Worker, WorkerSettings};

/// `[source]` with `type = "kinesis"`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KinesisSourceConfig {
    /// The stream's name or ARN.
    pub stream: String,
    /// The DynamoDB table of leases and checkpoints.
    pub lease_table: String,
    /// This host's name in the lease table; unique per process by default.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// A lease whose owner has not renewed it for this long is taken over.
    #[serde(default = "default_failover_time_ms")]
    pub failover_time_ms: u64,
    /// The wait after an empty GetRecords response.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How often the shard list is read again for new shards.
    #[serde(default = "default_shard_sync_interval_ms")]
    pub shard_sync_interval_ms: u64,
    /// Where shards with no checkpoint (and no parent) start.
    #[serde(default)]
    pub starting_position: StartingPosition,
    /// RFC 3339; required with `starting_position = "AT_TIMESTAMP"`.
    #[serde(default)]
    pub starting_timestamp: Option<String>,
    /// Create the lease table when it does not exist.
    #[serde(default = "default_true")]
    pub create_lease_table: bool,
    /// GetRecords `Limit`, at most 10,000.
    #[serde(default = "default_max_records")]
    pub max_records: i32,
    /// S3 bucket where each checkpoint's transform state is kept (see [`state`]); without
    /// it, a shard's trajectories start fresh on the host that takes the shard over.
    #[serde(default)]
    pub state_bucket: Option<String>,
    /// Key prefix of the state objects.
    #[serde(default = "default_state_prefix")]
    pub state_prefix: String,
    /// How often a shard's state (and so its checkpoint) is stored, at most.
    #[serde(default = "default_state_interval_ms")]
    pub state_interval_ms: u64,
    /// Address the state bucket by path, as local S3 servers need.
    #[serde(default)]
    pub state_path_style: bool,
}

fn default_failover_time_ms() -> u64 {
    10_000
}
fn default_poll_interval_ms() -> u64 {
    1_000
}
fn default_shard_sync_interval_ms() -> u64 {
    60_000
}
fn default_true() -> bool {
    true
}
fn default_max_records() -> i32 {
    10_000
}
fn default_state_prefix() -> String {
    "waystream-state".into()
}
fn default_state_interval_ms() -> u64 {
    10_000
}

/// Where a shard with no checkpoint starts.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    /// The oldest record still in the stream (nothing already there is skipped).
    #[default]
    TrimHorizon,
    /// Only records put after the shard's lease was created.
    Latest,
    /// Records from `starting_timestamp` on.
    AtTimestamp,
}

/// How long `next_batch` waits for records before returning an empty batch, so the
/// pipeline can apply reloads and notice a stop while the stream is idle.
const IDLE_TICK: Duration = Duration::from_millis(200);
/// Chunks (GetRecords responses) buffered between the readers and the pipeline.
const CHUNK_QUEUE: usize = 16;
type Acks = Vec<worker::Ack>;

/// Point lines read from the stream, in the contract's raw-lines layout: line `i` is
/// `data[ends[i-1]..ends[i]]` of trajectory `trajectory[i]` (an index into
/// `trajectories`) with position `seq[i]`.
#[derive(Default)]
pub struct LineBatch {
    /// (user, trajectory) of each trajectory the batch holds.
    pub trajectories: Vec<(String, String)>,
    /// The lines' bytes, back to back.
    pub data: Vec<u8>,
    /// Exclusive end of each line in `data`.
    pub ends: Vec<u32>,
    /// Each line's index into `trajectories`.
    pub trajectory: Vec<u32>,
    /// Each line's position in its trajectory.
    pub seq: Vec<u32>,
    /// Records that are no point line (or a corrupt aggregate), with why.
    pub refused: Vec<RefusedRecord>,
    /// Moves the checkpoints past this batch; call it once what came of the batch is
    /// durable, in batch order. None when the batch reaches no new position.
    pub ack: Option<Box<dyn FnOnce() + Send>>,
    /// Saved state to put in place before the batch runs (shards just taken).
    pub restores: Vec<SavedState>,
    /// State to take right after the batch ran: it goes with the batch's checkpoints.
    pub captures: Vec<StateCapture>,
}

impl LineBatch {
    /// Point lines in the batch.
    pub fn lines(&self) -> usize {
        self.ends.len()
    }
}

/// A record the consumer could not turn into a point line.
pub struct RefusedRecord {
    /// Why (it may quote the record: its key, its first field).
    pub cause: String,
    /// The record's data as read.
    pub data: Vec<u8>,
    /// `<shard>/<sequence number>:<sub-sequence number>`.
    pub position: String,
}

/// Reads a Kinesis stream through leases; see the module docs.
pub struct KinesisConsumer {
    aws: &'static Aws,
    chunks: mpsc::Receiver<Chunk>,
    /// A chunk part of which went into the previous batch, and where the rest starts.
    partial: Option<(Chunk, usize)>,
    acks: Option<mpsc::UnboundedSender<Acks>>,
    shutdown: watch::Sender<bool>,
    worker: Option<JoinHandle<Vec<Arc<HeldLease>>>>,
    checkpointer: Option<JoinHandle<()>>,
    leases: LeaseTable,
    worker_id: String,
    batch_size: usize,
    bytes_read: u64,
    stats: Arc<ConsumerStats>,
}

impl KinesisConsumer {
    /// Connects (aws-config's default chain), makes sure the lease table exists and
    /// starts the worker; records flow from the first [`KinesisConsumer::next_batch`].
    pub fn open(config: &KinesisSourceConfig, batch_size: usize) -> Result<Self> {
        let settings = worker_settings(config)?;
        let aws = Aws::shared()?;
        let kinesis = aws_sdk_kinesis::Client::new(aws.config());
        let leases = LeaseTable::new(
            aws_sdk_dynamodb::Client::new(aws.config()),
            &config.lease_table,
        );
        aws.block_on(leases.ensure_exists(config.create_lease_table))?;
        if settings.read.starting_timestamp.is_none() {
            check_no_timestamp_needed(aws.block_on(leases.list())?, &config.lease_table)?;
        }
        let (chunk_sender, chunks) = mpsc::channel(CHUNK_QUEUE);
        let (acks, ack_receiver) = mpsc::unbounded_channel();
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let sync_now = Arc::new(Notify::new());
        let worker_id = settings.worker_id.clone();
        let stats = Arc::new(ConsumerStats::default());
        let store = config.state_bucket.as_deref().map(|bucket| {
            StateStore::new(
                aws.s3(config.state_path_style),
                bucket,
                &config.state_prefix,
                &config.stream,
            )
        });
        tracing::info!(stream = %config.stream, lease_table = %config.lease_table, worker = %worker_id, "kinesis source starting");
        let worker = Worker::new(
            kinesis,
            leases.clone(),
            settings,
            chunk_sender,
            sync_now.clone(),
            stats.clone(),
            store.clone(),
        );
        let worker = aws.runtime().spawn(worker.run(shutdown_receiver));
        let checkpointer = aws.runtime().spawn(worker::checkpointer(
            leases.clone(),
            worker_id.clone(),
            ack_receiver,
            sync_now,
            stats.clone(),
            store,
        ));
        Ok(KinesisConsumer {
            aws,
            chunks,
            partial: None,
            acks: Some(acks),
            shutdown,
            worker: Some(worker),
            checkpointer: Some(checkpointer),
            leases,
            worker_id,
            batch_size: batch_size.max(1),
            bytes_read: 0,
            stats,
        })
    }

    /// The next chunk: the rest of a partly used one, one already queued, or, with
    /// `wait`, one that arrives within [`IDLE_TICK`].
    fn next_chunk(&mut self, wait: bool) -> Result<Option<(Chunk, usize)>> {
        if let Some(partial) = self.partial.take() {
            return Ok(Some(partial));
        }
        let received = if wait {
            let chunks = &mut self.chunks;
            let received = self
                .aws
                .block_on(async { tokio::time::timeout(IDLE_TICK, chunks.recv()).await });
            match received {
                Ok(received) => received,
                Err(_idle) => return Ok(None),
            }
        } else {
            match self.chunks.try_recv() {
                Ok(chunk) => Some(chunk),
                Err(mpsc::error::TryRecvError::Empty) => return Ok(None),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        };
        received
            .map(|chunk| (chunk, 0))
            .context("the kinesis worker stopped unexpectedly")
            .map(Some)
    }
}

impl KinesisConsumer {
    /// The next batch: at most `batch_size` lines, what is queued, or after a short wait
    /// while the stream is idle an empty batch (so the caller can do other work).
    pub fn next_batch(&mut self) -> Result<LineBatch> {
        let mut builder = BatchBuilder::default();
        // Take what is queued; wait (briefly) only when there is nothing at all.
        while builder.lines() < self.batch_size {
            let wait = builder.is_empty();
            let Some((mut chunk, start)) = self.next_chunk(wait)? else {
                break;
            };
            if chunk.lease.is_lost() {
                tracing::debug!(shard = %chunk.lease.shard_id, records = chunk.records.len() - start, "dropping records of a lost lease");
                continue;
            }
            if let Some(saved) = chunk.restore.take() {
                builder.batch.restores.push(saved);
            }
            let end = chunk
                .records
                .len()
                .min(start + self.batch_size - builder.lines());
            builder.arrived(chunk.oldest_arrival_ms);
            for record in &chunk.records[start..end] {
                self.bytes_read += record.data.len() as u64;
                builder.add(&chunk.lease, record);
            }
            // Once per chunk slice, not per record: the batch reaches its last record.
            if let Some(last) = chunk.records[start..end].last() {
                builder.acknowledge(&chunk.lease, Checkpoint::At(last.position.clone()));
            }
            if end < chunk.records.len() {
                self.partial = Some((chunk, end));
            } else if chunk.shard_end {
                builder.acknowledge(&chunk.lease, Checkpoint::ShardEnd);
            }
        }
        let acks = self
            .acks
            .clone()
            .context("the kinesis source is finished")?;
        Ok(builder.finish(acks, self.stats.clone()))
    }

    /// Leases held, takeovers, and per shard how far behind and how old its checkpoint
    /// is; the acknowledgement ages since the last call.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Stops the workers, writes the checkpoints of everything acknowledged, and releases
    /// the leases. Call it once, after the last acknowledgement.
    pub fn finish(&mut self) -> Result<()> {
        let _ = self.shutdown.send(true);
        let held = match self.worker.take() {
            Some(worker) => self.aws.block_on(worker).unwrap_or_default(),
            None => return Ok(()),
        };
        // Every acknowledgement was called by now: closing the channel lets the
        // checkpointer write the last checkpoints and end.
        self.acks = None;
        if let Some(checkpointer) = self.checkpointer.take() {
            let _ = self.aws.block_on(checkpointer);
        }
        let (leases, owner) = (&self.leases, &self.worker_id);
        self.aws.block_on(async {
            for lease in held.iter().filter(|l| !l.is_lost()) {
                match leases.release(lease, owner).await {
                    Ok(true) => tracing::info!(shard = %lease.shard_id, "released the lease"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(shard = %lease.shard_id, error = format!("{e:#}"), "could not release the lease; it will expire"),
                }
            }
        });
        Ok(())
    }

    /// Record bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

/// One batch in the making: lines, refusals, and the position reached per shard.
#[derive(Default)]
struct BatchBuilder {
    batch: LineBatch,
    /// Partition key → index in `trajectories`.
    index: HashMap<String, u32>,
    acks: Acks,
    /// The oldest `ApproximateArrivalTimestamp` of the chunks taken, ms since the epoch.
    oldest_arrival_ms: Option<i64>,
}

impl BatchBuilder {
    fn lines(&self) -> usize {
        self.batch.lines()
    }

    fn is_empty(&self) -> bool {
        self.batch.ends.is_empty() && self.batch.refused.is_empty() && self.acks.is_empty()
    }

    /// Adds a record as a line, or as a dead letter when it is corrupt or malformed.
    fn add(&mut self, lease: &Arc<HeldLease>, record: &reader::ShardRecord) {
        let decoded = match &record.corrupt {
            Some(cause) => Err(cause.clone()),
            None => lines::decode(&record.partition_key, &record.data),
        };
        let line = match decoded {
            Ok(line) => line,
            Err(cause) => {
                self.batch.refused.push(RefusedRecord {
                    cause,
                    data: record.data.clone(),
                    position: format!("{}/{}", lease.shard_id, record.position),
                });
                return;
            }
        };
        let batch = &mut self.batch;
        let trajectory = match self.index.get(&record.partition_key) {
            Some(&index) => index,
            None => {
                batch
                    .trajectories
                    .push((line.user.to_string(), line.trajectory.to_string()));
                let index = batch.trajectories.len() as u32 - 1;
                self.index.insert(record.partition_key.clone(), index);
                index
            }
        };
        batch.data.extend_from_slice(line.line);
        batch.ends.push(batch.data.len() as u32);
        batch.trajectory.push(trajectory);
        batch.seq.push(line.seq);
    }

    /// Notes how far the batch reaches in the lease's shard.
    fn acknowledge(&mut self, lease: &Arc<HeldLease>, checkpoint: Checkpoint) {
        match self
            .acks
            .iter_mut()
            .find(|(held, _, _)| Arc::ptr_eq(held, lease))
        {
            Some((_, reached, _)) => *reached = checkpoint,
            None => self.acks.push((lease.clone(), checkpoint, None)),
        }
    }

    /// Asks for the state of the shards whose state is due (always at `SHARD_END`: the
    /// children start from it), to go with this batch's checkpoints.
    fn capture_due_state(&mut self) {
        for (lease, checkpoint, slot) in &mut self.acks {
            let Some(state) = &lease.state else { continue };
            if *checkpoint == Checkpoint::ShardEnd || state.clock.due() {
                let (capture, filled) = StateCapture::new(lease.shard_id.clone(), state.range);
                self.batch.captures.push(capture);
                *slot = Some(filled);
            }
        }
    }

    /// Notes a chunk's oldest arrival time.
    fn arrived(&mut self, at_ms: Option<i64>) {
        self.oldest_arrival_ms = match (self.oldest_arrival_ms, at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    fn finish(
        mut self,
        sender: mpsc::UnboundedSender<Acks>,
        stats: Arc<ConsumerStats>,
    ) -> LineBatch {
        self.capture_due_state();
        let acks = self.acks;
        let oldest = self.oldest_arrival_ms;
        LineBatch {
            ack: (!acks.is_empty()).then(|| {
                Box::new(move || {
                    // Closed only once the source finished, when nothing is acknowledged.
                    let _ = sender.send(acks);
                    if let Some(oldest) = oldest {
                        let now = chrono::Utc::now().timestamp_millis();
                        let age = u64::try_from(now - oldest).unwrap_or(0);
                        stats.acknowledged(Duration::from_millis(age));
                    }
                }) as Box<dyn FnOnce() + Send>
            }),
            ..self.batch
        }
    }
}

/// The worker's settings from the config.
fn worker_settings(config: &KinesisSourceConfig) -> Result<WorkerSettings> {
    anyhow::ensure!(
        (1..=10_000).contains(&config.max_records),
        "kinesis source: max_records must be 1 to 10000"
    );
    let starting_timestamp = match &config.starting_timestamp {
        Some(text) => {
            let time = chrono::DateTime::parse_from_rfc3339(text)
                .with_context(|| format!("kinesis source: starting_timestamp {text:?}"))?;
            Some(aws_sdk_kinesis::primitives::DateTime::from_millis(
                time.timestamp_millis(),
            ))
        }
        None => None,
    };
    let initial_position = match config.starting_position {
        StartingPosition::TrimHorizon => Checkpoint::TrimHorizon,
        StartingPosition::Latest => Checkpoint::Latest,
        StartingPosition::AtTimestamp => {
            anyhow::ensure!(
                starting_timestamp.is_some(),
                "kinesis source: starting_position AT_TIMESTAMP needs starting_timestamp"
            );
            Checkpoint::AtTimestamp
        }
    };
    Ok(WorkerSettings {
        worker_id: config.worker_id.clone().unwrap_or_else(default_worker_id),
        stream: StreamId::parse(&config.stream),
        failover: Duration::from_millis(config.failover_time_ms.max(300)),
        shard_sync_interval: Duration::from_millis(config.shard_sync_interval_ms.max(100)),
        initial_position,
        state_interval: Duration::from_millis(config.state_interval_ms),
        read: ReadOptions {
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            max_records: config.max_records,
            starting_timestamp,
        },
    })
}

/// A lease checkpointed at `AT_TIMESTAMP` (KCL writes it for the unread shards of an
/// application started `AT_TIMESTAMP`) can only be read with the timestamp, which the
/// table does not hold: without `starting_timestamp` its reader would fail and the lease
/// be retaken forever, with no point and no error. Say so at the start instead.
fn check_no_timestamp_needed(leases: Vec<leases::Lease>, table: &str) -> Result<()> {
    let shards: Vec<String> = leases
        .into_iter()
        .filter(|l| l.checkpoint == Checkpoint::AtTimestamp)
        .map(|l| l.shard_id)
        .collect();
    anyhow::ensure!(
        shards.is_empty(),
        "kinesis source: lease table {table} has shards checkpointed at AT_TIMESTAMP ({}), \
         written by an application that started reading at a timestamp; set \
         starting_timestamp (RFC 3339) in [source] to that time to read them",
        shards.join(", ")
    );
    Ok(())
}

/// `<hostname>-<pid>`: unique among the processes reading a stream.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "waystream".into());
    format!("{host}-{}", std::process::id())
}
