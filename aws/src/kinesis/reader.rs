//! Reading one shard: GetRecords polling from a checkpoint to the shard's end.
//!
//! One reader task runs per held lease. It starts where the lease's checkpoint says (for
//! a sequence number: `AT_SEQUENCE_NUMBER`, then skips what the checkpoint covers, so a
//! half-processed KPL aggregate resumes at the right user record, as KCL does), polls
//! within the per-shard limits (5 calls/s; an empty response waits the poll interval),
//! backs off with jitter on `ProvisionedThroughputExceededException`, and when an
//! iterator expires gets a new one `AFTER_SEQUENCE_NUMBER` of the last record it read. A
//! null `NextShardIterator` is the end of a closed shard (an empty response is not): the
//! reader sends a last chunk marked `shard_end` and stops.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use tokio::sync::mpsc;

use super::leases::HeldLease;
use super::position::{Checkpoint, Position};
use super::state::SavedState;
use super::stats::ConsumerStats;
use crate::retry::{self, Retrier};
use waystream_contract::aggregation::{Deaggregated, deaggregate};

/// A user record read from a shard (a plain record, or one out of a KPL aggregate).
#[derive(Debug)]
pub struct ShardRecord {
    pub position: Position,
    pub partition_key: String,
    pub data: Vec<u8>,
    /// Why the record is unusable (a corrupt aggregate), if it is.
    pub corrupt: Option<String>,
}

/// What one GetRecords call yielded for a shard.
pub struct Chunk {
    pub lease: Arc<HeldLease>,
    pub records: Vec<ShardRecord>,
    /// The shard is closed and this chunk holds its last records.
    pub shard_end: bool,
    /// `ApproximateArrivalTimestamp` of its first (oldest) record, ms since the epoch.
    pub oldest_arrival_ms: Option<i64>,
    /// State to put in place before the shard's records (a lease's first chunk, with
    /// state checkpointing).
    pub restore: Option<SavedState>,
}

impl Chunk {
    /// The chunk that puts a shard's saved state in place, ahead of its records.
    pub fn restore(lease: Arc<HeldLease>, saved: SavedState) -> Self {
        Chunk {
            lease,
            records: Vec::new(),
            shard_end: false,
            oldest_arrival_ms: None,
            restore: Some(saved),
        }
    }
}

/// The stream, by name or by ARN (every request carries one of them).
#[derive(Debug, Clone)]
pub struct StreamId {
    pub name: Option<String>,
    pub arn: Option<String>,
}

impl StreamId {
    /// `arn:…` is an ARN, anything else a name.
    pub fn parse(stream: &str) -> Self {
        if stream.starts_with("arn:") {
            StreamId {
                name: None,
                arn: Some(stream.into()),
            }
        } else {
            StreamId {
                name: Some(stream.into()),
                arn: None,
            }
        }
    }
}

/// How readers poll.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The wait after an empty response (or one at the tip of the shard).
    pub poll_interval: Duration,
    /// GetRecords `Limit` (at most 10,000).
    pub max_records: i32,
    /// Where `AT_TIMESTAMP` starts.
    pub starting_timestamp: Option<DateTime>,
}

/// The shortest wait between two GetRecords calls on one shard: 5 calls/s/shard.
const MIN_CALL_SPACING: Duration = Duration::from_millis(200);

