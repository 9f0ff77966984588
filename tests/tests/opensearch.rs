//! The OpenSearch sink against a server with the documented `_bulk` semantics
//! (`tests/src/fake_opensearch.rs`; no OpenSearch server can run here): documents sent
//! twice are stored once (`_id = point_id`), items refused for now are sent again alone,
//! mapping errors go to the dead letters with OpenSearch's reason, and nothing is
//! acknowledged before the server stored it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use waystream::engine::bindings::Records;
use waystream::sources::{Source, SourceBatch};
use waystream::{Pipeline, PipelineConfig};
use waystream_contract::document::point_id::point_id_hex;
use waystream_tests::fake_opensearch::{BulkFaults, FakeOpenSearch, Index};
use waystream_tests::*;

/// A config reading `input` through the standard chain into the fake's index `points`.
fn config(input: &std::path::Path, out: &std::path::Path, endpoint: &str) -> PipelineConfig {
    let text = pipeline_config_text(input, out, &Stage::standard_chain(), "batch_size = 50")
        .replace(
            "[sink]\ntype = \"ndjson\"",
            &format!(
                "[sink]\ntype = \"opensearch\"\nendpoint = {endpoint:?}\nindex = \"points\"\nauth = \"none\"\nmax_bulk_bytes = 20000\nretry_base_ms = 1\nmax_backoff_ms = 4\n[unused]\ntype = \"ndjson\""
            ),
        );
    // The [unused] table only swallows the NDJSON sink's path line; drop it again.
    let text = text
        .lines()
        .scan(false, |skipping, line| {
            if line == "[unused]" {
                *skipping = true;
                return Some(None);
            }
            if *skipping && line.starts_with('[') {
                *skipping = false;
            }
            Some((!*skipping).then_some(line))
        })
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    PipelineConfig::parse(&text, std::path::Path::new(".")).unwrap()
}

#[test]
fn resent_documents_are_stored_once_and_mapping_errors_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    for user in ["001", "002", "unmappable"] {
        let lines: Vec<String> = (0..120)
            .map(|i| plt_line(39.98 + f64::from(i) * 1e-4, 116.31, 100.0, i))
            .collect();
        write_plt(&input, user, "walk", &lines);
    }
    let flaky: HashSet<String> = [3, 40, 77]
        .iter()
        .map(|&seq| point_id_hex("001", "walk", seq))
        .collect();
    let server = FakeOpenSearch::start(BulkFaults {
        busy_requests: 2,
        flaky: flaky.clone(),
    });
    let config = config(&input, &dir.path().join("out"), &server.endpoint);
    // Two runs over the same input: the second is what a host sends again after a crash.
    for round in 0..2 {
        let summary = run(&config);
        assert!(summary.balanced(), "round {round}: {summary}");
        assert_eq!(summary.documents_out, 240, "round {round}: {summary}");
        assert_eq!(
            summary.dead_letters, 120,
            "round {round}: the unmappable user"
        );
    }
    let index = server.index.lock().unwrap();
    assert_eq!(index.documents.len(), 240, "each point stored once");
    let ids: HashSet<String> = ["001", "002"]
        .iter()
        .flat_map(|user| (0..120).map(move |seq| point_id_hex(user, "walk", seq)))
        .collect();
    assert_eq!(index.documents.keys().cloned().collect::<HashSet<_>>(), ids);
    assert!(
        ids.iter().all(|id| index.received[id] >= 2),
        "every point was sent twice"
    );
    assert_eq!(index.items_refused_for_now, 3);
    for id in &flaky {
        assert_eq!(
            index.received[id], 3,
            "a flaky item: refused, again, resent"
        );
    }
    let letters = read_ndjson(&dir.path().join("out/dead-letter.ndjson"));
    assert_eq!(
        letters.len(),
        120,
        "the second run replaced the first's file"
    );
    for letter in &letters {
        assert_eq!(letter["module"], "sink");
        assert_eq!(letter["user"], "unmappable");
        assert!(
            letter["cause"]
                .as_str()
                .unwrap()
                .contains("HTTP 400): mapper_parsing_exception: failed to parse field [user]"),
            "{letter}"
        );
        assert!(letter["point"]["point_id"].is_string());
    }
}

/// Batches of a [`StreamSource`] whose acknowledgement checks that the server stored every
/// one of the batch's points already.
struct CheckingSource {
    inner: StreamSource,
    batches: usize,
    index: Arc<Mutex<Index>>,
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
            .map(|(_, t, seq)| {
                let t = &next.batch.trajectories[t as usize];
                point_id_hex(&t.user, &t.id, seq)
            })
            .collect();
        let (index, acknowledged, ahead) = (
            self.index.clone(),
            self.acknowledged.clone(),
            self.ahead.clone(),
        );
        next.ack = Some(Box::new(move || {
            let index = index.lock().unwrap();
            let missing = ids
                .iter()
                .filter(|id| !index.documents.contains_key(*id))
                .count();
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
fn nothing_is_acknowledged_before_the_server_stored_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("unused")).unwrap();
    let flaky: HashSet<String> = (0..30)
        .map(|seq| point_id_hex("003", "stream-3", seq))
        .collect();
    let server = FakeOpenSearch::start(BulkFaults {
        busy_requests: 5,
        flaky,
    });
    let config = config(
        &dir.path().join("unused"),
        &dir.path().join("out"),
        &server.endpoint,
    );
    let (acknowledged, ahead) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let source = CheckingSource {
        inner: StreamSource::new(10, 200, Duration::from_millis(20)),
        batches: 30,
        index: server.index.clone(),
        acknowledged: acknowledged.clone(),
        ahead: ahead.clone(),
    };
    let summary = Pipeline::build(&config)
        .unwrap()
        .show_progress(false)
        .with_source(Box::new(source))
        .run()
        .unwrap();
    assert!(summary.balanced(), "{summary}");
    assert_eq!(
        acknowledged.load(Ordering::SeqCst),
        30,
        "every batch acknowledged"
    );
    assert_eq!(
        ahead.load(Ordering::SeqCst),
        0,
        "an acknowledgement ran ahead of the index"
    );
    assert_eq!(
        server.index.lock().unwrap().documents.len() as u64,
        summary.documents_out
    );
}
