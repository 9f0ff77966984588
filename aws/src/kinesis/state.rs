//! Transform state kept with the checkpoints, so a shard's trajectories go on where they
//! were when the shard moves to another host.
//!
//! Turned on by `state_bucket` in `[source]`. Every partition key (`<user>/<trajectory>`)
//! hashes into exactly one open shard's hash key range, so "the trajectories a shard
//! carries" is a range test on the key ([`ShardRange`]); nothing is tracked per record.
//!
//! * **Capture.** At most every `state_interval_ms` per shard, and always with
//!   `SHARD_END`, a batch asks the pipeline for the state of the shard's trajectories as it
//!   is right after that batch ([`StateCapture`]); the state travels with the batch's
//!   acknowledgement. With a state bucket, only such checkpoints are written: a checkpoint
//!   and its state always match, and the records after it are read again with the state
//!   they were first read with.
//! * **Store.** The checkpointer puts the state in S3 under
//!   `<prefix>/<stream>/<shard>/<sha256 of the state>` ([`StateStore`]) and writes that key
//!   as the lease's `waystreamState` in the same conditional update as the checkpoint.
//! * **Restore.** A host that takes a lease loads the state its `waystreamState` names, or,
//!   for a child shard still at `TRIM_HORIZON`, its parents' final states; the reader
//!   hands it to the pipeline ([`SavedState`]) before the shard's first records, and the
//!   pipeline replaces what its chain holds for the shard's range with it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use waystream_contract::kinesis::hash_key;

/// A shard's hash key range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRange {
    /// `startingHashKey`.
    pub start: u128,
    /// `endingHashKey`.
    pub end: u128,
}

impl ShardRange {
    /// The range as ListShards and the lease table write it (decimal strings).
    pub fn parse(start: &str, end: &str) -> Result<Self> {
        let number = |text: &str| {
            text.parse::<u128>()
                .with_context(|| format!("hash key {text:?}"))
        };
        Ok(ShardRange {
            start: number(start)?,
            end: number(end)?,
        })
    }

    /// Whether the records of trajectory `user`/`trajectory` go to this shard.
    pub fn carries(&self, user: &str, trajectory: &str) -> bool {
        let key = hash_key(&waystream_contract::kinesis::partition_key(
            user, trajectory,
        ));
        (self.start..=self.end).contains(&key)
    }
}

/// State saved for a shard, to be put in place before its first record is processed.
#[derive(Debug, Clone)]
pub struct SavedState {
    /// The shard taken.
    pub shard_id: String,
    /// The shard's range: the pipeline replaces its state of these trajectories.
    pub range: ShardRange,
    /// The saved states: the shard's own, or its parents' (each to be cut to `range`).
    /// Empty for a shard read from its start: the range's trajectories start fresh.
    pub states: Vec<Vec<u8>>,
}

/// The stored states a shard just taken starts from (see [`SavedState`]).
pub struct Restore {
    /// Where the states are.
    pub store: StateStore,
    /// S3 keys: the checkpoint's state, or the parents' final states.
    pub keys: Vec<String>,
    /// The range of the shard taken.
    pub range: ShardRange,
}

impl Restore {
    /// Downloads the states. A failure fails the shard's reader, so the lease is given up
    /// and taken again: reading on without the state would change the output.
    pub async fn load(self, shard_id: &str) -> Result<SavedState> {
        let mut states = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            states.push(self.store.get(key).await?);
        }
        tracing::info!(shard = shard_id, stored = ?self.keys, bytes = states.iter().map(Vec::len).sum::<usize>(), "restoring the shard's transform state");
        Ok(SavedState {
            shard_id: shard_id.into(),
            range: self.range,
            states,
        })
    }
}

/// A request for the state of a shard's trajectories right after the batch that carries
/// it; [`StateCapture::fill`] hands it over, to be stored with the batch's checkpoint.
pub struct StateCapture {
    /// The shard checkpointed.
    pub shard_id: String,
    /// Its range: the trajectories whose state is wanted.
    pub range: ShardRange,
    slot: Arc<Mutex<Option<Vec<u8>>>>,
}

