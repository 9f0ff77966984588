//! Dead letters to S3: NDJSON objects, one per flush.
//!
//! ```toml
//! [dead_letter]
//! type = "s3"
//! bucket = "waystream-dead-letters"
//! prefix = "points/"                # optional
//! # path_style = false              # true for S3-compatible servers without virtual hosts
//! ```
//!
//! Letters collect in memory and go out as one object when the pipeline flushes (which it
//! does before acknowledging records to the source, so a checkpoint never passes a dead
//! letter that is not stored) or when 8 MiB have collected. Keys are
//! `<prefix>YYYY/MM/DD/HH/<run>-<n>.ndjson` (UTC): sorted by time, never overwriting
//! each other across hosts and restarts. Each line is a full dead letter: the original
//! record, the cause, the module and its digest, and the source position when known.
//!
//! A put is retried under [`retry::SINK_PUT`], like the Firehose sink's: never given up
//! while the pipeline runs (its records wait, unacknowledged), given up
//! [`retry::STOP_GRACE`] after a stop.

use anyhow::Result;
use serde::Deserialize;
use waystream_contract::document::Encoded;

use crate::retry::{self, Retrier, StopFlag};
use crate::runtime::Aws;

/// `type = "s3"` in `[dead_letter]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3DeadLetterConfig {
    /// The bucket letters go to.
    pub bucket: String,
    /// Prepended to every key.
    #[serde(default)]
    pub prefix: String,
    /// Address buckets by path (`http://host/bucket/key`), as local S3 servers need.
    #[serde(default)]
    pub path_style: bool,
}

/// Collected letters go out at this size even without a flush.
const OBJECT_BYTES: usize = 8 * 1024 * 1024;

/// Writes dead letters to S3; see the module docs.
pub struct S3DeadLetters {
    aws: &'static Aws,
    client: aws_sdk_s3::Client,
    config: S3DeadLetterConfig,
    /// Unique per process: start time and pid.
    run: String,
    objects: u64,
    buffer: Vec<u8>,
    stop: StopFlag,
}

impl S3DeadLetters {
    /// Connects through aws-config's default chain (`AWS_ENDPOINT_URL_S3` overrides the
    /// endpoint). `stop` is the pipeline's stop flag.
    pub fn open(config: &S3DeadLetterConfig, stop: StopFlag) -> Result<Self> {
        let aws = Aws::shared()?;
        Ok(S3DeadLetters {
            aws,
            client: aws.s3(config.path_style),
            config: config.clone(),
            run: format!(
                "{}-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
                std::process::id()
            ),
            objects: 0,
            buffer: Vec::new(),
            stop,
        })
    }

    /// Adds encoded letters (each ending in `\n`); puts an object once 8 MiB collected.
    pub fn write(&mut self, letters: &Encoded) -> Result<()> {
        self.buffer.extend_from_slice(&letters.bytes);
        if self.buffer.len() >= OBJECT_BYTES {
            self.put_object()?;
        }
        Ok(())
    }

    /// Puts what collected as one object; returns once S3 stored it.
    pub fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.put_object()
    }

    fn put_object(&mut self) -> Result<()> {
        let now = chrono::Utc::now();
        self.objects += 1;
        let key = format!(
            "{}{}/{}-{:06}.ndjson",
            self.config.prefix,
            now.format("%Y/%m/%d/%H"),
            self.run,
            self.objects
        );
        let mut retrier = Retrier::new(retry::SINK_PUT, Some(self.stop.clone()));
        loop {
            let put = self
                .client
                .put_object()
                .bucket(&self.config.bucket)
                .key(&key)
                .content_type("application/x-ndjson")
                .body(self.buffer.clone().into())
                .send();
            let error = match self.aws.block_on(put) {
                Ok(_) => {
                    self.buffer.clear();
                    return Ok(());
                }
                Err(e) => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            };
            let Some(wait) = retrier.failed() else {
                anyhow::bail!(
                    "putting dead letters to s3://{}/{key}: the pipeline is stopping and S3 still refuses ({error}); they are not acknowledged",
                    self.config.bucket
                );
            };
            tracing::warn!(bucket = %self.config.bucket, %key, attempt = retrier.failures(), %error, "putting dead letters failed; retrying");
            std::thread::sleep(wait);
        }
    }
}
