//! The Firehose sink against a fake client that injects what no server produces: entries
//! refused in an accepted call, throttling, 5xx bursts. Nothing may be lost, only refused
//! entries may be sent again, calls stay within Firehose's limits, and the pipeline
//! acknowledges a batch to its source only after Firehose accepted all of it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use waystream::engine::bindings::Records;
use waystream::sinks::{FirehoseConfig, FirehoseSink, Sink};
use waystream::sources::{Source, SourceBatch};
use waystream::{Pipeline, PipelineConfig};
use waystream_aws::firehose::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES};
use waystream_contract::document::Encoded;
use waystream_contract::document::point_id::point_id_hex;
use waystream_tests::fake_firehose::{FakeFirehose, Faults, Log};
use waystream_tests::{Stage, StreamSource, pipeline_config, plt_line, write_plt};

fn firehose_config() -> FirehoseConfig {
    FirehoseConfig {
        delivery_stream: "fake".into(),
        retry_base_ms: 1,
        max_backoff_ms: 4,
        backpressure_after: 3,
    }
}

/// `n` documents of about `size` bytes each (with their `\n`), distinct by `tag` and index.
fn documents(tag: usize, n: usize, size: usize) -> Encoded {
    let mut encoded = Encoded::default();
    for i in 0..n {
        let head = format!("{{\"tag\":{tag},\"seq\":{i},\"pad\":\"");
        let pad = size.saturating_sub(head.len() + 3);
        encoded.bytes.extend_from_slice(head.as_bytes());
        encoded.bytes.extend(std::iter::repeat_n(b'x', pad));
        encoded.bytes.extend_from_slice(b"\"}\n");
        encoded.ends.push(encoded.bytes.len());
    }
    encoded
}

/// Writes `batches` through a sink on a fake with `faults`, flushes, and checks that
/// every document was accepted exactly once, only refused entries were resent, and no
/// call broke the limits. Returns the log.
fn send_through(faults: Faults, batches: &[Encoded]) -> Log {
    let fake = FakeFirehose::new(faults, 7);
    let log = fake.log.clone();
    let mut sink = FirehoseSink::new(fake, firehose_config(), Default::default());
    let stats = sink.stats();
    for batch in batches {
        Sink::write(&mut sink, batch).unwrap();
    }
    Sink::flush(&mut sink).unwrap();
    drop(sink);
    let log = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    let all: Vec<&[u8]> = batches.iter().flat_map(|b| b.iter()).collect();
    let accepted: HashSet<&[u8]> = log.accepted.iter().map(Vec::as_slice).collect();
    assert_eq!(
        log.accepted.len(),
        all.len(),
        "each document accepted exactly once"
    );
    assert!(
        all.iter().all(|d| accepted.contains(d)),
        "a document was lost"
    );
    for (record, (sent, refused)) in &log.sent {
        assert_eq!(
            *sent,
            refused + 1,
            "{} sent {sent} times, refused {refused}",
            String::from_utf8_lossy(&record[..20.min(record.len())])
        );
    }
    for &(records, bytes) in &log.calls {
        assert!(
            records <= MAX_BATCH_RECORDS && bytes <= MAX_BATCH_BYTES,
            "a call of {records} records, {bytes} bytes"
        );
    }
    let refused: u32 = log.sent.values().map(|(_, r)| r).sum();
    assert_eq!(stats.entries_failed.load(Ordering::Relaxed), refused as u64);
    assert_eq!(
        stats.records_accepted.load(Ordering::Relaxed),
        all.len() as u64
    );
    log
}

#[test]
fn partial_failures_resend_only_the_refused_entries_and_lose_nothing() {
    for rate in [0.1, 0.5] {
        let batches: Vec<Encoded> = (0..6).map(|b| documents(b, 700, 200)).collect();
        let log = send_through(
            Faults {
                entry_failure_rate: rate,
                ..Faults::default()
            },
            &batches,
        );
        let refused: u32 = log.sent.values().map(|(_, r)| r).sum();
        eprintln!(
            "failure rate {rate}: {} calls, {refused} entries refused and resent",
            log.calls.len()
        );
        assert!(refused > 0);
    }
}

#[test]
fn throttling_and_a_burst_of_server_errors_are_retried_without_loss() {
    let faults = Faults {
        entry_failure_rate: 0.05,
        throttle_every: Some(3),
        server_errors: 2..7,
    };
    let log = send_through(faults, &[documents(0, 2600, 150)]);
    assert!(
        log.calls.len() > 6 + 2,
        "the faults cost calls: {}",
        log.calls.len()
    );
}

