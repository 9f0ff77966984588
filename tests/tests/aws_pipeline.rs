//! The AWS pipeline end to end on local servers (moto: S3, DynamoDB, Firehose;
//! kinesis-mock: Kinesis), started by `cargo xtask test`: PLT objects in S3 → the ingest
//! Lambda's handler → Kinesis → a `waystream run` host → Firehose → S3, with dead letters
//! in their own bucket; and `waystream replay`'s pacing.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use aws_sdk_kinesis::types::ShardIteratorType;
use waystream_aws::ingest::{Clients, S3Event, handle_s3_event};
use waystream_contract::document::point_id::point_id_hex;
use waystream_tests::aws::{Host, LocalAws, local_aws, unique, wait_until, waystream_binary};
use waystream_tests::http::{observations, scrape, value};
use waystream_tests::{PLT_HEADER, Stage, chain_text, demo_zones, module, plt_line, workspace};

fn put_object(aws: &LocalAws, bucket: &str, key: &str, body: Vec<u8>) {
    aws.runtime
        .block_on(
            aws.s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into())
                .send(),
        )
        .unwrap();
}

/// A Firehose delivery stream writing to `bucket`.
fn create_delivery_stream(aws: &LocalAws, name: &str, bucket: &str) {
    use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn("arn:aws:iam::123456789012:role/firehose")
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .prefix("points/")
        .build()
        .unwrap();
    aws.runtime
        .block_on(
            aws.firehose
                .create_delivery_stream()
                .delivery_stream_name(name)
                .delivery_stream_type(DeliveryStreamType::DirectPut)
                .extended_s3_destination_configuration(destination)
                .send(),
        )
        .unwrap();
}

