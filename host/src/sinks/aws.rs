//! The sinks of `waystream-aws` as [`Sink`]s: they already take encoded records.

use anyhow::Result;
use waystream_aws::firehose::{FirehoseClient, MAX_RECORD_BYTES};
use waystream_aws::opensearch::BulkClient;
use waystream_contract::document::Encoded;

use super::{FirehoseSink, OpenSearchSink, S3DeadLetters, Sink};

impl<C: FirehoseClient> Sink for FirehoseSink<C> {
    fn write(&mut self, records: &Encoded) -> Result<()> {
        FirehoseSink::write(self, records)
    }

    fn flush(&mut self) -> Result<()> {
        FirehoseSink::flush(self)
    }

    fn stats(&self) -> Option<super::SinkStats> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = FirehoseSink::stats(self);
        Some(super::SinkStats {
            calls: s.calls.load(Relaxed),
            retried_records: s.entries_failed.load(Relaxed),
            throttled_calls: s.throttled_calls.load(Relaxed),
            backpressure_attempts: s.backpressure_attempts.load(Relaxed),
        })
    }

    fn max_record_bytes(&self) -> Option<usize> {
        Some(MAX_RECORD_BYTES)
    }
}

impl<C: BulkClient> Sink for OpenSearchSink<C> {
    fn write(&mut self, records: &Encoded) -> Result<()> {
        OpenSearchSink::write(self, records)
    }

    fn flush(&mut self) -> Result<()> {
        OpenSearchSink::flush(self)
    }

    fn take_refused(&mut self) -> Vec<(Vec<u8>, String)> {
        OpenSearchSink::take_refused(self)
            .into_iter()
            .map(|r| (r.document, r.reason))
            .collect()
    }
}

impl Sink for S3DeadLetters {
    fn write(&mut self, records: &Encoded) -> Result<()> {
        S3DeadLetters::write(self, records)
    }

    fn flush(&mut self) -> Result<()> {
        S3DeadLetters::flush(self)
    }
}
