//! The Kinesis source against kinesis-mock (Kinesis) and moto server (DynamoDB), started
//! by `cargo xtask test`: hosts are `waystream run` processes, killed and restarted as a
//! deployment would see them. Each test has its own stream and lease table.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use waystream_contract::aggregation::{MAGIC, aggregate};
use waystream_tests::aws::{
    Host, LocalAws, Placed, PointRecord, document_key, interleave, kinesis_source, local_aws,
    point_records, record_key, unique, wait_until,
};
use waystream_tests::http::{get, observations, scrape, value, values};

/// The shards `host`'s metrics say it holds (`waystream_leases_held` must agree), each
/// with its reader's `MillisBehindLatest` (which must be there).
fn held_shards(host: &Host) -> Vec<(String, f64)> {
    let metrics = scrape(host.http);
    let held: Vec<(String, f64)> = values(&metrics, "waystream_lease_held", &[])
        .into_iter()
        .filter(|(_, v)| *v == 1.0)
        .map(|(sample, _)| {
            let shard = sample.labels.get("shard").unwrap().to_string();
            let behind = values(
                &metrics,
                "waystream_kinesis_millis_behind_latest",
                &[("shard", &shard)],
            );
            (shard, behind.first().map_or(f64::NAN, |b| b.1))
        })
        .collect();
    assert_eq!(
        value(&metrics, "waystream_leases_held", &[]),
        held.len() as f64
    );
    held
}

/// How many times each put record appears in the outputs; panics naming a missing one.
fn count_deliveries(records: &[PointRecord], hosts: &[&Host]) -> HashMap<(String, u32), usize> {
    let mut seen: HashMap<(String, u32), usize> = HashMap::new();
    for host in hosts {
        for document in host.documents() {
            *seen.entry(document_key(&document)).or_default() += 1;
        }
    }
    for record in records {
        let key = record_key(record);
        assert!(
            seen.contains_key(&key),
            "record {key:?} was never delivered"
        );
    }
    seen
}

fn delivered(records: &[PointRecord], hosts: &[&Host]) -> usize {
    let keys: HashSet<(String, u32)> = hosts
        .iter()
        .flat_map(|h| h.documents())
        .map(|d| document_key(&d))
        .collect();
    records
        .iter()
        .filter(|r| keys.contains(&record_key(r)))
        .count()
}

