//! A small HTTP server with OpenSearch's documented `_bulk` semantics, for the OpenSearch
//! sink's tests (no OpenSearch server can run here): `POST /<index>/_bulk` with NDJSON
//! `index` actions, documents stored by `_id` (a second `index` of an id replaces the
//! first), one status per item. Faults no real cluster produces on demand:
//!
//! * the first `busy_requests` requests get a whole-request 429;
//! * an id in `flaky` gets an item-level 429 the first time it is sent;
//! * a document whose `user` is `unmappable` gets a 400 `mapper_parsing_exception`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let index = Arc::new(Mutex::new(Index::default()));
        let shared = index.clone();
        let faults = Arc::new(Mutex::new(faults));
        std::thread::spawn(move || {
            // A thread per connection: a client keeps idle connections open.
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (index, faults) = (shared.clone(), faults.clone());
                std::thread::spawn(move || serve(stream, &index, &faults));
            }
        });
        FakeOpenSearch { endpoint, index }
    }
}

/// Answers the requests of one connection (keep-alive) until it closes.
fn serve(stream: std::net::TcpStream, index: &Mutex<Index>, faults: &Mutex<BulkFaults>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, reply) =
            if request_line.starts_with("POST ") && request_line.contains("/_bulk") {
                bulk(&body, index, &mut faults.lock().unwrap())
            } else {
                (404, r#"{"error":"not found"}"#.to_string())
            };
        let _ = write!(
            writer,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
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
