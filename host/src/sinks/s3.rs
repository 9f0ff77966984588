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

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::DeadLetterSink;
use crate::dead_letter::DeadLetter;

/// `type = "s3"` in `[dead_letter]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3DeadLetterConfig {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// Address buckets by path (`http://host/bucket/key`), as local S3 servers need.
    #[serde(default)]
    pub path_style: bool,
}

/// Collected letters go out at this size even without a flush.
const OBJECT_BYTES: usize = 8 * 1024 * 1024;
/// Attempts to put one object before the sink reports an error (the pipeline then stops
/// without acknowledging, so the records are read again after a restart).
const ATTEMPTS: u32 = 10;

/// Writes dead letters to S3; see the module docs.
pub struct S3DeadLetters {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
    config: S3DeadLetterConfig,
    /// Unique per process: start time and pid.
    run: String,
    objects: u64,
    buffer: Vec<u8>,
}

impl S3DeadLetters {
    /// Connects through aws-config's default chain (`AWS_ENDPOINT_URL_S3` overrides the
    /// endpoint).
    pub fn open(config: &S3DeadLetterConfig) -> Result<Self> {
        let (runtime, shared) = super::blocking_aws()?;
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(config.path_style)
                .build(),
        );
        Ok(S3DeadLetters {
            runtime,
            client,
            config: config.clone(),
            run: format!(
                "{}-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
                std::process::id()
            ),
            objects: 0,
            buffer: Vec::new(),
        })
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
        let body = std::mem::take(&mut self.buffer);
        let mut attempt = 0;
        loop {
            let put = self
                .client
                .put_object()
                .bucket(&self.config.bucket)
                .key(&key)
                .content_type("application/x-ndjson")
                .body(body.clone().into())
                .send();
            match self.runtime.block_on(put) {
                Ok(_) => return Ok(()),
                Err(e) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    tracing::warn!(bucket = %self.config.bucket, %key, attempt, error = %aws_sdk_s3::error::DisplayErrorContext(&e), "putting dead letters failed; retrying");
                    std::thread::sleep(Duration::from_millis(100 << attempt.min(6)));
                }
                Err(e) => {
                    self.buffer = body;
                    return Err(e).with_context(|| {
                        format!("putting dead letters to s3://{}/{key}", self.config.bucket)
                    });
                }
            }
        }
    }
}

impl DeadLetterSink for S3DeadLetters {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<()> {
        for letter in letters {
            serde_json::to_writer(&mut self.buffer, letter)?;
            self.buffer.push(b'\n');
        }
        if self.buffer.len() >= OBJECT_BYTES {
            self.put_object()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.put_object()
    }
}