fn wait_for_all(records: &[PointRecord], hosts: &[&Host], limit: Duration) {
    let all = wait_until(limit, || {
        // A host that died (other than by a test's kill) fails the wait at once.
        delivered(records, hosts) == records.len() || !hosts.iter().any(|h| h.running())
    }) && delivered(records, hosts) == records.len();
    assert!(
        all,
        "only {} of {} records delivered; logs:\n{}",
        delivered(records, hosts),
        records.len(),
        hosts
            .iter()
            .map(|h| h.log_text())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
}

fn checkpoint_of(item: &HashMap<String, AttributeValue>) -> (String, u64) {
    (
        item["checkpoint"].as_s().unwrap().clone(),
        item.get("checkpointSubSequenceNumber")
            .map_or(0, |v| v.as_n().unwrap().parse().unwrap()),
    )
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn one_host_reads_a_four_shard_stream_and_releases_its_leases_on_sigterm() {
    let aws = local_aws("one_host_reads_a_four_shard_stream");
    let (stream, table) = (&unique("one-host"), &unique("one-host-leases"));
    aws.create_stream(stream, 4);
    let records = interleave(&point_records("one", 24, 40));
    let placed = aws.put(stream, &records);
    let shards: HashSet<&str> = placed.iter().map(|p| p.shard.as_str()).collect();
    assert_eq!(
        shards.len(),
        4,
        "the records should spread over all four shards"
    );
    // A record that is not a point line: dead-lettered with its cause and position.
    aws.put(stream, &[("u0/bad".into(), b"not a point record".to_vec())]);

    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::start(
        &dir.path().join("a"),
        &kinesis_source(stream, table, "host-a", ""),
    );
    wait_for_all(&records, &[&host], Duration::from_secs(90));
    assert!(wait_until(Duration::from_secs(10), || !host
        .dead_letters()
        .is_empty()));
    host.stop();

    let deliveries = count_deliveries(&records, &[&host]);
    assert_eq!(deliveries.len(), records.len());
    assert!(
        deliveries.values().all(|&n| n == 1),
        "a clean run delivers each record once"
    );
    let letters = host.dead_letters();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0]["cause"].as_str().unwrap().contains("no tab"),
        "{}",
        letters[0]
    );
    assert_eq!(letters[0]["module"], "source:kinesis");
    assert!(
        letters[0]["source_position"]
            .as_str()
            .unwrap()
            .starts_with("shardId-")
    );

    // Graceful stop: every lease released, each checkpointed at its shard's last record.
    let mut last: HashMap<&str, &str> = HashMap::new();
    for p in &placed {
        last.insert(&p.shard, &p.sequence);
    }
    let leases = aws.leases(table);
    assert_eq!(leases.len(), 4);
    for (shard, item) in &leases {
        assert!(
            !item.contains_key("leaseOwner"),
            "{shard} still owned: {item:?}"
        );
        let (checkpoint, _) = checkpoint_of(item);
        assert!(
            checkpoint.len() >= last[shard.as_str()].len(),
            "{shard}: {checkpoint}"
        );
    }
    let log = host.log_text();
    assert_eq!(log.matches("released the lease").count(), 4, "{log}");
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn two_hosts_split_the_shards_and_the_survivor_takes_over_after_a_kill() {
    let aws = local_aws("two_hosts_split_the_shards");
    let (stream, table) = (&unique("two-hosts"), &unique("two-hosts-leases"));
    let failover = Duration::from_millis(3000);
    aws.create_stream(stream, 4);
    let records = interleave(&point_records("two", 40, 60));
    let (first, rest) = records.split_at(records.len() / 3);
    aws.put(stream, first);

    let dir = tempfile::tempdir().unwrap();
    let extra = format!("failover_time_ms = {}", failover.as_millis());
    let mut a = Host::start(
        &dir.path().join("a"),
        &kinesis_source(stream, table, "host-a", &extra),
    );
    let b = Host::start(
        &dir.path().join("b"),
        &kinesis_source(stream, table, "host-b", &extra),
    );
    let split = wait_until(Duration::from_secs(60), || {
        let owners = aws.owners(table);
        let count = |w: &str| owners.values().filter(|o| o.as_deref() == Some(w)).count();
        owners.len() == 4 && count("host-a") == 2 && count("host-b") == 2
    });
    assert!(
        split,
        "leases never split 2/2: {:?}\nhost-b:\n{}",
        aws.owners(table),
        b.log_text()
    );
    // Each host's metrics show its two leases and how far behind each shard's reader is.
    for host in [&a, &b] {
        let shown = wait_until(Duration::from_secs(20), || {
            let held = held_shards(host);
            held.len() == 2 && held.iter().all(|(_, behind)| behind.is_finite())
        });
        assert!(
            shown,
            "lease gauges never showed 2 leases: {:?}",
            held_shards(host)
        );
    }
    let takeovers_before = value(&scrape(b.http), "waystream_lease_takeovers_total", &[]);
    let (code, status) = waystream_tests::http::get(b.http, "/status").unwrap();
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status["leases"]["shards"].as_array().unwrap().len(),
        2,
        "{status}"
    );

    // Kill A while records flow; B must take A's shards within 2 × the failover time.
    let producer = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            for chunk in rest.chunks(100) {
                aws.put(stream, chunk);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        a.kill();
        let killed = Instant::now();
        let taken = wait_until(2 * failover + Duration::from_secs(2), || {
            aws.owners(table)
                .values()
                .all(|o| o.as_deref() == Some("host-b"))
        });
        let takeover = killed.elapsed();
        producer.join().unwrap();
        (taken, takeover)
    });
    let (taken, takeover) = producer;
    eprintln!(
        "takeover after SIGKILL: {} ms (failover time {} ms)",
        takeover.as_millis(),
        failover.as_millis()
    );
    assert!(
        taken && takeover <= 2 * failover,
        "B took over in {takeover:?}: {:?}",
        aws.owners(table)
    );
    // B's gauges follow: four leases, the two of A's taken over.
    let gauges_moved = wait_until(Duration::from_secs(20), || {
        held_shards(&b).len() == 4
            && value(&scrape(b.http), "waystream_lease_takeovers_total", &[])
                == takeovers_before + 2.0
    });
    assert!(
        gauges_moved,
        "B's lease gauges did not follow the takeover: {:?}",
        held_shards(&b)
    );

    wait_for_all(&records, &[&a, &b], Duration::from_secs(90));
    let deliveries = count_deliveries(&records, &[&a, &b]);
    let duplicates: usize = deliveries.values().map(|n| n - 1).sum();
    eprintln!(
        "{} records, {duplicates} delivered twice (A's unacknowledged batches)",
        records.len()
    );
    // Every record B acknowledged had its age at the sink observed, and B checkpointed.
    let metrics = scrape(b.http);
    assert!(observations(&metrics, "waystream_record_age_seconds", None) > 0.0);
    assert!(!values(&metrics, "waystream_checkpoint_age_seconds", &[]).is_empty());
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn a_killed_host_resumes_after_its_last_checkpoint() {
    let aws = local_aws("a_killed_host_resumes");
    let (stream, table) = (&unique("restart"), &unique("restart-leases"));
    aws.create_stream(stream, 2);
    let records = interleave(&point_records("restart", 20, 100));
    let dir = tempfile::tempdir().unwrap();
    let source = kinesis_source(stream, table, "host-r", "");
    let mut host = Host::start(&dir.path().join("first"), &source);
    // Records flow while the host is killed and restarted.
    let (placed, checkpoints) = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            let mut placed: Vec<Placed> = Vec::new();
            for chunk in records.chunks(40) {
                placed.extend(aws.put(stream, chunk));
                std::thread::sleep(Duration::from_millis(40));
            }
            placed
        });
        // Kill once a third is out *and* a checkpoint is durable: output can run ahead of
        // the first checkpoint write (one acknowledgement interval plus a DynamoDB call),
        // and a kill before it would leave nothing to resume after.
        let checkpointed = || {
            aws.leases(table)
                .values()
                .any(|item| checkpoint_of(item).0.bytes().all(|b| b.is_ascii_digit()))
        };
        assert!(wait_until(Duration::from_secs(60), || host
            .documents()
            .len()
            > records.len() / 3
            && checkpointed()));
        host.kill();
        // What the table says was durable when the host died.
        let checkpoints: HashMap<String, (String, u64)> = aws
            .leases(table)
            .iter()
            .map(|(s, i)| (s.clone(), checkpoint_of(i)))
            .collect();
        (producer.join().unwrap(), checkpoints)
    });
    let restarted = Host::start(&dir.path().join("second"), &source);
    wait_for_all(&records, &[&host, &restarted], Duration::from_secs(90));
    let deliveries = count_deliveries(&records, &[&host, &restarted]);
    let duplicates: Vec<usize> = (0..records.len())
        .filter(|&i| deliveries[&record_key(&records[i])] > 1)
        .collect();
    eprintln!(
        "restart after SIGKILL: {} of {} records delivered twice (the first run had written {})",
        duplicates.len(),
        records.len(),
        host.documents().len()
    );
    // The restarted host resumes after the checkpoints: it reads nothing they cover, so
    // only records after them can come twice.
    let numeric = |s: &str| (s.len(), s.to_string());
    let again: HashSet<(String, u32)> = restarted.documents().iter().map(document_key).collect();
    let mut resumed_after = 0;
    for (record, placed) in records.iter().zip(&placed) {
        let checkpoint = &checkpoints
            .get(&placed.shard)
            .map_or("TRIM_HORIZON", |c| c.0.as_str());
        if checkpoint.bytes().all(|b| b.is_ascii_digit()) {
            resumed_after += 1;
            let read_again = again.contains(&record_key(record));
            assert_eq!(
                read_again,
                numeric(&placed.sequence) > numeric(checkpoint),
                "{}/{} against checkpoint {checkpoint}",
                placed.shard,
                placed.sequence
            );
        }
    }
    assert!(
        resumed_after > 0,
        "the first run checkpointed nothing: {checkpoints:?}"
    );
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn split_and_merge_while_records_flow_keep_every_trajectory_in_order() {
    let aws = local_aws("split_and_merge");
    let (stream, table) = (&unique("reshard"), &unique("reshard-leases"));
    aws.create_stream(stream, 2);
    let records = interleave(&point_records("reshard", 16, 90));
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::start(
        &dir.path().join("a"),
        &kinesis_source(stream, table, "host-a", ""),
    );
    let thirds: Vec<&[PointRecord]> = records.chunks(records.len().div_ceil(3)).collect();
    aws.put(stream, thirds[0]);
    std::thread::sleep(Duration::from_millis(1500));
    let open = aws.open_shards(stream);
    aws.split_in_half(stream, &open[0].0);
    aws.put(stream, thirds[1]);
    std::thread::sleep(Duration::from_millis(1500));
    // Merge the upper child of the split with the next shard (adjacent hash ranges).
    let open = aws.open_shards(stream);
    assert_eq!(open.len(), 3, "{open:?}");
    aws.merge(stream, &open[1].0, &open[2].0);
    aws.put(stream, thirds[2]);

    wait_for_all(&records, &[&host], Duration::from_secs(120));
    host.stop();
    let documents = host.documents();
    assert_eq!(
        documents.len(),
        records.len(),
        "one clean host delivers each record once"
    );
    // Per partition key, output order is seq order across both reshards, and speed saw
    // every point after the first (a child read before its parent would break both).
    let mut last: BTreeMap<String, u32> = BTreeMap::new();
    for document in &documents {
        let (key, seq) = document_key(document);
        if let Some(previous) = last.insert(key.clone(), seq) {
            assert_eq!(seq, previous + 1, "{key}: seq {seq} after {previous}");
            assert!(document["dist_m"].is_number(), "{document}");
        } else {
            assert_eq!(seq, 0, "{key} starts at {seq}");
        }
    }
    let leases = aws.leases(table);
    assert_eq!(
        leases.len(),
        2 + 2 + 1,
        "two roots, two children, one merged: {:?}",
        leases.keys()
    );
    let finished = leases
        .values()
        .filter(|i| checkpoint_of(i).0 == "SHARD_END")
        .count();
    assert_eq!(
        finished, 3,
        "the split parent and both merge parents are finished"
    );
    // As KCL writes them: every lease with its shard's hash key range, every finished
    // parent with its children's ids, every child with its parents'.
    let ids = |item: &HashMap<String, AttributeValue>, name: &str| -> Vec<String> {
        item.get(name)
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default()
    };
    for (shard, item) in &leases {
        for key in ["startingHashKey", "endingHashKey"] {
            let value = item.get(key).and_then(|v| v.as_s().ok());
            assert!(
                value.is_some_and(|v| v.parse::<u128>().is_ok()),
                "{shard}: {key} = {value:?}"
            );
        }
        for child in ids(item, "childShardIds") {
            assert!(
                ids(&leases[&child], "parentShardId").contains(shard),
                "{child} names {shard} as parent"
            );
        }
        if checkpoint_of(item).0 == "SHARD_END" {
            assert!(
                !ids(item, "childShardIds").is_empty(),
                "{shard} finished without childShardIds"
            );
        }
    }
}

