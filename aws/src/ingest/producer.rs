//! Putting runs of point lines into Kinesis as KPL aggregates, in order per trajectory.
//!
//! Each run (consecutive lines of one trajectory) becomes aggregates of at most
//! [`MAX_AGGREGATE_BYTES`]. A PutRecords call carries the *next* aggregate of up to 500
//! trajectories (and ≤ 5 MiB), never two of one trajectory: PutRecords does not keep the
//! order of records in a call, and a refused entry is resent later, so sending one
//! aggregate per trajectory per call is what keeps a trajectory in order on its shard.

use std::collections::VecDeque;

use anyhow::{Result, bail};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use waystream_contract::kinesis as lines;

use crate::retry::{self, Retrier};
use waystream_contract::aggregation;

/// Aggregate data plus partition key stay under Kinesis's 1 MiB record limit.
pub const MAX_AGGREGATE_BYTES: usize = 1_000_000;
const MAX_CALL_RECORDS: usize = 500;
const MAX_CALL_BYTES: usize = 5 * 1024 * 1024;
/// Per user record inside an aggregate: protobuf tags, lengths and the key index.
const PER_RECORD_OVERHEAD: usize = 16;

/// Consecutive lines of one trajectory, the first with `seq = first_seq`.
pub struct Run<'a> {
    /// The user of the lines.
    pub user: &'a str,
    /// Their trajectory.
    pub trajectory: &'a str,
    /// The first line's `seq`; the others follow.
    pub first_seq: u32,
    /// The point lines.
    pub lines: &'a [Vec<u8>],
}

/// What a producer put.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PutReport {
    /// Point lines (user records).
    pub lines: u64,
    /// Kinesis records (aggregates).
    pub records: u64,
    /// PutRecords calls.
    pub calls: u64,
    /// Entries Kinesis refused and that were sent again.
    pub resent: u64,
}

impl PutReport {
    /// Adds `other` to this report.
    pub fn add(&mut self, other: &PutReport) {
        self.lines += other.lines;
        self.records += other.records;
        self.calls += other.calls;
        self.resent += other.resent;
    }
}

/// Puts runs into one stream.
#[derive(Clone)]
pub struct Producer {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

/// One trajectory's aggregates waiting to go, and its partition key.
struct Queue {
    partition_key: String,
    aggregates: VecDeque<(Vec<u8>, u64)>,
}

impl Producer {
    /// `stream` is a name or an ARN.
    pub fn new(client: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        Producer {
            client,
            stream: stream.into(),
        }
    }

    /// Puts every run, each in order; returns when Kinesis accepted all of them.
    pub async fn put(&self, runs: &[Run<'_>]) -> Result<PutReport> {
        let mut report = PutReport::default();
        let mut queues: Vec<Queue> = runs
            .iter()
            .filter(|run| !run.lines.is_empty())
            .map(|run| Queue {
                partition_key: lines::partition_key(run.user, run.trajectory),
                aggregates: aggregates_of(run).into(),
            })
            .collect();
        // Counts calls that put nothing; a call that puts something starts it again.
        let mut fruitless = Retrier::new(retry::STREAM_PUT, None);
        while queues.iter().any(|q| !q.aggregates.is_empty()) {
            // The head aggregate of as many trajectories as fit in one call.
            let mut picked = Vec::new();
            let mut bytes = 0;
            for (i, queue) in queues.iter().enumerate() {
                let Some((data, _)) = queue.aggregates.front() else {
                    continue;
                };
                let size = data.len() + queue.partition_key.len();
                if picked.len() == MAX_CALL_RECORDS || bytes + size > MAX_CALL_BYTES {
                    break;
                }
                bytes += size;
                picked.push(i);
            }
            let entries = picked
                .iter()
                .map(|&i| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&queues[i].partition_key)
                        .data(Blob::new(queues[i].aggregates[0].0.clone()))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            report.calls += 1;
            let request = self.client.put_records().set_records(Some(entries));
            let request = if self.stream.starts_with("arn:") {
                request.stream_arn(&self.stream)
            } else {
                request.stream_name(&self.stream)
            };
            let accepted: Vec<bool> = match request.send().await {
                Ok(out) => out
                    .records()
                    .iter()
                    .map(|r| r.error_code().is_none())
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_kinesis::error::DisplayErrorContext(&e), "PutRecords failed; retrying");
                    vec![false; picked.len()]
                }
            };
            let mut any = false;
            for (&i, ok) in picked
                .iter()
                .zip(accepted.iter().chain(std::iter::repeat(&false)))
            {
                if *ok {
                    let (_, count) = queues[i].aggregates.pop_front().unwrap_or_default();
                    report.records += 1;
                    report.lines += count;
                    any = true;
                } else {
                    report.resent += 1;
                }
            }
            if any {
                fruitless.succeeded();
            }
            if accepted.iter().any(|ok| !ok) {
                let Some(wait) = fruitless.failed() else {
                    bail!(
                        "Kinesis accepted nothing in {} calls in a row",
                        fruitless.failures()
                    );
                };
                tokio::time::sleep(wait).await;
            }
        }
        Ok(report)
    }
}

/// A run's lines as KPL aggregates of at most [`MAX_AGGREGATE_BYTES`], with how many
/// lines each holds.
fn aggregates_of(run: &Run<'_>) -> Vec<(Vec<u8>, u64)> {
    let key = lines::partition_key(run.user, run.trajectory);
    let mut out = Vec::new();
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut size = key.len() + aggregation::MAGIC.len() + 16 + 16;
    let flush = |records: &mut Vec<Vec<u8>>, out: &mut Vec<(Vec<u8>, u64)>| {
        if !records.is_empty() {
            let data = aggregation::aggregate(records.iter().map(|r| (key.as_str(), r.as_slice())));
            out.push((data, records.len() as u64));
            records.clear();
        }
    };
    for (i, line) in run.lines.iter().enumerate() {
        let mut data = Vec::with_capacity(line.len() + 12);
        lines::encode(run.first_seq + i as u32, line, &mut data);
        let added = data.len() + PER_RECORD_OVERHEAD;
        if size + added > MAX_AGGREGATE_BYTES {
            flush(&mut records, &mut out);
            size = key.len() + aggregation::MAGIC.len() + 16 + 16;
        }
        size += added;
        records.push(data);
    }
    flush(&mut records, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use waystream_contract::aggregation::{Deaggregated, deaggregate};

    #[test]
    fn aggregates_stay_under_the_limit_and_keep_every_line_in_order() {
        let lines: Vec<Vec<u8>> = (0..40_000)
            .map(|i| format!("39.9{i:05},116.3,0,100,39744.1,2008-10-23,02:53:04").into_bytes())
            .collect();
        let run = Run {
            user: "021",
            trajectory: "20081023025304",
            first_seq: 5,
            lines: &lines,
        };
        let aggregates = aggregates_of(&run);
        assert!(
            aggregates.len() > 1,
            "40,000 lines do not fit one aggregate"
        );
        let mut seq = 5;
        for (data, count) in &aggregates {
            assert!(data.len() + 18 <= 1024 * 1024, "{}", data.len());
            let Deaggregated::Records(records) = deaggregate(data) else {
                panic!("not an aggregate")
            };
            assert_eq!(records.len() as u64, *count);
            for record in records {
                let line = lines::decode(&record.partition_key, &record.data).unwrap();
                assert_eq!(
                    (line.seq, line.line),
                    (seq, lines[(seq - 5) as usize].as_slice())
                );
                seq += 1;
            }
        }
        assert_eq!(seq, 40_005);
    }
}