#[test]
fn a_document_over_1000_kib_is_refused_before_any_call() {
    let fake = FakeFirehose::new(Faults::default(), 1);
    let log = fake.log.clone();
    let mut sink = FirehoseSink::new(fake, firehose_config(), Default::default());
    // The pipeline asks first, and dead-letters what is larger (see the test below).
    assert_eq!(sink.max_record_bytes(), Some(1000 * 1024));
    let error = Sink::write(&mut sink, &documents(0, 1, MAX_RECORD_BYTES + 1)).unwrap_err();
    assert!(error.to_string().contains("over Firehose's"), "{error}");
    Sink::flush(&mut sink).unwrap();
    assert!(log.lock().unwrap().calls.is_empty(), "nothing was sent");
}

#[test]
fn calls_are_cut_at_4_mib_and_a_1000_kib_document_fits() {
    let log = send_through(
        Faults::default(),
        &[documents(0, 40, 300_000), documents(1, 3, MAX_RECORD_BYTES)],
    );
    let largest = log.calls.iter().map(|&(_, bytes)| bytes).max().unwrap();
    assert!(
        largest > 3 * 1024 * 1024,
        "calls are filled up to the limit: {largest}"
    );
}

/// A sink that keeps documents and takes none over `limit` bytes.
struct SmallSink {
    limit: usize,
    kept: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Sink for SmallSink {
    fn write(&mut self, documents: &Encoded) -> anyhow::Result<()> {
        for d in documents.iter() {
            assert!(
                d.len() <= self.limit,
                "the pipeline handed over a document over the limit"
            );
            self.kept.lock().unwrap().push(d.to_vec());
        }
        Ok(())
    }
    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    fn max_record_bytes(&self) -> Option<usize> {
        Some(self.limit)
    }
}

fn small_input(dir: &std::path::Path) -> PipelineConfig {
    let input = dir.join("in");
    let lines: Vec<String> = (0..200)
        .map(|i| plt_line(39.98 + i as f64 * 0.0001, 116.31, 100.0, i))
        .collect();
    write_plt(&input, "001", "walk", &lines);
    pipeline_config(
        &input,
        &dir.join("out"),
        &Stage::standard_chain(),
        "batch_size = 64",
    )
}

#[test]
fn documents_over_the_sink_limit_go_to_the_dead_letter_sink() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_input(dir.path());
    // First learn the documents' sizes, then set the limit between them.
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = SmallSink {
        limit: usize::MAX,
        kept: kept.clone(),
    };
    Pipeline::build(&config)
        .unwrap()
        .show_progress(false)
        .with_sink(Box::new(sink))
        .run()
        .unwrap();
    let sizes: Vec<usize> = kept.lock().unwrap().iter().map(Vec::len).collect();
    let limit = (sizes.iter().min().unwrap() + sizes.iter().max().unwrap()) / 2;
    let over = sizes.iter().filter(|&&s| s > limit).count();
    assert!(over > 0 && over < sizes.len());

    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = SmallSink {
        limit,
        kept: kept.clone(),
    };
    let summary = Pipeline::build(&config)
        .unwrap()
        .show_progress(false)
        .with_sink(Box::new(sink))
        .run()
        .unwrap();
    assert!(summary.balanced(), "{summary}");
    assert_eq!(kept.lock().unwrap().len(), sizes.len() - over);
    let letters = waystream_tests::read_ndjson(&dir.path().join("out/dead-letter.ndjson"));
    assert_eq!(letters.len(), over);
    for letter in &letters {
        assert_eq!(letter["module"], "sink");
        assert!(
            letter["cause"]
                .as_str()
                .unwrap()
                .contains(&format!("limit of {limit}")),
            "{letter}"
        );
        assert!(
            letter["point"]["point_id"].is_string(),
            "the document travels with the letter"
        );
    }
}

/// Batches of a [`StreamSource`] that check, when acknowledged, that the fake Firehose
/// already accepted every one of their documents.
struct CheckingSource {
    inner: StreamSource,
    batches: usize,
    log: Arc<Mutex<Log>>,
    acknowledged: Arc<AtomicU64>,
    ahead: Arc<AtomicU64>,
}

