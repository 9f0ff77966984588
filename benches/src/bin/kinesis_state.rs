//! What checkpointing transform state with the shard costs on the Kinesis path: `waystream
//! run` hosts reading the same stream from `TRIM_HORIZON` to its last record, with
//! `[source] state_bucket` and without, runs alternating, each with a lease table of its own.
//!
//! It talks to the local servers `cargo xtask bench --kinesis` starts (kinesis-mock, moto
//! server; `WAYSTREAM_LOCAL_AWS` and the `AWS_ENDPOINT_URL_*` variables), so its
//! throughput is kinesis-mock's as much as waystream's: what it measures is the
//! difference the state checkpoint makes, not what a real stream gives.
//!
//! ```sh
//! cargo build --release -p waystream -p waystream-benches --bins
//! cargo xtask bench --kinesis     # starts the servers and runs this
//! ```
//!
//! The time of a run is from the host's start to the moment its metrics count every
//! document written (`waystream_documents_written_total`); start-up (lease table, first
//! listing) is in it, the same with state and without.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use clap::Parser;
use waystream_tests::aws::{Host, interleave, kinesis_source, local_aws, point_records, unique};
use waystream_tests::http::get;
use waystream_tests::{Stage, config_text_with_source};

#[derive(Parser)]
struct Args {
    /// Trajectories in the stream.
    #[arg(long, default_value_t = 200)]
    trajectories: usize,
    /// Points per trajectory.
    #[arg(long, default_value_t = 500)]
    points: u32,
    /// Shards of the stream.
    #[arg(long, default_value_t = 4)]
    shards: i32,
    /// Runs of each setting (the best counts).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A stream an earlier run of the same size filled (kinesis-mock takes minutes to take
    /// 100,000 records); by default a new one is created and filled.
    #[arg(long)]
    stream: Option<String>,
}

/// A setting measured: its name in the report and its `[source]` lines.
struct Setting {
    name: String,
    source: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let aws = local_aws("the Kinesis state benchmark");
    let bucket = unique("bench-state");
    aws.create_bucket(&bucket);
    let records = args.trajectories * args.points as usize;
    let stream = match args.stream {
        Some(stream) => stream,
        None => {
            let stream = unique("bench-state");
            aws.create_stream(&stream, args.shards);
            let put = Instant::now();
            aws.put(
                &stream,
                &interleave(&point_records(&stream, args.trajectories, args.points)),
            );
            eprintln!(
                "kinesis_state: put {records} records into {} shards in {:.1} s (name: {stream})",
                args.shards,
                put.elapsed().as_secs_f64()
            );
            stream
        }
    };

    let state = |interval_ms: u32| {
        format!(
            "state_bucket = {bucket:?}\nstate_path_style = true\nstate_interval_ms = {interval_ms}\n"
        )
    };
    let settings = [
        Setting {
            name: "off (no `state_bucket`)".into(),
            source: String::new(),
        },
        Setting {
            name: "on, `state_interval_ms = 10000` (the default)".into(),
            source: state(10_000),
        },
        Setting {
            name: "on, `state_interval_ms = 1000`".into(),
            source: state(1_000),
        },
        Setting {
            name: "on, `state_interval_ms = 200`".into(),
            source: state(200),
        },
    ];
    let work = tempfile::tempdir()?;
    let mut best = vec![f64::MAX; settings.len()];
    for run in 0..args.runs {
        for (i, setting) in settings.iter().enumerate() {
            let out = work.path().join(format!("{i}-{run}"));
            let seconds = read_all(&out, &stream, setting, records)?;
            eprintln!("kinesis_state: run {run}, {}: {seconds:.2} s", setting.name);
            best[i] = best[i].min(seconds);
            std::fs::remove_dir_all(&out)?;
        }
    }

    println!(
        "{} records ({} trajectories × {} points, interleaved) in a {}-shard stream on kinesis-mock, \
         state in moto's S3; one host, parse-plt → geofence → speed → NDJSON; best of {} runs each, alternating:\n",
        records, args.trajectories, args.points, args.shards, args.runs
    );
    println!("| state checkpointing | seconds to the last document | points/s | against off |");
    println!("|---|---:|---:|---:|");
    for (setting, seconds) in settings.iter().zip(&best) {
        println!(
            "| {} | {seconds:.2} | {:.0} | {:+.1} % |",
            setting.name,
            records as f64 / seconds,
            (seconds / best[0] - 1.0) * 100.0
        );
    }
    Ok(())
}

/// Starts a host on `stream` from `TRIM_HORIZON` (a lease table of its own) and times it
/// to its `documents`-th document; stops it.
fn read_all(
    out: &std::path::Path,
    stream: &str,
    setting: &Setting,
    documents: usize,
) -> Result<f64> {
    let source = kinesis_source(
        stream,
        &unique("bench-state-leases"),
        "bench",
        &setting.source,
    );
    let text = config_text_with_source(&source, out, &Stage::standard_chain(), "");
    let started = Instant::now();
    let mut host = Host::start_config(out, &text);
    let limit = Duration::from_secs(600);
    loop {
        ensure!(
            host.running(),
            "the host stopped; its log:\n{}",
            host.log_text()
        );
        let written = documents_written(&host);
        if written >= documents {
            let seconds = started.elapsed().as_secs_f64();
            host.stop();
            ensure!(
                host.dead_letters().is_empty(),
                "dead letters in a benchmark run: {:?}",
                host.dead_letters()
            );
            return Ok(seconds);
        }
        ensure!(
            started.elapsed() < limit,
            "{} of {documents} documents after {limit:?}; the host's log:\n{}",
            written,
            host.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The host's `waystream_documents_written_total`; 0 until its server listens.
fn documents_written(host: &Host) -> usize {
    let Ok((200, metrics)) = get(host.http, "/metrics") else {
        return 0;
    };
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("waystream_documents_written_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as usize)
}