impl StateCapture {
    /// A request and the slot its state arrives in.
    pub(super) fn new(shard_id: String, range: ShardRange) -> (Self, StateSlot) {
        let slot = Arc::default();
        let capture = StateCapture {
            shard_id,
            range,
            slot: Arc::clone(&slot),
        };
        (capture, StateSlot(slot))
    }

    /// Hands over the state (the pipeline's encoding of it).
    pub fn fill(self, state: Vec<u8>) {
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
    }
}

/// Where a [`StateCapture`]'s state arrives; read when the batch is acknowledged.
#[derive(Debug, Clone, Default)]
pub struct StateSlot(Arc<Mutex<Option<Vec<u8>>>>);

impl StateSlot {
    /// The state, if it was handed over.
    pub fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// When a held shard's state is next due (per lease, shared with the batch builder).
#[derive(Debug)]
pub struct StateClock {
    interval: Duration,
    next: Mutex<Instant>,
}

impl StateClock {
    /// A clock whose first capture is due one interval from now.
    pub fn new(interval: Duration) -> Self {
        StateClock {
            interval,
            next: Mutex::new(Instant::now() + interval),
        }
    }

    /// Whether a capture is due now; if so, the next one is due an interval later.
    pub fn due(&self) -> bool {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now < *next {
            return false;
        }
        *next = now + self.interval;
        true
    }
}

/// The S3 objects that hold the states.
#[derive(Clone)]
pub struct StateStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    stream: String,
}

impl StateStore {
    /// States of `stream`'s shards in `bucket`, under `prefix`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, prefix: &str, stream: &str) -> Self {
        // An ARN's slashes and colons would make odd keys; its last part is the name.
        let stream = stream.rsplit('/').next().unwrap_or(stream);
        StateStore {
            s3,
            bucket: bucket.into(),
            prefix: prefix.trim_end_matches('/').into(),
            stream: stream.into(),
        }
    }

    /// Stores a shard's state; returns its key (the same state always has the same key).
    pub async fn put(&self, shard: &str, state: Bytes) -> Result<String> {
        let digest = Sha256::digest(&state);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("{}/{}/{shard}/{hex}", self.prefix, self.stream);
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(state.into())
            .send()
            .await
            .map_err(|e| self.failed("putting state to", &key, e))?;
        Ok(key)
    }

    /// The state stored under `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.failed("getting state", key, e))?;
        let bytes = object
            .body
            .collect()
            .await
            .with_context(|| format!("reading state s3://{}/{key}", self.bucket))?;
        Ok(bytes.to_vec())
    }

    /// Deletes a state a newer checkpoint replaced (best effort: a leftover costs storage,
    /// nothing else).
    pub async fn delete(&self, key: &str) {
        let deleted = self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        if let Err(e) = deleted {
            let error = self.failed("deleting the replaced state", key, e);
            tracing::debug!("{error:#}");
        }
    }

    /// An S3 call's error, saying what was done to which object, with the SDK's whole
    /// error chain (its plain `Display` says only "service error").
    fn failed(&self, doing: &str, key: &str, error: impl std::error::Error) -> anyhow::Error {
        let error = aws_sdk_s3::error::DisplayErrorContext(error);
        anyhow::anyhow!("{doing} s3://{}/{key}: {error}", self.bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_carries_the_trajectories_whose_key_hashes_into_it() {
        let key = hash_key("u1/t-7");
        let around = ShardRange {
            start: key,
            end: key,
        };
        assert!(around.carries("u1", "t-7"));
        assert!(!around.carries("u1", "t-8"));
        let whole = ShardRange::parse("0", &u128::MAX.to_string()).unwrap();
        assert!(whole.carries("u1", "t-8"));
        assert!(ShardRange::parse("0", "-1").is_err());
    }

    #[test]
    fn a_capture_is_due_once_per_interval() {
        let clock = StateClock::new(Duration::ZERO);
        assert!(clock.due());
        let clock = StateClock::new(Duration::from_secs(3600));
        assert!(!clock.due());
    }
}
