//! The Firehose sink: documents to an Amazon Data Firehose delivery stream.
//!
//! ```toml
//! [sink]
//! type = "firehose"
//! delivery_stream = "waystream-points"
//! # retry_base_ms = 100          # first backoff; doubles per attempt, with jitter
//! # max_backoff_ms = 10000
//! # backpressure_after = 8       # attempts before it logs that it holds the pipeline back
//! ```
//!
//! Each record is one document ending in `\n`: Firehose's OpenSearch destination needs
//! exactly one single-line JSON document per record, and its S3 destination concatenates
//! records with no delimiter. Records go out with PutRecordBatch, cut at 500 records or
//! 4 MiB per call; a document over 1,000 KiB cannot be put at all, so the pipeline sends
//! it to the dead-letter sink (see [`Sink::max_document_bytes`]).
//!
//! Nothing is dropped. A call can fail as a whole (throttling, a 5xx, a network error:
//! retried with exponential backoff and jitter) or in part (`FailedPutCount > 0` in an
//! HTTP 200: only the entries with an error code are sent again). When retries run out
//! the sink keeps retrying and says so: [`Sink::flush`] does not return until Firehose
//! accepted everything, so the source's checkpoint stays behind (back-pressure) and the
//! pipeline stops reading until Firehose takes records again.
//!
//! The calls go through [`FirehoseClient`], implemented for AWS by [`AwsFirehose`] and
//! by fakes in tests, which inject the faults no server produces.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{DeadLetterSink, Sink};
use crate::dead_letter::DeadLetter;
use crate::document::Encoded;

/// Records per PutRecordBatch call, at most.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Bytes per PutRecordBatch call, at most.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Bytes per record, at most.
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;

/// `type = "firehose"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FirehoseConfig {
    pub delivery_stream: String,
    /// The first retry waits about this long; each further one twice as long.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// The longest wait between two attempts.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Attempts after which the sink logs (once per attempt) that it holds the pipeline
    /// back; it keeps retrying.
    #[serde(default = "default_backpressure_after")]
    pub backpressure_after: u32,
}

fn default_retry_base_ms() -> u64 {
    100
}
fn default_max_backoff_ms() -> u64 {
    10_000
}
fn default_backpressure_after() -> u32 {
    8
}

/// Why a whole PutRecordBatch call failed.
#[derive(Debug)]
pub enum CallError {
    /// `ThrottlingException` / `ServiceUnavailableException` or an HTTP 503.
    Throttled(String),
    /// Any other 5xx.
    Server(String),
    /// Network errors, timeouts, 4xx: retried as well, since dropping is not an option.
    Other(String),
}

/// PutRecordBatch, as the sink needs it.
pub trait FirehoseClient: Send {
    /// Puts `records` (in order) and returns, per record, none when Firehose accepted it
    /// or its error code when it did not.
    fn put_record_batch(&mut self, records: &[&[u8]]) -> Result<Vec<Option<String>>, CallError>;
}

/// What the sink did, for logs, the summary and tests.
#[derive(Debug, Default)]
pub struct FirehoseStats {
    pub records_accepted: AtomicU64,
    pub bytes_accepted: AtomicU64,
    pub calls: AtomicU64,
    /// Entries Firehose refused in an accepted call (and that were sent again).
    pub entries_failed: AtomicU64,
    pub throttled_calls: AtomicU64,
    pub server_errors: AtomicU64,
    pub other_errors: AtomicU64,
    /// Attempts made past `backpressure_after`.
    pub backpressure_attempts: AtomicU64,
}

/// Sends documents (or dead letters) to a delivery stream; see the module docs.
pub struct FirehoseSink<C: FirehoseClient> {
    client: C,
    config: FirehoseConfig,
    /// Records waiting for the next call, back to back, and where each ends.
    pending: Encoded,
    stats: Arc<FirehoseStats>,
    /// Reused for dead letters: one serialised letter per record.
    letter: Vec<u8>,
}

