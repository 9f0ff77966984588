//! Helpers for the tests that run against local AWS servers (kinesis-mock, moto server),
//! which `cargo xtask test` installs, starts on loopback and points the tests at through
//! `AWS_ENDPOINT_URL_<SERVICE>`; and for running `waystream` hosts as processes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use waystream_contract::kinesis as lines;

use crate::{Stage, config_text_with_source, read_ndjson};

/// Clients for the local servers, with the shared AWS runtime to drive them from plain
/// tests.
pub struct LocalAws {
    pub runtime: &'static waystream_aws::Aws,
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Path-style, as local servers need.
    pub s3: aws_sdk_s3::Client,
    pub firehose: aws_sdk_firehose::Client,
}

/// The local servers `cargo xtask test` starts (kinesis-mock and moto server). The tests
/// that need them are `#[ignore]`d for a plain `cargo test`; run without the servers, they
/// fail and say how to run them, rather than pass without testing anything.
pub fn local_aws(test: &str) -> LocalAws {
    assert!(
        std::env::var_os("WAYSTREAM_LOCAL_AWS").is_some(),
        "{test} needs the local AWS servers (kinesis-mock, moto server): run it through `cargo xtask test`, which starts them"
    );
    let runtime = waystream_aws::Aws::shared().expect("the AWS runtime");
    let shared = runtime.config();
    LocalAws {
        kinesis: aws_sdk_kinesis::Client::new(shared),
        dynamodb: aws_sdk_dynamodb::Client::new(shared),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(shared)
                .force_path_style(true)
                .build(),
        ),
        firehose: aws_sdk_firehose::Client::new(shared),
        runtime,
    }
}

/// `name` with a suffix unique to this run, so tests never meet another run's streams.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{:x}", nanos % (1 << 40))
}

/// A point record as the Kinesis source expects it: (partition key, data).
pub type PointRecord = (String, Vec<u8>);

/// `trajectories` × `points` synthetic point records, trajectory by trajectory; users
/// are `u<i % 5>`, trajectories `<name>-<i>`.
pub fn point_records(name: &str, trajectories: usize, points: u32) -> Vec<PointRecord> {
    let mut records = Vec::new();
    for t in 0..trajectories {
        let key = lines::partition_key(&format!("u{}", t % 5), &format!("{name}-{t}"));
        for seq in 0..points {
            let line = crate::plt_line(
                39.9 + t as f64 * 0.001,
                116.3 + seq as f64 * 0.0002,
                100.0,
                seq,
            );
            let mut data = Vec::new();
            lines::encode(seq, line.as_bytes(), &mut data);
            records.push((key.clone(), data));
        }
    }
    records
}

/// Round-robin over trajectories: how a live stream interleaves them (each trajectory's
/// records stay in order).
pub fn interleave(records: &[PointRecord]) -> Vec<PointRecord> {
    let mut by_key: BTreeMap<&str, Vec<&PointRecord>> = BTreeMap::new();
    for record in records {
        by_key.entry(&record.0).or_default().push(record);
    }
    let longest = by_key.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| {
            by_key
                .values()
                .filter_map(move |v| v.get(i).map(|r| (*r).clone()))
        })
        .collect()
}

/// Where a put record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub shard: String,
    pub sequence: String,
}

impl LocalAws {
    /// The text of every object in `bucket`, by object key.
    pub fn objects(&self, bucket: &str) -> HashMap<String, String> {
        self.runtime.block_on(async {
            let mut out = HashMap::new();
            let listed = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .send()
                .await
                .unwrap();
            for object in listed.contents() {
                let key = object.key().unwrap();
                let body = self
                    .s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .unwrap();
                let bytes = body.body.collect().await.unwrap().into_bytes();
                out.insert(key.to_string(), String::from_utf8(bytes.to_vec()).unwrap());
            }
            out
        })
    }

