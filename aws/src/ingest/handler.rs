//! The ingest Lambda's handler: S3 `ObjectCreated` events → Kinesis.
//!
//! Callable from the Lambda binary, from tests and from the CLI alike: it takes the
//! clients it needs and an [`S3Event`], and reads every created object whole (PLT files
//! are a few MB at most), plain or gzip. A key outside the Geolife layout is an error for
//! that object; the other objects of the event are still ingested, and the handler then
//! fails, naming every object it could not ingest, so Lambda retries the event (the
//! objects put already are put again: delivery is at-least-once, and `point_id` tells
//! the copies apart downstream).

use anyhow::{Context, Result};
use aws_lambda_events::event::s3::S3Event;

use super::objects::{point_lines, trajectory_of_key};
use super::producer::{Producer, PutReport, Run};
use crate::runtime::Aws;

/// What the handler talks to.
#[derive(Clone)]
pub struct Clients {
    /// Reads the created objects.
    pub s3: aws_sdk_s3::Client,
    /// Puts their lines into the stream.
    pub producer: Producer,
}

impl Clients {
    /// Clients from the shared SDK config (aws-config's default chain), putting into
    /// `stream`; `path_style` for S3-compatible servers that address buckets by path.
    pub fn from_env(stream: &str, path_style: bool) -> Result<Self> {
        let aws = Aws::shared()?;
        Ok(Clients {
            s3: aws.s3(path_style),
            producer: Producer::new(aws_sdk_kinesis::Client::new(aws.config()), stream),
        })
    }
}

/// Ingests every object an event reports created.
pub async fn handle_s3_event(clients: &Clients, event: &S3Event) -> Result<PutReport> {
    let mut report = PutReport::default();
    let mut failures = Vec::new();
    for record in &event.records {
        let created = record
            .event_name
            .as_deref()
            .is_some_and(|name| name.starts_with("ObjectCreated"));
        let (Some(bucket), Some(key)) = (&record.s3.bucket.name, &record.s3.object.key) else {
            continue;
        };
        if !created {
            tracing::debug!(%bucket, %key, event = ?record.event_name, "not an ObjectCreated event; ignored");
            continue;
        }
        let key = decode_key(key);
        match ingest_object(clients, bucket, &key).await {
            Ok(put) => {
                tracing::info!(%bucket, %key, lines = put.lines, records = put.records, "ingested");
                report.add(&put);
            }
            Err(e) => {
                tracing::error!(%bucket, %key, error = format!("{e:#}"), "could not ingest");
                failures.push(format!("s3://{bucket}/{key}: {e:#}"));
            }
        }
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} object(s) not ingested:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(report)
}

/// Reads one PLT object and puts its point lines into the stream.
pub async fn ingest_object(clients: &Clients, bucket: &str, key: &str) -> Result<PutReport> {
    let (user, trajectory) = trajectory_of_key(key)?;
    let object = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("getting s3://{bucket}/{key}"))?;
    let bytes = object
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{bucket}/{key}"))?
        .into_bytes();
    let lines = point_lines(&bytes)?;
    let run = Run {
        user: &user,
        trajectory: &trajectory,
        first_seq: 0,
        lines: &lines,
    };
    clients.producer.put(&[run]).await
}

/// S3 event keys are URL-encoded, with `+` for a space.
fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decode_key;

    #[test]
    fn event_keys_are_url_decoded() {
        assert_eq!(
            decode_key("Data/021/Trajectory/a+b%2Bc.plt"),
            "Data/021/Trajectory/a b+c.plt"
        );
        assert_eq!(decode_key("100%"), "100%");
        assert_eq!(decode_key("%zz"), "%zz");
    }
}
