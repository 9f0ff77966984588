//! The worker: which shards this host reads, kept in step with the other hosts.
//!
//! Every `failover / 3` the worker renews the leases it holds, lists the shards when a
//! shard sync is due (creating leases for new shards), reads the lease table, and takes
//! leases until it holds its share, by KCL's rules (see [`super::balance`]). A lease
//! another worker took is noticed by a failed renewal or in the table: its reader stops
//! at once and its buffered records are dropped.
//!
//! The [`checkpointer`] writes the checkpoints the pipeline acknowledged; after a
//! `SHARD_END` it releases the lease and asks for a shard sync, so the children start.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_kinesis::Client;
use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use super::balance::{self, Seen};
use super::leases::{HeldLease, HeldState, Lease, LeaseTable, NewLease};
use super::position::Checkpoint;
use super::reader::{Chunk, ReadOptions, StreamId, read_shard};
use super::state::{Restore, ShardRange, StateClock, StateSlot, StateStore};
use super::stats::ConsumerStats;
use crate::retry::{self, Retrier};

/// What a worker needs to know.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub worker_id: String,
    pub stream: StreamId,
    pub failover: Duration,
    pub shard_sync_interval: Duration,
    /// Where shards without a parent start when they have no lease yet.
    pub initial_position: Checkpoint,
    pub read: ReadOptions,
    /// How often a shard's transform state is stored with its checkpoint (with a store).
    pub state_interval: Duration,
}

/// A lease this worker holds and the task reading its shard.
struct Held {
    lease: Arc<HeldLease>,
    reader: JoinHandle<()>,
}

/// A shard as ListShards describes it.
struct Shard {
    id: String,
    parents: Vec<String>,
    /// Closed (split, merged): it has an ending sequence number.
    closed: bool,
    hash_keys: Option<(String, String)>,
}

/// Takes, renews and balances leases; starts and stops the shard readers.
pub struct Worker {
    kinesis: Client,
    leases: LeaseTable,
    settings: WorkerSettings,
    out: mpsc::Sender<Chunk>,
    held: HashMap<String, Held>,
    /// Per lease: the counter last seen and when it last changed (this worker's clock).
    seen: HashMap<String, (u64, Instant)>,
    /// Shard ids of the last listing.
    known_shards: HashSet<String>,
    next_sync: Instant,
    sync_now: Arc<Notify>,
    stats: Arc<ConsumerStats>,
    /// Where transform state is kept with the checkpoints, when it is.
    store: Option<StateStore>,
    /// Each shard's hash key range, from the last listing.
    ranges: HashMap<String, ShardRange>,
}

impl Worker {
    pub fn new(
        kinesis: Client,
        leases: LeaseTable,
        settings: WorkerSettings,
        out: mpsc::Sender<Chunk>,
        sync_now: Arc<Notify>,
        stats: Arc<ConsumerStats>,
        store: Option<StateStore>,
    ) -> Self {
        Worker {
            kinesis,
            leases,
            settings,
            out,
            held: HashMap::new(),
            seen: HashMap::new(),
            known_shards: HashSet::new(),
            next_sync: Instant::now(),
            sync_now,
            stats,
            store,
            ranges: HashMap::new(),
        }
    }

    /// Runs until `shutdown` turns true; then stops the readers and returns the leases
    /// still held (for the caller to release after the last checkpoints).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Vec<Arc<HeldLease>> {
        let mut retrier = Retrier::new(retry::SHARD_POLL, None);
        loop {
            let wait = match self.round().await {
                Ok(()) => {
                    retrier.succeeded();
                    self.stats.round(None);
                    self.settings.failover / 3
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    tracing::warn!(error, "kinesis worker round failed; retrying");
                    self.stats.round(Some(error));
                    retrier.failed().unwrap_or(retry::SHARD_POLL.backoff.max)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.sync_now.notified() => self.next_sync = Instant::now(),
                _ = shutdown.changed() => break,
            }
        }
        self.held
            .into_values()
            .map(|held| {
                held.reader.abort();
                held.lease
            })
            .collect()
    }

    /// One round: forget lost leases, renew, sync shards when due, take leases.
    async fn round(&mut self) -> Result<()> {
        self.drop_lost();
        for held in self.held.values() {
            self.leases
                .renew(&held.lease, &self.settings.worker_id)
                .await?;
        }
        // A renewal that failed lost its lease: it must not count towards this worker's
        // share when leases are taken below (it would hold a handover up one round).
        self.drop_lost();
        if Instant::now() >= self.next_sync {
            self.sync_shards().await?;
            self.next_sync = Instant::now() + self.settings.shard_sync_interval;
        }
        let leases = self.leases.list().await?;
        let taken = self.take_leases(&leases).await;
        self.stats.held(self.held.keys());
        taken
    }