/// A KCL 2.3+ application deletes a finished parent's lease once both children have
/// checkpoints past `TRIM_HORIZON`. Its shard is still listed (within retention): no lease
/// must be made for it again, or it would be read whole a second time.
#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn a_finished_parent_whose_lease_kcl_deleted_is_not_read_again() {
    let aws = local_aws("deleted_parent");
    let (stream, table) = (&unique("deleted-parent"), &unique("deleted-parent-leases"));
    aws.create_stream(stream, 1);
    let records = interleave(&point_records("parent", 8, 40));
    let (before, after) = records.split_at(records.len() / 2);
    aws.put(stream, before);
    aws.split_in_half(stream, "shardId-000000000000");
    let placed = aws.put(stream, after);
    // Each child checkpointed at its first record: the parent was read to its end.
    create_kcl_table(&aws, table);
    let mut expected = HashSet::new();
    let children: BTreeSet<&str> = placed.iter().map(|p| p.shard.as_str()).collect();
    assert_eq!(
        children.len(),
        2,
        "records landed in both children: {placed:?}"
    );
    for child in &children {
        let mine: Vec<(&PointRecord, &Placed)> = after
            .iter()
            .zip(&placed)
            .filter(|(_, p)| p.shard == *child)
            .collect();
        seed_kcl_lease(&aws, table, child, &mine[0].1.sequence, 0);
        expected.extend(mine[1..].iter().map(|(record, _)| record_key(record)));
    }

    let dir = tempfile::tempdir().unwrap();
    let source = kinesis_source(
        stream,
        table,
        "host-a",
        "failover_time_ms = 1000\ncreate_lease_table = false",
    );
    let mut host = Host::start(&dir.path().join("a"), &source);
    let done = wait_until(Duration::from_secs(60), || {
        host.documents().len() >= expected.len()
    });
    assert!(
        done,
        "{} of {}: {}",
        host.documents().len(),
        expected.len(),
        host.log_text()
    );
    // Two more shard syncs: time for a wrong lease to be made and read.
    std::thread::sleep(Duration::from_millis(2500));
    host.stop();
    let got: HashSet<(String, u32)> = host.documents().iter().map(document_key).collect();
    assert_eq!(got.len(), host.documents().len(), "no record twice");
    assert_eq!(
        got, expected,
        "the children's records after their checkpoints, none of the parent's"
    );
    assert!(
        !aws.leases(table).contains_key("shardId-000000000000"),
        "a lease was made for the finished parent"
    );
}