impl FirehoseSink<AwsFirehose> {
    /// A sink on AWS (aws-config's default chain; `AWS_ENDPOINT_URL_FIREHOSE` overrides
    /// the endpoint).
    pub fn open(config: &FirehoseConfig) -> Result<Self> {
        let client = AwsFirehose::connect(&config.delivery_stream)
            .with_context(|| format!("firehose sink {}", config.delivery_stream))?;
        Ok(FirehoseSink::new(client, config.clone()))
    }
}

impl<C: FirehoseClient> FirehoseSink<C> {
    pub fn new(client: C, config: FirehoseConfig) -> Self {
        FirehoseSink {
            client,
            config,
            pending: Encoded::default(),
            stats: Arc::default(),
            letter: Vec::new(),
        }
    }

    /// Counters shared with whoever wants to watch them.
    pub fn stats(&self) -> Arc<FirehoseStats> {
        self.stats.clone()
    }

    /// Queues one record, sending the queue first if the record would not fit in its call.
    fn push(&mut self, record: &[u8]) -> Result<()> {
        anyhow::ensure!(
            record.len() <= MAX_RECORD_BYTES,
            "a record of {} bytes is over Firehose's {MAX_RECORD_BYTES}",
            record.len()
        );
        if self.pending.len() == MAX_BATCH_RECORDS
            || self.pending.bytes.len() + record.len() > MAX_BATCH_BYTES
        {
            self.send_pending();
        }
        self.pending.bytes.extend_from_slice(record);
        self.pending.ends.push(self.pending.bytes.len());
        Ok(())
    }

    /// Sends the queued records, retrying until Firehose accepted all of them.
    fn send_pending(&mut self) {
        let records: Vec<&[u8]> = self.pending.iter().collect();
        let mut waiting: Vec<usize> = (0..records.len()).collect();
        let mut attempt: u32 = 0;
        while !waiting.is_empty() {
            let batch: Vec<&[u8]> = waiting.iter().map(|&i| records[i]).collect();
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            let failure = match self.client.put_record_batch(&batch) {
                Ok(codes) if codes.len() == batch.len() => {
                    let mut failed = Vec::new();
                    for (&i, code) in waiting.iter().zip(&codes) {
                        match code {
                            None => {
                                self.stats.records_accepted.fetch_add(1, Ordering::Relaxed);
                                let bytes = records[i].len() as u64;
                                self.stats
                                    .bytes_accepted
                                    .fetch_add(bytes, Ordering::Relaxed);
                            }
                            Some(_) => failed.push(i),
                        }
                    }
                    if failed.is_empty() {
                        break;
                    }
                    self.stats
                        .entries_failed
                        .fetch_add(failed.len() as u64, Ordering::Relaxed);
                    let first = codes.iter().flatten().next().cloned().unwrap_or_default();
                    waiting = failed;
                    format!(
                        "{} of {} entries failed ({first})",
                        waiting.len(),
                        batch.len()
                    )
                }
                Ok(codes) => {
                    self.stats.other_errors.fetch_add(1, Ordering::Relaxed);
                    format!("{} results for {} records", codes.len(), batch.len())
                }
                Err(CallError::Throttled(e)) => {
                    self.stats.throttled_calls.fetch_add(1, Ordering::Relaxed);
                    format!("throttled: {e}")
                }
                Err(CallError::Server(e)) => {
                    self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                    format!("server error: {e}")
                }
                Err(CallError::Other(e)) => {
                    self.stats.other_errors.fetch_add(1, Ordering::Relaxed);
                    e
                }
            };
            attempt += 1;
            if attempt > self.config.backpressure_after {
                self.stats
                    .backpressure_attempts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stream = %self.config.delivery_stream, attempt, waiting = waiting.len(), "Firehose still refuses records ({failure}); holding the pipeline and its checkpoints back");
            } else {
                tracing::debug!(stream = %self.config.delivery_stream, attempt, "PutRecordBatch: {failure}; retrying");
            }
            std::thread::sleep(self.backoff(attempt));
        }
        self.pending.bytes.clear();
        self.pending.ends.clear();
    }

    /// Exponential backoff with jitter: half to all of base × 2^attempt, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = Duration::from_millis(self.config.retry_base_ms)
            .saturating_mul(1 << attempt.min(16))
            .min(Duration::from_millis(self.config.max_backoff_ms));
        ceiling.mul_f64(rand::random_range(0.5..=1.0))
    }
}