    /// Stops reading the shards whose leases were lost (or finished).
    fn drop_lost(&mut self) {
        self.held.retain(|shard, held| {
            if held.lease.is_lost() {
                tracing::info!(%shard, "stopped reading: lease lost or finished");
                held.reader.abort();
            }
            !held.lease.is_lost()
        });
    }

    /// Lists the stream's shards and creates a lease for each shard that needs one, as
    /// KCL's shard synchroniser does: from the configured initial position for a shard
    /// without known parents, from `TRIM_HORIZON` for a child. A closed shard gets none
    /// once a child of it has a checkpoint past `TRIM_HORIZON`: its records were all read
    /// (KCL deletes such a parent's lease; making it again would read the shard whole a
    /// second time). Leases carry the shard's hash key range, and a closed shard's lease
    /// its children's ids.
    async fn sync_shards(&mut self) -> Result<()> {
        let shards = list_shards(&self.kinesis, &self.settings.stream).await?;
        let existing: HashMap<String, Checkpoint> = self
            .leases
            .list()
            .await?
            .into_iter()
            .map(|l| (l.shard_id, l.checkpoint))
            .collect();
        self.known_shards = shards.iter().map(|s| s.id.clone()).collect();
        self.ranges = shards
            .iter()
            .filter_map(|s| {
                let (start, end) = s.hash_keys.as_ref()?;
                Some((s.id.clone(), ShardRange::parse(start, end).ok()?))
            })
            .collect();
        let mut children: HashMap<&str, Vec<String>> = HashMap::new();
        for shard in &shards {
            for parent in &shard.parents {
                children.entry(parent).or_default().push(shard.id.clone());
            }
        }
        for shard in &shards {
            if existing.contains_key(&shard.id) {
                continue;
            }
            let children = children
                .get(shard.id.as_str())
                .map_or(&[][..], Vec::as_slice);
            let read_past = |child: &String| {
                existing
                    .get(child)
                    .is_some_and(|c| !matches!(c, Checkpoint::TrimHorizon))
            };
            if shard.closed && children.iter().any(read_past) {
                tracing::debug!(shard = %shard.id, "no lease for a finished parent: its children have moved on");
                continue;
            }
            let has_known_parent = shard
                .parents
                .iter()
                .any(|p| self.known_shards.contains(p) || existing.contains_key(p));
            let start = if has_known_parent {
                Checkpoint::TrimHorizon
            } else {
                self.settings.initial_position.clone()
            };
            let lease = NewLease {
                shard_id: &shard.id,
                checkpoint: start.clone(),
                parents: &shard.parents,
                children: if shard.closed { children } else { &[] },
                hash_keys: shard
                    .hash_keys
                    .as_ref()
                    .map(|(a, b)| (a.as_str(), b.as_str())),
            };
            if self.leases.create(&lease).await? {
                tracing::info!(shard = %shard.id, checkpoint = ?start, "created a lease for a new shard");
                for parent in shard.parents.iter().filter(|p| existing.contains_key(*p)) {
                    self.leases.add_child(parent, &shard.id).await?;
                }
            }
        }
        Ok(())
    }

    /// Takes expired leases, then steals one if this worker is still below its share.
    async fn take_leases(&mut self, leases: &[Lease]) -> Result<()> {
        let now = Instant::now();
        let me = self.settings.worker_id.clone();
        let me = me.as_str();
        for lease in leases {
            let entry = self
                .seen
                .entry(lease.shard_id.clone())
                .or_insert((lease.counter, now));
            if entry.0 != lease.counter {
                *entry = (lease.counter, now);
            }
            if let Some(held) = self.held.get(&lease.shard_id)
                && lease.owner.as_deref() != Some(me)
            {
                tracing::warn!(shard = %lease.shard_id, owner = ?lease.owner, "lease taken by another worker");
                held.lease.mark_lost();
            }
        }
        let held = &self.held;
        let seen: Vec<Seen> = balance::eligible(leases, &self.known_shards)
            .into_iter()
            .map(|lease| {
                let mine = held.contains_key(&lease.shard_id);
                let expired = match lease.owner.as_deref() {
                    None => true,
                    // Ours from an earlier run with the same worker id.
                    Some(owner) if owner == me => !mine,
                    Some(_) => self.seen.get(&lease.shard_id).is_some_and(|(_, changed)| {
                        now.duration_since(*changed) >= self.settings.failover
                    }),
                };
                Seen {
                    lease,
                    expired,
                    mine,
                }
            })
            .collect();
        let wanted = balance::choose(&seen);
        for lease in wanted {
            let from_another = lease.owner.as_deref().is_some_and(|o| o != me);
            if from_another {
                tracing::info!(shard = %lease.shard_id, from = ?lease.owner, "taking a lease over");
            }
            if let Some(mut held) = self.leases.take(lease, me).await? {
                if from_another {
                    self.stats.took_over();
                }
                let restore = self.restore_plan(lease, leases, &mut held);
                self.start_reader(Arc::new(held), lease.checkpoint.clone(), restore);
            }
        }
        Ok(())
    }

