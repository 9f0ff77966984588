//! The Firehose sink: documents to an Amazon Data Firehose delivery stream.
//!
//! Configured by `[sink] type = "firehose"` in a pipeline config; its keys and their
//! defaults are in the README's config reference, the one place they are written down
//! (a test checks it against the config types).
//!
//! Each record is one document ending in `\n`: Firehose's OpenSearch destination needs
//! exactly one single-line JSON document per record, and its S3 destination concatenates
//! records with no delimiter. Records go out with PutRecordBatch, cut at 500 records or
//! 4 MiB per call; a document over 1,000 KiB cannot be put at all, so the pipeline sends
//! it to the dead-letter sink instead.
//!
//! Nothing is dropped. A call can fail as a whole (throttling, a 5xx, a network error) or
//! in part (`FailedPutCount > 0` in an HTTP 200: only the entries with an error code are
//! sent again); either is retried under [`retry::SINK_PUT`]: with backoff and jitter, and
//! without giving up while the pipeline runs. [`FirehoseSink::flush`] does not return
//! until Firehose accepted everything, so the source's checkpoint stays behind
//! (back-pressure) and the pipeline stops reading until Firehose takes records again.
//! Once the pipeline is stopping (SIGTERM), the sink gives up [`retry::STOP_GRACE`] later
//! with an error: the records it holds are not acknowledged, and a restart reads them
//! again.
//!
//! The calls go through [`FirehoseClient`], implemented for AWS by [`AwsFirehose`] and
//! by fakes in tests, which inject the faults no server produces.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use waystream_contract::document::Encoded;

use crate::retry::{self, Backoff, Policy, Retrier, StopFlag};
use crate::runtime::Aws;

/// Records per PutRecordBatch call, at most.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Bytes per PutRecordBatch call, at most.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Bytes per record, at most.
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;

/// `type = "firehose"` (in `[sink]` or `[dead_letter]`).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FirehoseConfig {
    /// The delivery stream's name.
    pub delivery_stream: String,
    /// The first retry waits about this long; each further one twice as long (the
    /// backoff of [`retry::SINK_PUT`], made shorter or longer).
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
pub enum PutError {
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
    fn put_record_batch(&mut self, records: &[&[u8]]) -> Result<Vec<Option<String>>, PutError>;
}

/// What the sink did, for logs, the summary and tests.
#[derive(Debug, Default)]
pub struct FirehoseStats {
    /// Records Firehose accepted.
    pub records_accepted: AtomicU64,
    /// Bytes of the records Firehose accepted.
    pub bytes_accepted: AtomicU64,
    /// PutRecordBatch calls made.
    pub calls: AtomicU64,
    /// Entries Firehose refused in an accepted call (and that were sent again).
    pub entries_failed: AtomicU64,
    /// Calls refused whole as throttled.
    pub throttled_calls: AtomicU64,
    /// Calls refused whole with a 5xx.
    pub server_errors: AtomicU64,
    /// Calls that failed otherwise (network, 4xx).
    pub other_errors: AtomicU64,
    /// Attempts made past `backpressure_after`.
    pub backpressure_attempts: AtomicU64,
}

/// Sends records (documents or dead letters, each ending in `\n`) to a delivery stream;
/// see the module docs.
pub struct FirehoseSink<C: FirehoseClient> {
    client: C,
    config: FirehoseConfig,
    /// Records waiting for the next call, back to back, and where each ends.
    pending: Encoded,
    stats: Arc<FirehoseStats>,
    stop: StopFlag,
}

impl FirehoseSink<AwsFirehose> {
    /// A sink on AWS (aws-config's default chain; `AWS_ENDPOINT_URL_FIREHOSE` overrides
    /// the endpoint). `stop` is the pipeline's stop flag.
    pub fn open(config: &FirehoseConfig, stop: StopFlag) -> Result<Self> {
        let client = AwsFirehose::connect(&config.delivery_stream)
            .with_context(|| format!("firehose sink {}", config.delivery_stream))?;
        Ok(FirehoseSink::new(client, config.clone(), stop))
    }
}