/// A lease KCL checkpointed at `AT_TIMESTAMP` cannot be read without the timestamp,
/// which the table does not hold: the host refuses to start and says what to set.
#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn an_at_timestamp_lease_without_starting_timestamp_is_a_clear_error_at_start() {
    let aws = local_aws("at_timestamp_lease");
    let (stream, table) = (&unique("at-timestamp"), &unique("at-timestamp-leases"));
    aws.create_stream(stream, 1);
    create_kcl_table(&aws, table);
    seed_kcl_lease(&aws, table, "shardId-000000000000", "AT_TIMESTAMP", 0);
    let dir = tempfile::tempdir().unwrap();
    let source = kinesis_source(stream, table, "host-a", "create_lease_table = false");
    let host = Host::start(&dir.path().join("a"), &source);
    let exited = wait_until(Duration::from_secs(30), || !host.running());
    assert!(exited, "the host kept running: {}", host.log_text());
    let log = host.log_text();
    assert!(
        log.contains("AT_TIMESTAMP (shardId-000000000000)")
            && log.contains("set starting_timestamp"),
        "{log}"
    );
}

/// Readiness follows the lease table: a host whose lease rounds fail (the table deleted
/// under it) answers 503 on `/health/ready` with the round's error, stays live, and is
/// ready again once the table is back.
#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn readiness_is_lost_while_the_lease_table_is_out_of_reach_and_comes_back_with_it() {
    let aws = local_aws("readiness_follows_the_lease_table");
    let (stream, table) = (&unique("ready"), &unique("ready-leases"));
    aws.create_stream(stream, 1);
    let records = point_records("ready", 2, 20);
    aws.put(stream, &records);
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::start(
        &dir.path().join("a"),
        &kinesis_source(stream, table, "host-a", "failover_time_ms = 1500"),
    );
    wait_for_all(&records, &[&host], Duration::from_secs(60));
    let ready = || get(host.http, "/health/ready").unwrap();
    assert_eq!(ready().0, 200, "{}", ready().1);

    aws.runtime.block_on(async {
        aws.dynamodb
            .delete_table()
            .table_name(table.as_str())
            .send()
            .await
            .unwrap();
    });
    let mut last = (0, String::new());
    let lost = wait_until(Duration::from_secs(30), || {
        last = ready();
        last.0 == 503
    });
    assert!(lost, "still ready: {last:?}\n{}", host.log_text());
    let body: serde_json::Value = serde_json::from_str(&last.1).unwrap();
    assert_eq!(body["ready"], false);
    assert!(
        body["source_problem"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "{body}"
    );
    assert_eq!(get(host.http, "/health/live").unwrap().0, 200);
    assert_eq!(value(&scrape(host.http), "waystream_ready", &[]), 0.0);

    create_kcl_table(&aws, table);
    let back = wait_until(Duration::from_secs(30), || ready().0 == 200);
    assert!(back, "not ready again: {:?}\n{}", ready(), host.log_text());
    host.kill();
}

