//! A fake Firehose that injects the faults no local server produces: entries refused in
//! an accepted call (`FailedPutCount > 0`), throttled calls, bursts of 5xx. It records
//! every call, so tests can check what was sent, resent and accepted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use waystream_aws::firehose::{FirehoseClient, PutError};

/// What the fake refuses.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Each entry of a call fails with this probability.
    pub entry_failure_rate: f64,
    /// Every n-th call is throttled as a whole.
    pub throttle_every: Option<u64>,
    /// Calls with these numbers (from 1) fail with a 5xx.
    pub server_errors: std::ops::Range<u64>,
}

/// Everything the fake saw.
#[derive(Debug, Default)]
pub struct Log {
    /// Accepted records, in the order Firehose took them.
    pub accepted: Vec<Vec<u8>>,
    /// Per record: how often it was sent, and how often it was refused.
    pub sent: HashMap<Vec<u8>, (u32, u32)>,
    /// Per call: (records, bytes).
    pub calls: Vec<(usize, usize)>,
}

/// The fake client; clones share the log.
pub struct FakeFirehose {
    faults: Faults,
    rng: ChaCha8Rng,
    calls: u64,
    pub log: Arc<Mutex<Log>>,
}

impl FakeFirehose {
    pub fn new(faults: Faults, seed: u64) -> Self {
        FakeFirehose {
            faults,
            rng: ChaCha8Rng::seed_from_u64(seed),
            calls: 0,
            log: Arc::default(),
        }
    }
}

impl FirehoseClient for FakeFirehose {
    fn put_record_batch(&mut self, records: &[&[u8]]) -> Result<Vec<Option<String>>, PutError> {
        self.calls += 1;
        let mut log = self.log.lock().unwrap();
        log.calls
            .push((records.len(), records.iter().map(|r| r.len()).sum()));
        if self
            .faults
            .throttle_every
            .is_some_and(|n| self.calls.is_multiple_of(n))
        {
            return Err(PutError::Throttled("ThrottlingException (injected)".into()));
        }
        if self.faults.server_errors.contains(&self.calls) {
            return Err(PutError::Server("HTTP 500 (injected)".into()));
        }
        let mut codes = Vec::with_capacity(records.len());
        for record in records {
            let fail = self.rng.random_bool(self.faults.entry_failure_rate);
            let entry = log.sent.entry(record.to_vec()).or_default();
            entry.0 += 1;
            if fail {
                entry.1 += 1;
                codes.push(Some("ServiceUnavailableException".to_string()));
            } else {
                log.accepted.push(record.to_vec());
                codes.push(None);
            }
        }
        Ok(codes)
    }
}

/// The fake as a server on loopback, speaking Firehose's JSON protocol
/// (`PutRecordBatch` only), for hosts run as processes: point
/// `AWS_ENDPOINT_URL_FIREHOSE` at [`FirehoseServer::endpoint`]. Each entry fails with the
/// given probability (`FailedPutCount > 0` in an accepted call), as Firehose does under
/// load; what it accepts is kept in order, whatever the delivery stream.
pub struct FirehoseServer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub log: Arc<Mutex<Log>>,
}

impl FirehoseServer {
    pub fn start(entry_failure_rate: f64, seed: u64) -> Self {
        let fake = Mutex::new(FakeFirehose::new(
            Faults {
                entry_failure_rate,
                ..Faults::default()
            },
            seed,
        ));
        let log = fake.lock().unwrap().log.clone();
        let endpoint = crate::fake_http::serve("application/x-amz-json-1.1", move |request| {
            if request.header("x-amz-target") != Some("Firehose_20150804.PutRecordBatch") {
                return (400, r#"{"__type":"UnknownOperationException"}"#.into());
            }
            put_record_batch(&mut fake.lock().unwrap(), &request.body)
        });
        FirehoseServer { endpoint, log }
    }
}

/// A PutRecordBatch request through the fake, as Firehose answers it.
fn put_record_batch(fake: &mut FakeFirehose, body: &[u8]) -> (u16, String) {
    use base64::Engine;
    let request: serde_json::Value = serde_json::from_slice(body).unwrap();
    let records: Vec<Vec<u8>> = request["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let codes = fake.put_record_batch(&slices).unwrap();
    let failed = codes.iter().filter(|c| c.is_some()).count();
    let responses: Vec<serde_json::Value> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| match code {
            Some(code) => serde_json::json!({"ErrorCode": code, "ErrorMessage": "injected"}),
            None => serde_json::json!({"RecordId": i.to_string()}),
        })
        .collect();
    let reply = serde_json::json!({
        "FailedPutCount": failed,
        "Encrypted": false,
        "RequestResponses": responses,
    });
    (200, reply.to_string())
}