    /// With state checkpointing, readies `held` for it and says which stored states the
    /// shard starts from: the one its checkpoint names; for a shard read from its start,
    /// its parents' final states; none otherwise (its trajectories start fresh).
    fn restore_plan(
        &self,
        lease: &Lease,
        leases: &[Lease],
        held: &mut HeldLease,
    ) -> Option<Restore> {
        let store = self.store.clone()?;
        let Some(&range) = self.ranges.get(&lease.shard_id) else {
            tracing::warn!(shard = %lease.shard_id, "no hash key range known for the shard; its state is not checkpointed");
            return None;
        };
        held.state = Some(HeldState {
            range,
            clock: StateClock::new(self.settings.state_interval),
            stored: std::sync::Mutex::new(lease.state.clone()),
        });
        let keys = match &lease.state {
            Some(key) => vec![key.clone()],
            None if lease.checkpoint == Checkpoint::TrimHorizon => leases
                .iter()
                .filter(|l| lease.parents.contains(&l.shard_id))
                .filter_map(|l| l.state.clone())
                .collect(),
            None => Vec::new(),
        };
        Some(Restore { store, keys, range })
    }

    fn start_reader(&mut self, lease: Arc<HeldLease>, start: Checkpoint, restore: Option<Restore>) {
        let shard = lease.shard_id.clone();
        tracing::info!(%shard, checkpoint = ?start, "took the lease; reading");
        let out = self.out.clone();
        let restoring = lease.clone();
        let restored = async move {
            let Some(restore) = restore else {
                return Ok(true);
            };
            let saved = restore.load(&restoring.shard_id).await?;
            Ok::<_, anyhow::Error>(out.send(Chunk::restore(restoring, saved)).await.is_ok())
        };
        let reading = read_shard(
            self.kinesis.clone(),
            self.settings.stream.clone(),
            self.settings.read.clone(),
            lease.clone(),
            start,
            self.out.clone(),
            self.stats.clone(),
        );
        let failed = lease.clone();
        let reader = tokio::spawn(async move {
            let read = match restored.await {
                Ok(true) => reading.await,
                Ok(false) => Ok(()), // the source is shutting down
                Err(e) => Err(e),
            };
            if let Err(e) = read {
                // Marked lost here, the lease is left to expire, or retaken next round
                // (it is still ours in the table).
                tracing::error!(shard = %failed.shard_id, error = format!("{e:#}"), "shard reader failed");
                failed.mark_lost();
            }
        });
        self.held.insert(shard, Held { lease, reader });
    }
}

/// Every shard of the stream. Pages are fetched with `NextToken` alone: ListShards
/// refuses a stream name together with a token.
async fn list_shards(kinesis: &Client, stream: &StreamId) -> Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let request = kinesis.list_shards();
        let request = match token.take() {
            Some(token) => request.next_token(token),
            None => request
                .set_stream_name(stream.name.clone())
                .set_stream_arn(stream.arn.clone()),
        };
        let out = request.send().await.context("ListShards")?;
        for shard in out.shards() {
            shards.push(Shard {
                id: shard.shard_id().to_string(),
                parents: shard
                    .parent_shard_id()
                    .into_iter()
                    .chain(shard.adjacent_parent_shard_id())
                    .map(str::to_string)
                    .collect(),
                closed: shard
                    .sequence_number_range()
                    .is_some_and(|r| r.ending_sequence_number().is_some()),
                hash_keys: shard.hash_key_range().map(|r| {
                    (
                        r.starting_hash_key().to_string(),
                        r.ending_hash_key().to_string(),
                    )
                }),
            });
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            shards.sort_by(|a, b| a.id.cmp(&b.id));
            return Ok(shards);
        }
    }
}

/// One acknowledged position of a shard, with the slot of its state when it carries one.
pub type Ack = (Arc<HeldLease>, Checkpoint, Option<StateSlot>);