/// A PLT file of `points` points, 5 s apart; `bad` (if any) replaces that point's line.
fn plt(points: u32, offset: f64, bad: Option<u32>) -> Vec<u8> {
    let mut text = PLT_HEADER.to_string();
    for i in 0..points {
        let line = match bad {
            Some(b) if b == i => {
                "39.9,this is no longitude,0,100,39744.1,2008-10-23,02:00:00".to_string()
            }
            _ => plt_line(39.90 + offset, 116.30 + i as f64 * 0.0003, 100.0, i * 5),
        };
        text.push_str(&line);
        text.push_str("\r\n");
    }
    text.into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn plt_objects_in_s3_arrive_in_firehose_and_bad_lines_in_the_dead_letter_bucket() {
    let aws = local_aws("aws_pipeline_end_to_end");
    let (stream, table) = (unique("e2e"), unique("e2e-leases"));
    let (input, delivered, dead) = (
        unique("e2e-input"),
        unique("e2e-delivered"),
        unique("e2e-dead"),
    );
    let delivery_stream = unique("e2e-points");
    aws.create_stream(&stream, 2);
    for bucket in [&input, &delivered, &dead] {
        aws.create_bucket(bucket);
    }
    create_delivery_stream(&aws, &delivery_stream, &delivered);

    // Six trajectories: one gzipped, one with a bad line; plus a key outside the layout.
    let mut expected: HashSet<String> = HashSet::new();
    let mut keys = Vec::new();
    for t in 0..6u32 {
        let (user, id) = (format!("{:03}", t % 3), format!("2008102302{t:04}"));
        let bad = (t == 4).then_some(17);
        let mut body = plt(150, t as f64 * 0.01, bad);
        let mut key = format!("Data/{user}/Trajectory/{id}.plt");
        if t == 2 {
            body = gzip(&body);
            key.push_str(".gz");
        }
        put_object(&aws, &input, &key, body);
        keys.push(key);
        expected.extend(
            (0..150)
                .filter(|&s| bad != Some(s))
                .map(|s| point_id_hex(&user, &id, s)),
        );
    }
    put_object(&aws, &input, "uploads/notes.plt", plt(3, 0.0, None));
    keys.push("uploads/notes.plt".into());

    // The Lambda handler on the S3 event.
    let records: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| {
            // An S3 notification as AWS sends it.
            serde_json::json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-25T03:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": { "principalId": "AWS:TEST" },
                "requestParameters": { "sourceIPAddress": "127.0.0.1" },
                "responseElements": { "x-amz-request-id": "TEST", "x-amz-id-2": "TEST" },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ingest",
                    "bucket": { "name": input, "ownerIdentity": { "principalId": "TEST" }, "arn": format!("arn:aws:s3:::{input}") },
                    "object": { "key": key.replace(' ', "+"), "size": 1, "eTag": "0", "sequencer": "0" }
                }
            })
        })
        .collect();
    let event: S3Event = serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
    let result = aws.runtime.block_on(async {
        let clients = Clients::from_env(&stream, true).unwrap();
        handle_s3_event(&clients, &event).await
    });
    let error = format!("{:#}", result.unwrap_err());
    assert!(
        error.contains("uploads/notes.plt") && error.contains("Geolife layout"),
        "{error}"
    );
    assert!(
        error.starts_with("1 object(s)"),
        "the six good objects were ingested: {error}"
    );

    // The host: Kinesis → chain → Firehose, dead letters to S3.
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "batch_size = 200\n[source]\ntype = \"kinesis\"\nstream = {stream:?}\nlease_table = {table:?}\n\
         poll_interval_ms = 200\n{}",
        chain_text(&Stage::standard_chain())
    );
    config += &format!(
        "[sink]\ntype = \"firehose\"\ndelivery_stream = {delivery_stream:?}\n\
         [dead_letter]\ntype = \"s3\"\nbucket = {dead:?}\nprefix = \"dead/\"\npath_style = true\n"
    );
    let mut host = Host::start_config(dir.path(), &config);
    let arrived = |aws: &LocalAws| -> Vec<serde_json::Value> {
        aws.objects(&delivered)
            .values()
            .flat_map(|body| {
                assert!(body.ends_with('\n'), "every record ends its line");
                body.lines()
                    .map(|line| {
                        serde_json::from_str::<serde_json::Value>(line)
                            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let all = wait_until(Duration::from_secs(90), || {
        let ids: HashSet<String> = arrived(&aws)
            .iter()
            .map(|d| d["point_id"].as_str().unwrap().to_string())
            .collect();
        expected.is_subset(&ids) || !host.running()
    });
    let documents = arrived(&aws);
    let ids: HashSet<String> = documents
        .iter()
        .map(|d| d["point_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        all && expected.is_subset(&ids),
        "{} of {} points arrived; log:\n{}",
        ids.len(),
        expected.len(),
        host.log_text()
    );
    assert_eq!(ids.len(), expected.len(), "nothing but the expected points");
    // The host's metrics saw the same: every document written, Firehose called.
    let metrics = scrape(host.http);
    assert_eq!(
        value(&metrics, "waystream_documents_written_total", &[]),
        expected.len() as f64
    );
    assert!(value(&metrics, "waystream_sink_calls_total", &[]) >= 1.0);
    // The ages are observed when the source hears of the acknowledgement (its next batch).
    let aged = wait_until(Duration::from_secs(10), || {
        observations(&scrape(host.http), "waystream_record_age_seconds", None) > 0.0
    });
    assert!(aged, "no record age observed at the sink's acknowledgement");
    host.stop();

    // One single-line document per record: no record held a newline of its own.
    for document in &documents {
        assert!(document["location"]["lat"].is_number(), "{document}");
    }
    let letters: Vec<serde_json::Value> = aws
        .objects(&dead)
        .iter()
        .inspect(|(key, _)| {
            assert!(
                key.starts_with("dead/") && key.ends_with(".ndjson"),
                "{key}"
            )
        })
        .flat_map(|(_, body)| {
            body.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["module"], "parse-plt");
    assert_eq!(letters[0]["seq"], 17);
    assert!(
        letters[0]["line"]
            .as_str()
            .unwrap()
            .contains("this is no longitude")
    );
    assert!(!letters[0]["cause"].as_str().unwrap().is_empty());
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn replay_at_60x_keeps_the_relative_timing_of_a_trajectory() {
    let aws = local_aws("replay_at_60x");
    let stream = unique("replay");
    aws.create_stream(&stream, 1);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Data/007/Trajectory");
    std::fs::create_dir_all(&folder).unwrap();
    // Nine points 30 s apart: 240 s of trajectory, 4 s at × 60.
    let mut text = PLT_HEADER.to_string();
    for i in 0..9 {
        text += &plt_line(39.9, 116.3 + i as f64 * 0.001, 100.0, i * 30);
        text += "\r\n";
    }
    std::fs::write(folder.join("walk.plt"), text).unwrap();

    let status = Command::new(waystream_binary())
        .args(["replay", "--quiet", "--speed", "60", "--stream", &stream])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());

    // When each point arrived in the stream (one aggregate per point at this pace).
    let arrivals: Vec<f64> = aws.runtime.block_on(async {
        let iterator = aws
            .kinesis
            .get_shard_iterator()
            .stream_name(&stream)
            .shard_id("shardId-000000000000")
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let records = aws
            .kinesis
            .get_records()
            .shard_iterator(iterator.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        records
            .records()
            .iter()
            .map(|r| r.approximate_arrival_timestamp().unwrap().as_secs_f64())
            .collect()
    });
    assert_eq!(arrivals.len(), 9, "one record per point");
    let span = arrivals[8] - arrivals[0];
    eprintln!("replay ×60: 240 s of points arrived over {span:.3} s (4 s expected)");
    assert!((span - 4.0).abs() <= 0.4, "span {span:.3} s");
    for (i, arrival) in arrivals.iter().enumerate() {
        let expected = i as f64 * 0.5;
        assert!(
            (arrival - arrivals[0] - expected).abs() <= 0.4,
            "point {i} at {:.3} s, expected {expected} s",
            arrival - arrivals[0]
        );
    }
}

/// Deploys `deploy/waystream.yaml` into moto server's CloudFormation (through
/// `deploy/tests/moto_deploy.py`, which drops the resource types moto lacks) and returns
/// the stack's outputs.
fn deploy_stack_into_moto(prefix: &str) -> HashMap<String, String> {
    let python = std::env::var("WAYSTREAM_DEPLOY_PYTHON")
        .expect("WAYSTREAM_DEPLOY_PYTHON: the virtualenv with boto3 and cfn-lint (cargo xtask test sets it)");
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").unwrap();
    let out = Command::new(python)
        .arg(workspace().join("deploy/tests/moto_deploy.py"))
        .args(["--endpoint", &endpoint, "--stack-name"])
        .arg(format!("{prefix}-stack"))
        .arg("--artifacts-bucket")
        .arg(format!("{prefix}-artifacts"))
        .arg("--param")
        .arg(format!("NamePrefix={prefix}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the stack did not deploy into moto:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<HashMap<String, String>>(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs the local AWS servers: `cargo xtask test` starts them and runs it"]
fn a_host_configured_from_the_stack_outputs_delivers_an_uploaded_file() {
    let aws = local_aws("stack_outputs");
    let prefix = unique("ws");
    let outputs = deploy_stack_into_moto(&prefix);
    let name = |key: &str| {
        outputs
            .get(key)
            .unwrap_or_else(|| panic!("no {key} output in {outputs:?}"))
            .clone()
    };
    let (stream, table, upload, dead) = (
        name("StreamName"),
        name("LeaseTableName"),
        name("UploadBucketName"),
        name("DeadLetterBucketName"),
    );
    // What the local servers stand in for: Kinesis is kinesis-mock here (moto's Kinesis
    // mishandles resharding), so the stack's stream is made there too; moto has no
    // Firehose resource for CloudFormation, so the delivery stream is made with the name
    // the template gives it, delivering to a bucket the test reads.
    aws.create_stream(&stream, 1);
    let delivery_stream = format!("{prefix}-points");
    let delivered = unique("stack-delivered");
    aws.create_bucket(&delivered);
    create_delivery_stream(&aws, &delivery_stream, &delivered);

    // A file uploaded where the stack's S3 trigger listens, and the Lambda's handler on
    // the event S3 would send.
    let key = "Data/042/Trajectory/20081023025304.plt";
    put_object(&aws, &upload, key, plt(80, 0.0, None));
    let event: S3Event = serde_json::from_value(serde_json::json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-04T03:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "AWS:TEST" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": { "x-amz-request-id": "TEST", "x-amz-id-2": "TEST" },
        "s3": { "s3SchemaVersion": "1.0", "configurationId": "ingest",
            "bucket": { "name": upload, "ownerIdentity": { "principalId": "TEST" }, "arn": format!("arn:aws:s3:::{upload}") },
            "object": { "key": key, "size": 1, "eTag": "0", "sequencer": "0" } }
    }]}))
    .unwrap();
    let put = aws.runtime.block_on(async {
        let clients = Clients::from_env(&stream, true).unwrap();
        handle_s3_event(&clients, &event).await
    });
    assert_eq!(put.unwrap().lines, 80);

    // The host's config: deploy/host/pipeline-aws.toml filled in as the EMR bootstrap
    // action fills it, with the modules and zones of this checkout.
    let template =
        std::fs::read_to_string(workspace().join("deploy/host/pipeline-aws.toml")).unwrap();
    let config = template
        .replace("@STREAM@", &stream)
        .replace("@LEASE_TABLE@", &table)
        .replace("@DELIVERY_STREAM@", &delivery_stream)
        .replace("@DEAD_LETTER_BUCKET@", &dead)
        .replace(
            "/opt/waystream/modules/",
            &format!("{}/", module("speed").parent().unwrap().display()),
        )
        .replace(
            "/opt/waystream/zones/zones.geojson",
            &demo_zones().display().to_string(),
        )
        .replace(
            "prefix = \"dead-letters/\"",
            "prefix = \"dead-letters/\"\npath_style = true",
        );
    let left = config.split('@').skip(1).step_by(2).find(|token| {
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    });
    assert_eq!(left, None, "a placeholder left in {config}");
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::start_config(dir.path(), &config);
    let expected: HashSet<String> = (0..80)
        .map(|s| point_id_hex("042", "20081023025304", s))
        .collect();
    let arrived = || -> HashSet<String> {
        aws.objects(&delivered)
            .values()
            .flat_map(|body| body.lines().map(str::to_string).collect::<Vec<_>>())
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(&line).unwrap()["point_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let all = wait_until(Duration::from_secs(90), || {
        expected.is_subset(&arrived()) || !host.running()
    });
    assert!(
        all,
        "{} of 80 points; log:\n{}",
        arrived().len(),
        host.log_text()
    );
    host.stop();
}