/// Records of `trajectory` `seq_from..seq_to`, KPL-aggregated into one Kinesis record.
fn aggregated(records: &[PointRecord]) -> PointRecord {
    let data = aggregate(records.iter().map(|(k, d)| (k.as_str(), d.as_slice())));
    (records[0].0.clone(), data)
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn kpl_aggregates_are_split_and_bad_ones_pass_through_or_dead_letter() {
    let aws = local_aws("kpl_aggregates");
    let (stream, table) = (&unique("kpl"), &unique("kpl-leases"));
    aws.create_stream(stream, 1);
    let records = point_records("kpl", 3, 30);
    let mut put: Vec<PointRecord> = records.chunks(9).map(aggregated).collect();
    // A record that starts with the magic but whose MD5 is wrong: plain data (which then
    // is not a point line), never de-aggregated.
    let mut bad_md5 = aggregated(&records[..2]).1;
    *bad_md5.last_mut().unwrap() ^= 0xFF;
    put.push(("u0/kpl-x".into(), bad_md5));
    // Magic and a valid MD5 over bytes that are no protobuf: a corrupt aggregate.
    let body = [0x1A, 0xFF, 0x01];
    let mut corrupt = MAGIC.to_vec();
    corrupt.extend_from_slice(&body);
    corrupt.extend_from_slice(&md5_of(&body));
    put.push(("u0/kpl-y".into(), corrupt));
    let placed = aws.put(stream, &put);

    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::start(
        &dir.path().join("a"),
        &kinesis_source(stream, table, "host-a", ""),
    );
    wait_for_all(&records, &[&host], Duration::from_secs(60));
    assert!(wait_until(Duration::from_secs(10), || host
        .dead_letters()
        .len()
        == 2));
    host.stop();
    assert_eq!(host.documents().len(), records.len());
    let letters = host.dead_letters();
    let position = |i: usize| format!("{}/{}:0", placed[i].shard, placed[i].sequence);
    let n = put.len();
    assert_eq!(
        letters[0]["source_position"],
        position(n - 2),
        "{}",
        letters[0]
    );
    assert!(
        letters[0]["cause"]
            .as_str()
            .unwrap()
            .contains("not a number"),
        "{}",
        letters[0]
    );
    assert_eq!(
        letters[1]["source_position"],
        position(n - 1),
        "{}",
        letters[1]
    );
    assert!(
        letters[1]["cause"]
            .as_str()
            .unwrap()
            .contains("KPL aggregate"),
        "{}",
        letters[1]
    );
    // The checkpoint is the last record, sub-sequence 0 (a plain record).
    let (checkpoint, sub) = checkpoint_of(&aws.leases(table)["shardId-000000000000"]);
    assert_eq!(
        (checkpoint.as_str(), sub),
        (placed[n - 1].sequence.as_str(), 0)
    );
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn resumes_exactly_after_the_checkpoints_of_a_kcl_lease_table() {
    let aws = local_aws("resumes_from_a_kcl_lease_table");
    let (stream, table) = (&unique("kcl"), &unique("kcl-leases"));
    aws.create_stream(stream, 2);
    // Plain records for two trajectories, KPL aggregates of 10 for two others.
    let records = point_records("kcl", 4, 50);
    let (plain, packed): (Vec<PointRecord>, Vec<PointRecord>) = records
        .iter()
        .cloned()
        .partition(|r| r.0.ends_with("-0") || r.0.ends_with("-2"));
    let aggregates: Vec<PointRecord> = packed.chunks(10).map(aggregated).collect();
    // Every user record with where it sits: (shard, sequence, sub-sequence).
    let mut positions: Vec<(&PointRecord, Placed, u64)> = Vec::new();
    for (record, placed) in plain.iter().zip(aws.put(stream, &plain)) {
        positions.push((record, placed, 0));
    }
    for (chunk, placed) in packed.chunks(10).zip(aws.put(stream, &aggregates)) {
        for (sub, record) in chunk.iter().enumerate() {
            positions.push((record, placed.clone(), sub as u64));
        }
    }

    // The table a KCL application (the Spark job) left: owned by a worker that is gone,
    // each shard checkpointed in its middle, at sub-sequence 4 when that is an aggregate.
    create_kcl_table(&aws, table);
    let mut seeded: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let here: Vec<&(&PointRecord, Placed, u64)> =
            positions.iter().filter(|p| p.1.shard == shard).collect();
        let (checkpoint, sub) = match here.get(here.len() / 2) {
            Some((_, placed, sub)) => (placed.sequence.clone(), if *sub > 0 { 4 } else { 0 }),
            None => ("TRIM_HORIZON".into(), 0),
        };
        seed_kcl_lease(&aws, table, shard, &checkpoint, sub);
        seeded.insert(shard.into(), (checkpoint, sub));
    }
    let numeric = |s: &str| (s.len(), s.to_string());
    let expected: HashSet<(String, u32)> = positions
        .iter()
        .filter(|(_, placed, sub)| {
            let (checkpoint, checkpoint_sub) = &seeded[&placed.shard];
            checkpoint == "TRIM_HORIZON"
                || (numeric(&placed.sequence), *sub) > (numeric(checkpoint), *checkpoint_sub)
        })
        .map(|(record, _, _)| record_key(record))
        .collect();
    assert!(expected.len() < records.len() && !expected.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let source = kinesis_source(
        stream,
        table,
        "host-a",
        "failover_time_ms = 1000\ncreate_lease_table = false",
    );
    let mut host = Host::start(&dir.path().join("a"), &source);
    let want = expected.len();
    let done = wait_until(Duration::from_secs(60), || host.documents().len() >= want);
    assert!(
        done,
        "{} of {want}: {}",
        host.documents().len(),
        host.log_text()
    );
    std::thread::sleep(Duration::from_millis(1500));
    host.stop();
    let got: Vec<(String, u32)> = host.documents().iter().map(document_key).collect();
    let got_set: HashSet<(String, u32)> = got.iter().cloned().collect();
    assert_eq!(got.len(), got_set.len(), "no record twice");
    assert_eq!(
        got_set, expected,
        "exactly the records after the seeded checkpoints"
    );
}

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    // The test builds the corrupt aggregate by hand, so it needs the digest itself.
    use md5::Digest;
    md5::Md5::digest(bytes).into()
}

fn create_kcl_table(aws: &LocalAws, table: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    aws.runtime.block_on(async {
        aws.dynamodb
            .create_table()
            .table_name(table)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("leaseKey")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("leaseKey")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
    });
}

/// A lease item as KCL 2.x writes it, held by a worker that no longer runs.
fn seed_kcl_lease(aws: &LocalAws, table: &str, shard: &str, checkpoint: &str, sub: u64) {
    let s = |v: &str| AttributeValue::S(v.into());
    let n = |v: u64| AttributeValue::N(v.to_string());
    aws.runtime.block_on(async {
        aws.dynamodb
            .put_item()
            .table_name(table)
            .item("leaseKey", s(shard))
            .item("leaseOwner", s("spark-streaming-worker-7"))
            .item("leaseCounter", n(4711))
            .item("checkpoint", s(checkpoint))
            .item("checkpointSubSequenceNumber", n(sub))
            .item("ownerSwitchesSinceCheckpoint", n(2))
            .item("startingHashKey", s("0"))
            .item(
                "endingHashKey",
                s("170141183460469231731687303715884105727"),
            )
            .send()
            .await
            .unwrap();
    });
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn shards_without_a_checkpoint_start_at_latest_or_at_a_timestamp() {
    let aws = local_aws("starting_positions");
    let records = point_records("start", 4, 60);
    let (before, after) = records.split_at(records.len() / 2);
    let keys = |records: &[PointRecord]| -> HashSet<(String, u32)> {
        records.iter().map(record_key).collect()
    };

    // AT_TIMESTAMP: only what arrived from the timestamp on.
    let (stream, table) = (&unique("at-ts"), &unique("at-ts-leases"));
    aws.create_stream(stream, 1);
    aws.put(stream, before);
    std::thread::sleep(Duration::from_millis(1500));
    let from = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(500));
    aws.put(stream, after);
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("starting_position = \"AT_TIMESTAMP\"\nstarting_timestamp = {from:?}");
    let mut host = Host::start(
        &dir.path().join("ts"),
        &kinesis_source(stream, table, "host-a", &extra),
    );
    wait_for_all(after, &[&host], Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1000));
    host.stop();
    let got: HashSet<(String, u32)> = host.documents().iter().map(document_key).collect();
    assert_eq!(got, keys(after), "AT_TIMESTAMP {from}");

    // LATEST: nothing put before the lease was created.
    let (stream, table) = (&unique("latest"), &unique("latest-leases"));
    aws.create_stream(stream, 1);
    aws.put(stream, before);
    let extra = "starting_position = \"LATEST\"";
    let mut host = Host::start(
        &dir.path().join("latest"),
        &kinesis_source(stream, table, "host-a", extra),
    );
    let reading = wait_until(Duration::from_secs(30), || {
        aws.owners(table)
            .values()
            .any(|o| o.as_deref() == Some("host-a"))
            && host.log_text().contains("took the lease")
    });
    assert!(reading, "{}", host.log_text());
    std::thread::sleep(Duration::from_millis(1000));
    aws.put(stream, after);
    wait_for_all(after, &[&host], Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1000));
    host.stop();
    let got: HashSet<(String, u32)> = host.documents().iter().map(document_key).collect();
    assert_eq!(got, keys(after), "LATEST");
}