/// Reads one shard into `out` from `start` until its end (or until the task is aborted,
/// or `out` closes).
pub async fn read_shard(
    kinesis: Client,
    stream: StreamId,
    options: ReadOptions,
    lease: Arc<HeldLease>,
    start: Checkpoint,
    out: mpsc::Sender<Chunk>,
    stats: Arc<ConsumerStats>,
) -> Result<()> {
    let shard = lease.shard_id.clone();
    let skip_through = match &start {
        Checkpoint::At(position) => Some(position.clone()),
        _ => None,
    };
    let (kind, sequence) = match &start {
        Checkpoint::TrimHorizon => (ShardIteratorType::TrimHorizon, None),
        Checkpoint::Latest => (ShardIteratorType::Latest, None),
        Checkpoint::AtTimestamp => (ShardIteratorType::AtTimestamp, None),
        Checkpoint::At(p) => (
            ShardIteratorType::AtSequenceNumber,
            Some(p.sequence.clone()),
        ),
        Checkpoint::ShardEnd => anyhow::bail!("shard {shard} is finished; nothing to read"),
    };
    let first = shard_iterator(
        &kinesis,
        &stream,
        &shard,
        kind.clone(),
        sequence.as_deref(),
        &options,
    );
    let mut iterator = Some(first.await?);
    let mut last_read: Option<Arc<str>> = None;
    let mut retrier = Retrier::new(retry::SHARD_POLL, None);
    while let Some(current) = iterator.take() {
        let response = kinesis
            .get_records()
            .shard_iterator(&current)
            .limit(options.max_records)
            .set_stream_arn(stream.arn.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => {
                retrier.succeeded();
                response
            }
            Err(e) => {
                let wait = retrier.failed().unwrap_or(retry::SHARD_POLL.backoff.max);
                let code = aws_sdk_kinesis::error::ProvideErrorMetadata::code(&e).unwrap_or("");
                if code == "ExpiredIteratorException" {
                    tracing::info!(%shard, "shard iterator expired; resuming after the last record read");
                    // After the last record read; from the start if none was read yet.
                    let (kind, sequence) = match &last_read {
                        Some(read) => (ShardIteratorType::AfterSequenceNumber, Some(read.as_ref())),
                        None => (kind.clone(), sequence.as_deref()),
                    };
                    let renewed =
                        shard_iterator(&kinesis, &stream, &shard, kind, sequence, &options).await;
                    iterator = Some(renewed?);
                    continue;
                }
                if code == "ProvisionedThroughputExceededException" {
                    tracing::debug!(%shard, ms = wait.as_millis() as u64, "read throttled; backing off");
                } else {
                    tracing::warn!(%shard, ms = wait.as_millis() as u64, error = %aws_sdk_kinesis::error::DisplayErrorContext(&e), "GetRecords failed; retrying");
                }
                tokio::time::sleep(wait).await;
                iterator = Some(current);
                continue;
            }
        };
        iterator = response.next_shard_iterator().map(str::to_string);
        let at_tip = response.millis_behind_latest() == Some(0) || response.records().is_empty();
        stats.behind(&shard, response.millis_behind_latest());
        let oldest_arrival_ms = response
            .records()
            .first()
            .and_then(|r| r.approximate_arrival_timestamp())
            .and_then(|t| t.to_millis().ok());
        let mut records = Vec::with_capacity(response.records().len());
        for record in response.records() {
            let sequence: Arc<str> = record.sequence_number().into();
            split_record(record, &sequence, skip_through.as_ref(), &mut records);
            last_read = Some(sequence);
        }
        let shard_end = iterator.is_none();
        if !records.is_empty() || shard_end {
            let chunk = Chunk {
                lease: lease.clone(),
                records,
                shard_end,
                oldest_arrival_ms,
                restore: None,
            };
            if out.send(chunk).await.is_err() {
                return Ok(()); // the source is shutting down
            }
        }
        if shard_end {
            tracing::info!(%shard, "read to the end of the shard");
            return Ok(());
        }
        tokio::time::sleep(if at_tip {
            options.poll_interval
        } else {
            MIN_CALL_SPACING
        })
        .await;
    }
    Ok(())
}

/// De-aggregates one Kinesis record into `into`, dropping user records at or before
/// `skip_through` (already checkpointed).
fn split_record(
    record: &aws_sdk_kinesis::types::Record,
    sequence: &Arc<str>,
    skip_through: Option<&Position>,
    into: &mut Vec<ShardRecord>,
) {
    let data = record.data().as_ref();
    let at = |sub: u64| Position {
        sequence: sequence.clone(),
        sub,
    };
    let keep = |position: &Position| skip_through.is_none_or(|skip| position > skip);
    let plain = |corrupt: Option<String>| ShardRecord {
        position: at(0),
        partition_key: record.partition_key().unwrap_or_default().to_string(),
        data: data.to_vec(),
        corrupt,
    };
    match deaggregate(data) {
        Deaggregated::Plain => into.extend(Some(plain(None)).filter(|r| keep(&r.position))),
        Deaggregated::Corrupt(cause) => {
            into.extend(Some(plain(Some(cause))).filter(|r| keep(&r.position)))
        }
        Deaggregated::Records(users) => {
            into.extend(users.into_iter().enumerate().filter_map(|(sub, user)| {
                let position = at(sub as u64);
                keep(&position).then_some(ShardRecord {
                    position,
                    partition_key: user.partition_key,
                    data: user.data,
                    corrupt: None,
                })
            }));
        }
    }
}

/// A shard iterator of `kind`, from `sequence` for the kinds that take one.
async fn shard_iterator(
    kinesis: &Client,
    stream: &StreamId,
    shard: &str,
    kind: ShardIteratorType,
    sequence: Option<&str>,
    options: &ReadOptions,
) -> Result<String> {
    let timestamp = (kind == ShardIteratorType::AtTimestamp)
        .then_some(options.starting_timestamp)
        .flatten();
    let request = kinesis
        .get_shard_iterator()
        .set_stream_name(stream.name.clone())
        .set_stream_arn(stream.arn.clone())
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(sequence.map(str::to_string))
        .set_timestamp(timestamp);
    let mut retrier = Retrier::new(retry::SHARD_ITERATOR, None);
    loop {
        match request.clone().send().await {
            Ok(out) => {
                return out
                    .shard_iterator()
                    .map(str::to_string)
                    .with_context(|| format!("GetShardIterator for {shard} returned no iterator"));
            }
            Err(e) => match retrier.failed() {
                Some(wait) => {
                    tracing::warn!(%shard, error = %aws_sdk_kinesis::error::DisplayErrorContext(&e), "GetShardIterator failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e).with_context(|| format!("GetShardIterator for {shard}")),
            },
        }
    }
}