impl Source for CheckingSource {
    fn next_batch(&mut self) -> anyhow::Result<Option<SourceBatch>> {
        if self.batches == 0 {
            return Ok(None);
        }
        self.batches -= 1;
        let Some(mut next) = self.inner.next_batch()? else {
            return Ok(None);
        };
        let Records::Lines(raw) = &next.batch.records else {
            unreachable!()
        };
        let ids: Vec<String> = raw
            .iter()
            .map(|(_, trajectory, seq)| {
                let t = &next.batch.trajectories[trajectory as usize];
                point_id_hex(&t.user, &t.id, seq)
            })
            .collect();
        let (log, acknowledged, ahead) = (
            self.log.clone(),
            self.acknowledged.clone(),
            self.ahead.clone(),
        );
        next.ack = Some(Box::new(move || {
            let log = log.lock().unwrap();
            let accepted: HashSet<String> = log
                .accepted
                .iter()
                .map(|d| {
                    serde_json::from_slice::<serde_json::Value>(d).unwrap()["point_id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            let missing = ids.iter().filter(|id| !accepted.contains(*id)).count();
            acknowledged.fetch_add(1, Ordering::SeqCst);
            ahead.fetch_add(missing as u64, Ordering::SeqCst);
        }));
        Ok(Some(next))
    }
    fn total_bytes(&self) -> Option<u64> {
        None
    }
    fn bytes_read(&self) -> u64 {
        0
    }
}

#[test]
fn batches_are_acknowledged_only_after_firehose_accepted_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_input(dir.path());
    let faults = Faults {
        entry_failure_rate: 0.3,
        throttle_every: Some(4),
        server_errors: 3..6,
    };
    let fake = FakeFirehose::new(faults, 11);
    let log = fake.log.clone();
    let (acknowledged, ahead) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let source = CheckingSource {
        inner: StreamSource::new(12, 300, Duration::from_millis(20)),
        batches: 40,
        log: log.clone(),
        acknowledged: acknowledged.clone(),
        ahead: ahead.clone(),
    };
    let summary = Pipeline::build(&config)
        .unwrap()
        .show_progress(false)
        .with_source(Box::new(source))
        .with_sink(Box::new(FirehoseSink::new(
            fake,
            firehose_config(),
            Default::default(),
        )))
        .run()
        .unwrap();
    assert!(summary.balanced(), "{summary}");
    assert_eq!(
        acknowledged.load(Ordering::SeqCst),
        40,
        "every batch acknowledged"
    );
    assert_eq!(
        ahead.load(Ordering::SeqCst),
        0,
        "an acknowledgement ran ahead of Firehose"
    );
    let log = log.lock().unwrap();
    let unique: HashMap<&[u8], ()> = log.accepted.iter().map(|d| (d.as_slice(), ())).collect();
    assert_eq!(unique.len() as u64, summary.documents_out);
    assert_eq!(
        log.accepted.len() as u64,
        summary.documents_out,
        "nothing accepted twice"
    );
}

#[test]
fn sigterm_while_firehose_refuses_everything_ends_the_run_and_acknowledges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_input(dir.path());
    let refuse_all = Faults {
        entry_failure_rate: 1.0,
        ..Faults::default()
    };
    let fake = FakeFirehose::new(refuse_all, 3);
    let log = fake.log.clone();
    let (acknowledged, ahead) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let source = CheckingSource {
        inner: StreamSource::new(12, 300, Duration::from_millis(20)),
        batches: 1_000,
        log: log.clone(),
        acknowledged: acknowledged.clone(),
        ahead,
    };
    let pipeline = Pipeline::build(&config)
        .unwrap()
        .show_progress(false)
        .with_source(Box::new(source));
    // The sink sees the pipeline's stop flag, as `waystream run`'s SIGTERM handler sets it.
    let stop = pipeline.stop_flag();
    let sink = FirehoseSink::new(fake, firehose_config(), stop.clone());
    let run = std::thread::spawn(move || pipeline.with_sink(Box::new(sink)).run());
    // Wait until the sink is stuck retrying: Firehose has refused something.
    let started = std::time::Instant::now();
    while log.lock().unwrap().calls.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no call to Firehose"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let signalled = std::time::Instant::now();
    stop.store(true, Ordering::SeqCst);
    let result = run.join().unwrap();
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the run took {took:?} to stop"
    );
    let error = format!("{:#}", result.err().expect("the run ends with an error"));
    assert!(error.contains("not acknowledged"), "{error}");
    assert!(log.lock().unwrap().accepted.is_empty());
    assert_eq!(
        acknowledged.load(Ordering::SeqCst),
        0,
        "nothing Firehose refused was acknowledged"
    );
}
