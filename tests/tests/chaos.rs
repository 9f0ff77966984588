//! The same output whatever fails: two hosts read a four-shard stream while one of them is
//! killed (SIGKILL) at random moments, a shard is split and two are merged, and Firehose
//! refuses some entries of its calls. The documents Firehose accepted, one copy per
//! `point_id`, must be byte for byte those of one host reading the same stream without
//! any fault; every copy a replay made must be identical to its original. This holds only
//! because the transforms' per-trajectory state is checkpointed with the shard
//! (`state_bucket`): without it the records read again after a kill meet fresh state.
//!
//! Kept short for CI (a few kills). `WAYSTREAM_CHAOS_LONG=1` runs a longer mode, for
//! figures; `WAYSTREAM_CHAOS_SEED=N` repeats a run.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use waystream_tests::aws::{
    Host, LocalAws, PointRecord, document_key, interleave, kinesis_source, local_aws,
    point_records, record_key, unique, wait_until,
};
use waystream_tests::fake_firehose::FirehoseServer;
use waystream_tests::{Stage, chain_text};

/// How big a run is.
struct Scale {
    trajectories: usize,
    points: u32,
    /// Records per PutRecords call, and the pause after each.
    put_chunk: usize,
    put_pause: Duration,
    /// A kill comes this long (drawn uniformly) after the previous one.
    kill_after: std::ops::Range<Duration>,
}

const SHORT: Scale = Scale {
    trajectories: 24,
    points: 150,
    put_chunk: 40,
    put_pause: Duration::from_millis(60),
    kill_after: Duration::from_millis(2500)..Duration::from_millis(5000),
};

const LONG: Scale = Scale {
    trajectories: 80,
    points: 500,
    put_chunk: 100,
    put_pause: Duration::from_millis(50),
    kill_after: Duration::from_secs(3)..Duration::from_secs(10),
};

/// A host of the chaos run: Kinesis with state kept in `bucket` → standard chain →
/// Firehose (the fake, through the environment), dead letters to NDJSON under `out`.
fn chaos_host(out: &Path, source: &str, firehose: &FirehoseServer) -> Host {
    let text = format!(
        "batch_size = 200\n[source]\n{source}\n{}[sink]\ntype = \"firehose\"\n\
         delivery_stream = \"chaos\"\nretry_base_ms = 20\nmax_backoff_ms = 500\n\
         [dead_letter]\ntype = \"ndjson\"\npath = {:?}\n",
        chain_text(&Stage::standard_chain()),
        out.join("dead-letter.ndjson").display().to_string()
    );
    Host::start_config_with_env(
        out,
        &text,
        &[("AWS_ENDPOINT_URL_FIREHOSE", &firehose.endpoint)],
    )
}

/// Puts `records` in chunks, splitting the first open shard after a third and merging
/// two adjacent open shards after two thirds.
fn produce(aws: &LocalAws, stream: &str, records: &[PointRecord], scale: &Scale) {
    let third = records.len().div_ceil(3);
    for (i, chunk) in records.chunks(scale.put_chunk).enumerate() {
        let at = i * scale.put_chunk;
        if at / third != (at + chunk.len()) / third && at + chunk.len() < records.len() {
            let open = aws.open_shards(stream);
            if (at + chunk.len()) / third == 1 {
                aws.split_in_half(stream, &open[0].0);
            } else {
                aws.merge(stream, &open[1].0, &open[2].0);
            }
        }
        aws.put(stream, chunk);
        std::thread::sleep(scale.put_pause);
    }
}

/// The accepted documents, as text without the line end.
fn accepted(firehose: &FirehoseServer) -> Vec<String> {
    let log = firehose.log.lock().unwrap();
    log.accepted
        .iter()
        .map(|r| String::from_utf8(r.strip_suffix(b"\n").unwrap_or(r).to_vec()).expect("UTF-8"))
        .collect()
}

