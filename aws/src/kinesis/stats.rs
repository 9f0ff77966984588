//! What the consumer reports while it runs, for the host's metrics: per shard, how far
//! its reader is behind the tip (`MillisBehindLatest` of the last GetRecords) and when its
//! checkpoint was last written; how many leases this worker holds and how many it took
//! over from other workers; and how old records were when the pipeline acknowledged them
//! (now − the oldest `ApproximateArrivalTimestamp` of each acknowledged batch); and why
//! the worker's last round failed, while it does (the lease table or the stream out of
//! reach: what readiness reports).
//!
//! Written by the readers, the worker, the checkpointer and the acknowledgements; read
//! with [`ConsumerStats::snapshot`]. Each write is one short lock, once per GetRecords
//! call, round, checkpoint or batch: never per record.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Acknowledgement ages kept until the next snapshot, at most.
const AGES_KEPT: usize = 1024;

/// Shared by the consumer's tasks.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    shards: BTreeMap<String, ShardState>,
    leases_held: u64,
    takeovers: u64,
    ack_ages: Vec<Duration>,
    round_error: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct ShardState {
    millis_behind_latest: Option<i64>,
    checkpointed_at: Option<Instant>,
}

/// One shard this worker reads, as of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardSnapshot {
    /// The shard's id.
    pub shard: String,
    /// `MillisBehindLatest` of the reader's last GetRecords, once it made one.
    pub millis_behind_latest: Option<i64>,
    /// Since this worker last wrote the shard's checkpoint, once it wrote one.
    pub checkpoint_age: Option<Duration>,
}

/// The consumer's state at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    /// Leases this worker holds.
    pub leases_held: u64,
    /// Leases it took from another worker, since it started.
    pub takeovers: u64,
    /// The shards it holds, by id.
    pub shards: Vec<ShardSnapshot>,
    /// Ages of the acknowledged batches' oldest records since the last snapshot.
    pub ack_ages: Vec<Duration>,
    /// Why the worker's last round (renewing and taking leases, listing shards) failed,
    /// until a round succeeds again.
    pub round_error: Option<String>,
}

impl ConsumerStats {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A GetRecords response for `shard` said it is `millis` behind the tip.
    pub fn behind(&self, shard: &str, millis: Option<i64>) {
        let mut inner = self.inner();
        if let Some(state) = inner.shards.get_mut(shard) {
            state.millis_behind_latest = millis.or(state.millis_behind_latest);
        }
    }

    /// The shards this worker holds now (from a worker round).
    pub fn held<'a>(&self, shards: impl Iterator<Item = &'a String>) {
        let mut inner = self.inner();
        let held: BTreeMap<String, ShardState> = shards
            .map(|shard| {
                let state = inner.shards.get(shard).cloned().unwrap_or_default();
                (shard.clone(), state)
            })
            .collect();
        inner.leases_held = held.len() as u64;
        inner.shards = held;
    }

    /// The worker took a lease another worker held.
    pub fn took_over(&self) {
        self.inner().takeovers += 1;
    }

    /// The checkpoint of `shard` was written.
    pub fn checkpointed(&self, shard: &str) {
        if let Some(state) = self.inner().shards.get_mut(shard) {
            state.checkpointed_at = Some(Instant::now());
        }
    }

    /// The worker's round succeeded (`None`) or failed, and why.
    pub fn round(&self, error: Option<String>) {
        self.inner().round_error = error;
    }

    /// A batch whose oldest record arrived `age` ago was acknowledged.
    pub fn acknowledged(&self, age: Duration) {
        let mut inner = self.inner();
        if inner.ack_ages.len() < AGES_KEPT {
            inner.ack_ages.push(age);
        }
    }

    /// The state now; the acknowledgement ages are handed over (and cleared).
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut inner = self.inner();
        let now = Instant::now();
        StatsSnapshot {
            leases_held: inner.leases_held,
            takeovers: inner.takeovers,
            shards: inner
                .shards
                .iter()
                .map(|(shard, state)| ShardSnapshot {
                    shard: shard.clone(),
                    millis_behind_latest: state.millis_behind_latest,
                    checkpoint_age: state.checkpointed_at.map(|t| now.duration_since(t)),
                })
                .collect(),
            ack_ages: std::mem::take(&mut inner.ack_ages),
            round_error: inner.round_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_shards_held_and_hands_ages_over_once() {
        let stats = ConsumerStats::default();
        let shards = ["shard-0".to_string(), "shard-1".to_string()];
        stats.held(shards.iter());
        stats.behind("shard-0", Some(1500));
        stats.behind("shard-0", None); // a response without the field keeps the last value
        stats.behind("shard-9", Some(1)); // not held: ignored
        stats.checkpointed("shard-1");
        stats.took_over();
        stats.acknowledged(Duration::from_millis(250));
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.leases_held, 2);
        assert_eq!(snapshot.takeovers, 1);
        assert_eq!(snapshot.shards[0].millis_behind_latest, Some(1500));
        assert!(snapshot.shards[0].checkpoint_age.is_none());
        assert!(snapshot.shards[1].checkpoint_age.is_some());
        assert_eq!(snapshot.ack_ages, [Duration::from_millis(250)]);
        assert!(stats.snapshot().ack_ages.is_empty());
        // A lease given up leaves the snapshot.
        stats.held(shards[1..].iter());
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.leases_held, 1);
        assert_eq!(snapshot.shards.len(), 1);
        assert_eq!(snapshot.shards[0].shard, "shard-1");
        assert_eq!(snapshot.round_error, None);
        stats.round(Some("lease table: ResourceNotFoundException".into()));
        assert!(
            stats
                .snapshot()
                .round_error
                .unwrap()
                .contains("lease table")
        );
        stats.round(None);
        assert_eq!(stats.snapshot().round_error, None);
    }
}