    /// Creates an S3 bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.runtime
            .block_on(self.s3.create_bucket().bucket(bucket).send())
            .unwrap();
    }

    /// Creates a stream and waits until it is active.
    pub fn create_stream(&self, stream: &str, shards: i32) {
        self.runtime.block_on(async {
            self.kinesis
                .create_stream()
                .stream_name(stream)
                .shard_count(shards)
                .send()
                .await
                .unwrap();
        });
        self.wait_active(stream);
    }

    /// Waits until the stream is active (after creation or a reshard).
    pub fn wait_active(&self, stream: &str) {
        let started = Instant::now();
        loop {
            let status = self.runtime.block_on(async {
                self.kinesis
                    .describe_stream_summary()
                    .stream_name(stream)
                    .send()
                    .await
                    .unwrap()
                    .stream_description_summary()
                    .map(|s| s.stream_status().clone())
            });
            if status == Some(StreamStatus::Active) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{stream} never became active"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Puts records with PutRecords (≤ 500 per call), resending failed entries; returns
    /// where each landed, in order.
    pub fn put(&self, stream: &str, records: &[PointRecord]) -> Vec<Placed> {
        let mut placed = Vec::with_capacity(records.len());
        for chunk in records.chunks(500) {
            placed.extend(self.put_chunk(stream, chunk));
        }
        placed
    }

    fn put_chunk(&self, stream: &str, records: &[PointRecord]) -> Vec<Placed> {
        let mut placed: Vec<Option<Placed>> = vec![None; records.len()];
        for _attempt in 0..20 {
            let missing: Vec<usize> = (0..records.len())
                .filter(|&i| placed[i].is_none())
                .collect();
            if missing.is_empty() {
                break;
            }
            let entries = missing
                .iter()
                .map(|&i| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&records[i].0)
                        .data(Blob::new(records[i].1.clone()))
                        .build()
                        .unwrap()
                })
                .collect();
            let out = self.runtime.block_on(
                self.kinesis
                    .put_records()
                    .stream_name(stream)
                    .set_records(Some(entries))
                    .send(),
            );
            let Ok(out) = out else {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            };
            for (&i, result) in missing.iter().zip(out.records()) {
                if let (Some(shard), Some(sequence)) = (result.shard_id(), result.sequence_number())
                {
                    placed[i] = Some(Placed {
                        shard: shard.into(),
                        sequence: sequence.into(),
                    });
                }
            }
        }
        placed
            .into_iter()
            .map(|p| p.expect("a record could not be put after 20 attempts"))
            .collect()
    }

    /// Splits `shard` at the middle of its hash range, and waits until the stream is active.
    pub fn split_in_half(&self, stream: &str, shard: &str) {
        let (low, high) = self
            .shards(stream)
            .into_iter()
            .find(|s| s.0 == shard)
            .unwrap()
            .1;
        self.runtime
            .block_on(
                self.kinesis
                    .split_shard()
                    .stream_name(stream)
                    .shard_to_split(shard)
                    .new_starting_hash_key((low + (high - low) / 2).to_string())
                    .send(),
            )
            .unwrap();
        self.wait_active(stream);
    }

    /// Every shard: id, hash range, and whether it is still open.
    fn shards(&self, stream: &str) -> Vec<(String, (u128, u128), bool)> {
        let out = self
            .runtime
            .block_on(self.kinesis.list_shards().stream_name(stream).send())
            .unwrap();
        out.shards()
            .iter()
            .map(|s| {
                let range = s.hash_key_range().unwrap();
                let closed = s
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number());
                (
                    s.shard_id().to_string(),
                    (
                        range.starting_hash_key().parse().unwrap(),
                        range.ending_hash_key().parse().unwrap(),
                    ),
                    closed.is_none(),
                )
            })
            .collect()
    }

    /// Merges two adjacent shards, and waits until the stream is active.
    pub fn merge(&self, stream: &str, shard: &str, adjacent: &str) {
        self.runtime.block_on(async {
            self.kinesis
                .merge_shards()
                .stream_name(stream)
                .shard_to_merge(shard)
                .adjacent_shard_to_merge(adjacent)
                .send()
                .await
                .unwrap();
        });
        self.wait_active(stream);
    }

    /// The open shards, by id, with their hash ranges' starts (for picking adjacent ones).
    pub fn open_shards(&self, stream: &str) -> Vec<(String, u128)> {
        let mut open: Vec<(String, u128)> = self
            .shards(stream)
            .into_iter()
            .filter(|s| s.2)
            .map(|(id, (start, _), _)| (id, start))
            .collect();
        open.sort_by_key(|(_, start)| *start);
        open
    }

    /// Every lease item of `table`, by shard id (attribute name → value); none while the
    /// table does not exist yet.
    pub fn leases(&self, table: &str) -> BTreeMap<String, HashMap<String, AttributeValue>> {
        self.runtime.block_on(async {
            let scan = self.dynamodb.scan().table_name(table).consistent_read(true);
            let out = match scan.send().await {
                Ok(out) => out,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return BTreeMap::new();
                }
                Err(e) => panic!("scanning {table}: {e:?}"),
            };
            out.items()
                .iter()
                .map(|item| (item["leaseKey"].as_s().unwrap().clone(), item.clone()))
                .collect()
        })
    }

    /// Lease owner per shard (none when nobody holds it).
    pub fn owners(&self, table: &str) -> BTreeMap<String, Option<String>> {
        self.leases(table)
            .into_iter()
            .map(|(shard, item)| {
                (
                    shard,
                    item.get("leaseOwner").and_then(|v| v.as_s().ok()).cloned(),
                )
            })
            .collect()
    }
}

