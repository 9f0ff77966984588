//! A small HTTP server with OpenSearch's documented `_bulk` semantics, for the OpenSearch
//! sink's tests (no OpenSearch server can run here): `POST /<index>/_bulk` with NDJSON
//! `index` actions, documents stored by `_id` (a second `index` of an id replaces the
//! first), one status per item. Faults no real cluster produces on demand:
//!
//! * the first `busy_requests` requests get a whole-request 429;
//! * an id in `flaky` gets an item-level 429 the first time it is sent;
//! * a document whose `user` is `unmappable` gets a 400 `mapper_parsing_exception`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What the fake refuses.
#[derive(Debug, Clone, Default)]
pub struct BulkFaults {
    /// Requests (from the first) answered with a whole-request 429.
    pub busy_requests: usize,
    /// Ids answered with an item-level 429 the first time they come.
    pub flaky: HashSet<String>,
}

/// What the fake holds and saw.
#[derive(Debug, Default)]
pub struct Index {
    /// Stored documents by `_id`.
    pub documents: HashMap<String, serde_json::Value>,
    /// Every `index` item received, by id (so re-sends show).
    pub received: HashMap<String, u32>,
    /// Requests received.
    pub requests: usize,
    /// Item-level 429s given.
    pub items_refused_for_now: usize,
}

/// A running fake; it serves until the process ends.
pub struct FakeOpenSearch {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The index and the log, shared with the server thread.
    pub index: Arc<Mutex<Index>>,
}

impl FakeOpenSearch {
    /// Starts the server on a free loopback port.
    pub fn start(faults: BulkFaults) -> Self {
        let index = Arc::new(Mutex::new(Index::default()));
        let shared = index.clone();
        let faults = Mutex::new(faults);
        let endpoint = crate::fake_http::serve("application/json", move |request| {
            if request.line.starts_with("POST ") && request.line.contains("/_bulk") {
                bulk(&request.body, &shared, &mut faults.lock().unwrap())
            } else {
                (404, r#"{"error":"not found"}"#.to_string())
            }
        });
        FakeOpenSearch { endpoint, index }
    }
}

fn bulk(body: &[u8], index: &Mutex<Index>, faults: &mut BulkFaults) -> (u16, String) {
    let mut index = index.lock().unwrap();
    index.requests += 1;
    if index.requests <= faults.busy_requests {
        return (429, r#"{"error":"too many requests"}"#.into());
    }
    let lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut items = Vec::new();
    let mut errors = false;
    for pair in lines.chunks(2) {
        let action: serde_json::Value = serde_json::from_slice(pair[0]).unwrap();
        let document: serde_json::Value = serde_json::from_slice(pair[1]).unwrap();
        let id = action["index"]["_id"]
            .as_str()
            .unwrap_or("auto")
            .to_string();
        *index.received.entry(id.clone()).or_default() += 1;
        let item = if faults.flaky.remove(&id) {
            index.items_refused_for_now += 1;
            serde_json::json!({"index": {"_id": id, "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution (queue full)"}}})
        } else if document["user"] == "unmappable" {
            serde_json::json!({"index": {"_id": id, "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [user] of type [keyword]"}}})
        } else {
            let created = index.documents.insert(id.clone(), document).is_none();
            let (status, result) = if created {
                (201, "created")
            } else {
                (200, "updated")
            };
            serde_json::json!({"index": {"_id": id, "status": status, "result": result}})
        };
        errors |= item["index"]["status"].as_u64().unwrap() >= 300;
        items.push(item);
    }
    (
        200,
        serde_json::json!({"took": 1, "errors": errors, "items": items}).to_string(),
    )
}