fn key_of(line: &str) -> (String, u32) {
    document_key(&serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn kills_resharding_and_firehose_refusals_leave_the_fault_free_output() {
    let aws = local_aws("chaos");
    let long = std::env::var_os("WAYSTREAM_CHAOS_LONG").is_some();
    let scale = if long { &LONG } else { &SHORT };
    let seed: u64 = std::env::var("WAYSTREAM_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.unwrap().as_nanos() as u64
        });
    eprintln!("chaos: seed {seed} (WAYSTREAM_CHAOS_SEED repeats it), long mode {long}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (stream, table, bucket) = (
        unique("chaos"),
        unique("chaos-leases"),
        unique("chaos-state"),
    );
    aws.create_stream(&stream, 4);
    aws.create_bucket(&bucket);
    let firehose = FirehoseServer::start(0.05, seed);
    let records = interleave(&point_records("chaos", scale.trajectories, scale.points));
    let dir = tempfile::tempdir().unwrap();
    let source = |worker: &str| {
        kinesis_source(
            &stream,
            &table,
            worker,
            &format!(
                "failover_time_ms = 3000\nstate_bucket = {bucket:?}\nstate_path_style = true\n\
                 state_interval_ms = 1000\n"
            ),
        )
    };
    let workers = ["chaos-a", "chaos-b"];
    let mut starts = [0usize; 2];
    let mut start = |i: usize| {
        starts[i] += 1;
        let out = dir.path().join(format!("{}-{}", workers[i], starts[i]));
        chaos_host(&out, &source(workers[i]), &firehose)
    };
    let mut hosts = vec![start(0), start(1)];
    let mut kills = 0;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| produce(&aws, &stream, &records, scale));
        while !producer.is_finished() {
            let wait = rng.random_range(scale.kill_after.clone());
            let until = Instant::now() + wait;
            while Instant::now() < until && !producer.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let victim = rng.random_range(0..2);
            hosts[victim].kill();
            kills += 1;
            eprintln!(
                "chaos: killed {} at {:.1} s",
                workers[victim],
                started.elapsed().as_secs_f64()
            );
            hosts[victim] = start(victim);
        }
        producer.join().unwrap();
    });
    // Everything arrives at Firehose in the end.
    let wanted: HashSet<(String, u32)> = records.iter().map(record_key).collect();
    let arrived =
        || -> HashSet<(String, u32)> { accepted(&firehose).iter().map(|l| key_of(l)).collect() };
    let all = wait_until(Duration::from_secs(240), || wanted.is_subset(&arrived()));
    let missing = wanted.difference(&arrived()).count();
    assert!(
        all,
        "{missing} of {} records never reached Firehose; logs:\n{}",
        records.len(),
        hosts
            .iter()
            .map(|h| h.log_text())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    for host in &mut hosts {
        host.stop();
    }

    // One host, no fault, the same stream from its start (a lease table of its own).
    let mut reference = Host::start(
        &dir.path().join("reference"),
        &kinesis_source(&stream, &unique("chaos-reference"), "reference", ""),
    );
    assert!(
        wait_until(Duration::from_secs(120), || reference.documents().len()
            >= records.len()),
        "the reference run fell short; log:\n{}",
        reference.log_text()
    );
    reference.stop();
    let reference_text = std::fs::read_to_string(reference.out.join("points.ndjson")).unwrap();
    let expected: HashMap<(String, u32), &str> =
        reference_text.lines().map(|l| (key_of(l), l)).collect();
    assert_eq!(
        expected.len(),
        records.len(),
        "the reference has each point once"
    );

    let documents = accepted(&firehose);
    let mut copies: HashMap<(String, u32), usize> = HashMap::new();
    let mut differing = Vec::new();
    for line in &documents {
        let key = key_of(line);
        *copies.entry(key.clone()).or_default() += 1;
        if expected.get(&key) != Some(&line.as_str()) {
            differing.push(format!(
                "got      {line}\nexpected {}",
                expected.get(&key).unwrap_or(&"(nothing)")
            ));
        }
    }
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    let lost = expected.keys().filter(|k| !copies.contains_key(*k)).count();
    let refused: u32 = firehose
        .log
        .lock()
        .unwrap()
        .sent
        .values()
        .map(|s| s.1)
        .sum();
    let dead_letters: usize = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|d| d.unwrap().path().join("dead-letter.ndjson"))
        .filter(|p| p.exists())
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    eprintln!(
        "chaos: {} records, {:.0} s, {kills} kills, {refused} Firehose entries refused (and sent again), \
         {} documents accepted, {duplicates} duplicates, lost {lost}, differing copies {}, dead letters {dead_letters}",
        records.len(),
        started.elapsed().as_secs_f64(),
        documents.len(),
        differing.len()
    );
    assert_eq!(lost, 0);
    assert!(
        differing.is_empty(),
        "{} copies differ from the fault-free run, e.g.:\n{}",
        differing.len(),
        differing[..differing.len().min(5)].join("\n")
    );
    assert_eq!(dead_letters, 0, "the synthetic records are all valid");
    assert!(kills >= 2 && refused > 0, "the run had its faults");
    // The lease table names a stored state for every shard read to a checkpoint.
    let leases = aws.leases(&table);
    let stored = leases
        .values()
        .filter_map(|item| item.get("waystreamState"))
        .count();
    assert!(
        stored >= 4,
        "states named in the lease table: {stored} of {}",
        leases.len()
    );
}