/// A `waystream run` process reading a stream.
pub struct Host {
    child: std::sync::Mutex<Child>,
    pub out: PathBuf,
    pub log: PathBuf,
    /// Where it serves metrics, health and status.
    pub http: std::net::SocketAddr,
}

/// The `[source]` body for `stream` with lease table `table`, worker id `worker` and
/// `extra` lines.
pub fn kinesis_source(stream: &str, table: &str, worker: &str, extra: &str) -> String {
    format!(
        "type = \"kinesis\"\nstream = {stream:?}\nlease_table = {table:?}\nworker_id = {worker:?}\n\
         poll_interval_ms = 200\nshard_sync_interval_ms = 1000\n{extra}"
    )
}

/// The `waystream` binary cargo built with this program: next to it (a bench binary in
/// `target/<profile>`) or one folder up (a test in `target/<profile>/deps`).
pub fn waystream_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let beside = exe.with_file_name("waystream");
    let dir = exe.parent().unwrap().parent().unwrap();
    let binary = if beside.exists() {
        beside
    } else {
        dir.join("waystream")
    };
    assert!(
        binary.exists(),
        "{} is missing (cargo builds it with the tests)",
        binary.display()
    );
    binary
}

impl Host {
    /// Starts `waystream run` on `source` (a `[source]` body) with the standard chain,
    /// writing NDJSON under `out`.
    pub fn start(out: &Path, source: &str) -> Host {
        let text =
            config_text_with_source(source, out, &Stage::standard_chain(), "batch_size = 200");
        Host::start_config(out, &text)
    }

    /// Starts `waystream run` on the config `text`; its log goes under `out`.
    pub fn start_config(out: &Path, text: &str) -> Host {
        Host::start_config_with_env(out, text, &[])
    }

    /// [`Host::start_config`] with more environment variables (another endpoint, say).
    pub fn start_config_with_env(out: &Path, text: &str, env: &[(&str, &str)]) -> Host {
        std::fs::create_dir_all(out).unwrap();
        let config = out.join("pipeline.toml");
        std::fs::write(&config, text).unwrap();
        let log = out.join("host.log");
        let http = crate::http::free_address();
        let child = Command::new(waystream_binary())
            .args(["run", "--quiet", "--no-reload", "--config"])
            .arg(&config)
            .arg("--http")
            .arg(http.to_string())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        Host {
            child: std::sync::Mutex::new(child),
            out: out.into(),
            log,
            http,
        }
    }

    /// SIGKILL: no flush, no checkpoint, no release.
    pub fn kill(&mut self) {
        let child = self.child.get_mut().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, and waits for a graceful exit (which must succeed).
    pub fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.get_mut().unwrap().id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.get_mut().unwrap().try_wait().unwrap() {
                assert!(
                    status.success(),
                    "host exited with {status}; log:\n{}",
                    self.log_text()
                );
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "host did not stop; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn running(&self) -> bool {
        self.child.lock().unwrap().try_wait().unwrap().is_none()
    }

    /// Its stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Output documents so far.
    pub fn documents(&self) -> Vec<serde_json::Value> {
        read_ndjson(&self.out.join("points.ndjson"))
    }

    /// Dead letters so far.
    pub fn dead_letters(&self) -> Vec<serde_json::Value> {
        read_ndjson(&self.out.join("dead-letter.ndjson"))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `(partition key, seq)` of a point record.
pub fn record_key(record: &PointRecord) -> (String, u32) {
    let text = std::str::from_utf8(&record.1).unwrap();
    (
        record.0.clone(),
        text.split('\t').next().unwrap().parse().unwrap(),
    )
}

/// `(user/trajectory, seq)` of an output document.
pub fn document_key(document: &serde_json::Value) -> (String, u32) {
    (
        format!(
            "{}/{}",
            document["user"].as_str().unwrap(),
            document["trajectory"].as_str().unwrap()
        ),
        document["seq"].as_u64().unwrap() as u32,
    )
}

/// Polls `check` every 100 ms until it holds or `limit` passes; false on timeout.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}