/// A checkpoint waiting to be written, with the state that goes with it.
/// (The state is shared, not copied, between the retries of a failed write and the S3 put.)
type Pending = (Arc<HeldLease>, Checkpoint, Option<Bytes>);

/// Writes acknowledged checkpoints: the latest per shard, coalescing what queued up
/// meanwhile; a failed write is retried. With state checkpointing, only positions that
/// carry their state are written, the state first (see [`super::state`]). After
/// `SHARD_END` the lease is released and a shard sync requested. Ends when every
/// acknowledgement sender is gone.
pub async fn checkpointer(
    leases: LeaseTable,
    owner: String,
    mut acks: mpsc::UnboundedReceiver<Vec<Ack>>,
    sync_now: Arc<Notify>,
    stats: Arc<ConsumerStats>,
    store: Option<StateStore>,
) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let merge = |pending: &mut HashMap<_, _>, batch: Vec<Ack>| {
        for (lease, checkpoint, slot) in batch {
            let state = slot.and_then(|slot| slot.take()).map(Bytes::from);
            // A position whose state was not taken cannot be a checkpoint: the records
            // after it would be read again with other state than the first time.
            if lease.state.is_some() && state.is_none() {
                continue;
            }
            pending.insert(lease.shard_id.clone(), (lease, checkpoint, state));
        }
    };
    let mut closed = false;
    let mut retrier = Retrier::new(retry::CHECKPOINT, None);
    let mut wait = std::time::Duration::ZERO;
    loop {
        if pending.is_empty() {
            match acks.recv().await {
                Some(batch) => merge(&mut pending, batch),
                None => return,
            }
        } else if closed {
            tokio::time::sleep(wait).await;
        } else {
            // A failed write waits for its backoff, or for a newer checkpoint.
            match tokio::time::timeout(wait, acks.recv()).await {
                Ok(Some(batch)) => merge(&mut pending, batch),
                Ok(None) => closed = true,
                Err(_elapsed) => {}
            }
        }
        while let Ok(batch) = acks.try_recv() {
            merge(&mut pending, batch);
        }
        let mut failed = HashMap::new();
        for (shard, (lease, checkpoint, state)) in pending.drain() {
            if lease.is_lost() {
                continue;
            }
            let written = write_checkpoint(
                &leases,
                &owner,
                &lease,
                &checkpoint,
                state.as_ref(),
                store.as_ref(),
            )
            .await;
            if matches!(written, Ok(true)) {
                stats.checkpointed(&shard);
            }
            match written {
                Ok(true) if checkpoint == Checkpoint::ShardEnd => {
                    tracing::info!(%shard, "checkpointed SHARD_END; releasing the lease");
                    if let Err(e) = leases.release(&lease, &owner).await {
                        tracing::warn!(%shard, error = format!("{e:#}"), "releasing a finished lease failed; it will expire");
                    }
                    sync_now.notify_one();
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(%shard, error = format!("{e:#}"), "checkpoint failed; retrying");
                    failed.insert(shard, (lease, checkpoint, state));
                }
            }
        }
        if failed.is_empty() {
            retrier.succeeded();
            wait = std::time::Duration::ZERO;
        } else {
            match retrier.failed() {
                Some(next) => wait = next,
                // Only the last checkpoints of a closing source give up; a running one
                // keeps the newest checkpoint of each shard and tries again.
                None if closed => {
                    tracing::error!(
                        shards = failed.len(),
                        "giving up on the last checkpoints; those shards will be read again from their previous checkpoint"
                    );
                    return;
                }
                None => {
                    retrier.succeeded();
                    wait = retry::CHECKPOINT.backoff.max;
                }
            }
        }
        pending = failed;
    }
}

/// Stores the state (if any) and writes the checkpoint naming it; then deletes the state
/// the lease named before, which no checkpoint names any more.
async fn write_checkpoint(
    leases: &LeaseTable,
    owner: &str,
    lease: &HeldLease,
    checkpoint: &Checkpoint,
    state: Option<&Bytes>,
    store: Option<&StateStore>,
) -> Result<bool> {
    let (Some(state), Some(store), Some(held)) = (state, store, &lease.state) else {
        return leases.checkpoint(lease, owner, checkpoint, None).await;
    };
    let key = store.put(&lease.shard_id, state.clone()).await?;
    let written = leases
        .checkpoint(lease, owner, checkpoint, Some(&key))
        .await?;
    if written {
        let replaced = held
            .stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(key.clone());
        if let Some(replaced) = replaced.filter(|r| *r != key) {
            store.delete(&replaced).await;
        }
    }
    Ok(written)
}