impl<C: FirehoseClient> FirehoseSink<C> {
    /// A sink calling `client`; retrying stops [`retry::STOP_GRACE`] after `stop` is set.
    pub fn new(client: C, config: FirehoseConfig, stop: StopFlag) -> Self {
        FirehoseSink {
            client,
            config,
            pending: Encoded::default(),
            stats: Arc::default(),
            stop,
        }
    }

    /// Queues `records` (each ending in `\n`, at most [`MAX_RECORD_BYTES`]), sending
    /// calls as they fill up.
    pub fn write(&mut self, records: &Encoded) -> Result<()> {
        for record in records.iter() {
            self.push(record)?;
        }
        Ok(())
    }

    /// Sends what is queued; returns once Firehose accepted every record written so far.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.send_pending()
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
            self.send_pending()?;
        }
        self.pending.push(record);
        Ok(())
    }

    /// Sends the queued records, retrying until Firehose accepted all of them (or the
    /// pipeline stops, which is an error: the records are not acknowledged).
    fn send_pending(&mut self) -> Result<()> {
        let records: Vec<&[u8]> = self.pending.iter().collect();
        let mut waiting: Vec<usize> = (0..records.len()).collect();
        let policy = Policy {
            backoff: Backoff {
                base: Duration::from_millis(self.config.retry_base_ms),
                max: Duration::from_millis(self.config.max_backoff_ms),
            },
            ..retry::SINK_PUT
        };
        let mut retrier = Retrier::new(policy, Some(self.stop.clone()));
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
                Err(PutError::Throttled(e)) => {
                    self.stats.throttled_calls.fetch_add(1, Ordering::Relaxed);
                    format!("throttled: {e}")
                }
                Err(PutError::Server(e)) => {
                    self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                    format!("server error: {e}")
                }
                Err(PutError::Other(e)) => {
                    self.stats.other_errors.fetch_add(1, Ordering::Relaxed);
                    e
                }
            };
            let Some(wait) = retrier.failed() else {
                anyhow::bail!(
                    "firehose {}: the pipeline is stopping and Firehose still refuses {} records ({failure}); they are not acknowledged and will be read again",
                    self.config.delivery_stream,
                    waiting.len()
                );
            };
            let attempt = retrier.failures();
            if attempt > self.config.backpressure_after {
                self.stats
                    .backpressure_attempts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stream = %self.config.delivery_stream, attempt, waiting = waiting.len(), "Firehose still refuses records ({failure}); holding the pipeline and its checkpoints back");
            } else {
                tracing::debug!(stream = %self.config.delivery_stream, attempt, "PutRecordBatch: {failure}; retrying");
            }
            std::thread::sleep(wait);
        }
        self.pending.clear();
        Ok(())
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

/// [`FirehoseClient`] on AWS, through the shared runtime (the sink is called from the
/// pipeline's output thread, which is not async).
pub struct AwsFirehose {
    aws: &'static Aws,
    client: aws_sdk_firehose::Client,
    stream: String,
}

impl AwsFirehose {
    /// Connects through aws-config's default chain.
    pub fn connect(stream: &str) -> Result<Self> {
        let aws = Aws::shared()?;
        Ok(AwsFirehose {
            aws,
            client: aws_sdk_firehose::Client::new(aws.config()),
            stream: stream.into(),
        })
    }
}

impl FirehoseClient for AwsFirehose {
    fn put_record_batch(&mut self, records: &[&[u8]]) -> Result<Vec<Option<String>>, PutError> {
        use aws_sdk_firehose::error::ProvideErrorMetadata;
        use aws_sdk_firehose::primitives::Blob;
        use aws_sdk_firehose::types::Record;
        let entries = records
            .iter()
            .map(|r| Record::builder().data(Blob::new(r.to_vec())).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PutError::Other(e.to_string()))?;
        let call = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.stream)
            .set_records(Some(entries))
            .send();
        match self.aws.block_on(call) {
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
                        PutError::Throttled(text)
                    }
                    (_, Some(500..=599)) => PutError::Server(text),
                    _ => PutError::Other(text),
                })
            }
        }
    }
}