impl<C: FirehoseClient> Sink for FirehoseSink<C> {
    fn write(&mut self, documents: &Encoded) -> Result<()> {
        for document in documents.iter() {
            self.push(document)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.send_pending();
        }
        Ok(())
    }

    fn max_document_bytes(&self) -> Option<usize> {
        Some(MAX_RECORD_BYTES)
    }
}

impl<C: FirehoseClient> DeadLetterSink for FirehoseSink<C> {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<()> {
        for letter in letters {
            let mut record = std::mem::take(&mut self.letter);
            record.clear();
            serde_json::to_writer(&mut record, &letter.truncated(MAX_RECORD_BYTES / 2))?;
            record.push(b'\n');
            let pushed = self.push(&record);
            self.letter = record;
            pushed?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Sink::flush(self)
    }
}

impl<C: FirehoseClient> Drop for FirehoseSink<C> {
    /// The sink's counters, once, when the pipeline is done with it.
    fn drop(&mut self) {
        let s = &self.stats;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        tracing::info!(
            stream = %self.config.delivery_stream,
            records = get(&s.records_accepted),
            bytes = get(&s.bytes_accepted),
            calls = get(&s.calls),
            entries_resent = get(&s.entries_failed),
            throttled_calls = get(&s.throttled_calls),
            server_errors = get(&s.server_errors),
            other_errors = get(&s.other_errors),
            backpressure_attempts = get(&s.backpressure_attempts),
            "firehose sink done"
        );
    }
}

/// [`FirehoseClient`] on AWS, with its own small runtime (the sink is called from the
/// pipeline's output thread, which is not async).
pub struct AwsFirehose {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_firehose::Client,
    stream: String,
}

impl AwsFirehose {
    /// Connects through aws-config's default chain.
    pub fn connect(stream: &str) -> Result<Self> {
        let (runtime, shared) = super::blocking_aws()?;
        Ok(AwsFirehose {
            client: aws_sdk_firehose::Client::new(&shared),
            runtime,
            stream: stream.into(),
        })
    }
}

impl FirehoseClient for AwsFirehose {
    fn put_record_batch(&mut self, records: &[&[u8]]) -> Result<Vec<Option<String>>, CallError> {
        use aws_sdk_firehose::error::ProvideErrorMetadata;
        use aws_sdk_firehose::primitives::Blob;
        use aws_sdk_firehose::types::Record;
        let entries = records
            .iter()
            .map(|r| Record::builder().data(Blob::new(r.to_vec())).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CallError::Other(e.to_string()))?;
        let call = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.stream)
            .set_records(Some(entries))
            .send();
        match self.runtime.block_on(call) {
            Ok(out) => Ok(out
                .request_responses()
                .iter()
                .map(|r| r.error_code().map(str::to_string))
                .collect()),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let code = e.code().unwrap_or_default().to_string();
                let text = format!("{}", aws_sdk_firehose::error::DisplayErrorContext(&e));
                Err(match (code.as_str(), status) {
                    ("ThrottlingException" | "ServiceUnavailableException", _) | (_, Some(503)) => {
                        CallError::Throttled(text)
                    }
                    (_, Some(500..=599)) => CallError::Server(text),
                    _ => CallError::Other(text),
                })
            }
        }
    }
}
