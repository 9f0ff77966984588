//! The in-process measurements of `cargo xtask bench`: each transform and the whole chain
//! in Wasm (through the host's engine and chain) and natively (the same Rust logic as a
//! library), geofence with 2,500 zones against 12, document encoding, and the hot-swap
//! pause. Each Wasm / native pair is the fastest of five passes each, the two alternating.
//! Prints Markdown table rows; `cargo xtask bench` adds the end-to-end runs, the machine
//! and the data set, and writes BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release -p waystream-benches --bin bench -- --data DIR --zones Z12 --grid Z2500 --modules target/modules
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use waystream::chain::{Chain, ChainOutput};
use waystream::engine::bindings as host;
use waystream::engine::{Engine, Instance, Limits, Module};
use waystream::sinks::{FirehoseConfig, FirehoseSink, Sink};
use waystream::status::Outcome;
use waystream_aws::firehose::{FirehoseClient, PutError};
use waystream_benches::*;
use waystream_contract::document::{DocumentEncoder, Encoded};
use waystream_guest::{self as guest, Transform};

#[derive(Parser)]
struct Args {
    /// Folder of PLT files.
    #[arg(long)]
    data: PathBuf,
    /// The 12-zone GeoJSON.
    #[arg(long)]
    zones: PathBuf,
    /// The 2,500-zone GeoJSON.
    #[arg(long)]
    grid: PathBuf,
    /// Folder of the built components.
    #[arg(long, default_value = "target/modules")]
    modules: PathBuf,
    /// Lines per batch.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Hot swaps to time.
    #[arg(long, default_value_t = 20)]
    swaps: usize,
}

/// One line of the table.
struct Row {
    what: &'static str,
    records: usize,
    wasm: Duration,
    native: Option<Duration>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let engine = Engine::new(Limits::default())?;
    let load = |name: &str, config: &str| load_module(&engine, &args.modules, name, config);
    let zones12 = zones_config(&args.zones)?;
    let zones2500 = zones_config(&args.grid)?;
    let lines = read_batches(&args.data, args.batch)?;
    let n: usize = lines.iter().map(host::Batch::len).sum();
    let mut rows = Vec::new();

    // Each module alone, fed what the module before it produced.
    let parse = load("parse-plt", "{}")?;
    let (parse_wasm, parse_native) = alternate(
        || wasm_stage(&engine, parse.clone(), &lines, Keep::Nothing),
        || native_stage::<parse_plt::ParsePlt>("{}", &lines),
    )?;
    let (points, _) = wasm_stage(&engine, parse.clone(), &lines, Keep::Outputs)?;
    rows.push(Row {
        what: "parse-plt",
        records: n,
        wasm: parse_wasm,
        native: Some(parse_native),
    });
    let m: usize = points.iter().map(host::Batch::len).sum();
    for (what, config) in [
        ("geofence, 12 zones", &zones12),
        ("geofence, 2,500 zones", &zones2500),
    ] {
        let fence = load("geofence", config)?;
        let (wasm, native) = alternate(
            || wasm_stage(&engine, fence.clone(), &points, Keep::Nothing),
            || native_stage::<geofence::Geofence>(config, &points),
        )?;
        rows.push(Row {
            what,
            records: m,
            wasm,
            native: Some(native),
        });
    }
    let speed = load("speed", "{}")?;
    let (speed_wasm, speed_native) = alternate(
        || wasm_stage(&engine, speed.clone(), &points, Keep::Nothing),
        || native_stage::<speed::Speed>("{}", &points),
    )?;
    rows.push(Row {
        what: "speed",
        records: m,
        wasm: speed_wasm,
        native: Some(speed_native),
    });

    // The whole chain: the host's chain (accounting checks included) against the three
    // transforms called one after the other.
    let modules = chain_modules(&engine, &args.modules, &zones12)?;
    let (chain_wasm, chain_native) = alternate(
        || wasm_chain(&engine, &modules, &lines, Keep::Nothing),
        || native_chain(&lines, &zones12),
    )?;
    let ((mut chain, outputs), _) = wasm_chain(&engine, &modules, &lines, Keep::Outputs)?;
    rows.push(Row {
        what: "chain parse-plt → geofence (12) → speed",
        records: n,
        wasm: chain_wasm,
        native: Some(chain_native),
    });
    // The same without a call time limit: modules compiled without deadline checks.
    let untimed = Engine::new(Limits {
        call_timeout_ms: 0,
        ..Limits::default()
    })?;
    let untimed_modules = chain_modules(&untimed, &args.modules, &zones12)?;
    let (untimed_wasm, untimed_native) = alternate(
        || wasm_chain(&untimed, &untimed_modules, &lines, Keep::Nothing),
        || native_chain(&lines, &zones12),
    )?;
    rows.push(Row {
        what: "the chain with `call_timeout_ms = 0` (no deadline checks)",
        records: n,
        wasm: untimed_wasm,
        native: Some(untimed_native),
    });

    // Document encoding (what every sink does per point).
    let mut encoder = DocumentEncoder::default();
    let mut encoded = Encoded::default();
    let (mut docs, mut bytes, mut encoding) = (0, 0, Duration::ZERO);
    for out in &outputs {
        let (_, took) = timed(|| {
            encoder.encode(
                &out.batch.trajectories,
                &out.zone_sets,
                out.points.iter(),
                &mut encoded,
            );
            Ok(())
        })?;
        encoding += took;
        docs += encoded.len();
        bytes += encoded.bytes.len();
    }

    println!("| measurement | records | Wasm records/s | native records/s | Wasm / native |");
    println!("|---|---:|---:|---:|---:|");
    for row in &rows {
        let wasm = rate(row.records, row.wasm);
        let native = row.native.map(|d| rate(row.records, d));
        println!(
            "| {} | {} | {:.0} | {} | {} |",
            row.what,
            row.records,
            wasm,
            native.map_or("-".into(), |v| format!("{v:.0}")),
            native.map_or("-".into(), |v| format!("{:.2}", wasm / v)),
        );
    }
    let ratio_2500 = rate(m, rows[2].wasm) / rate(m, rows[1].wasm);
    println!();
    println!("- geofence 2,500 zones / 12 zones (Wasm): {ratio_2500:.2}");
    println!(
        "- document encoding: {:.0} documents/s, {:.1} MB/s ({docs} documents, {:.1} MB)",
        rate(docs, encoding),
        bytes as f64 / 1e6 / encoding.as_secs_f64().max(1e-9),
        bytes as f64 / 1e6
    );
    let (records, megabytes, took) = firehose_sink(&outputs)?;
    println!(
        "- Firehose sink, encoding + batching in-process (PutRecordBatch to a client that accepts everything): {:.0} records/s, {:.1} MB/s ({records} records, {megabytes:.1} MB)",
        rate(records, took),
        megabytes / took.as_secs_f64().max(1e-9)
    );
    let (median, worst) = swap_pauses(&engine, &mut chain, &lines, &args, &zones12)?;
    println!(
        "- hot swap of geofence at a batch boundary (snapshot + restore; the new version was instantiated when it was loaded; state of {} trajectories): median {median:.2?}, worst {worst:.2?} over {} swaps",
        lines
            .iter()
            .flat_map(|b| &b.trajectories)
            .map(|t| (&t.user, &t.id))
            .collect::<std::collections::HashSet<_>>()
            .len(),
        args.swaps
    );
    Ok(())
}

/// A Firehose that accepts every record, to time the sink's own work.
struct AcceptAll;

impl FirehoseClient for AcceptAll {
    fn put_record_batch(&mut self, records: &[&[u8]]) -> Result<Vec<Option<String>>, PutError> {
        Ok(vec![None; records.len()])
    }
}

/// Encodes the chain's outputs and sends them through a [`FirehoseSink`] on
/// [`AcceptAll`]: (records, MB, time).
fn firehose_sink(outputs: &[ChainOutput]) -> Result<(usize, f64, Duration)> {
    let config = FirehoseConfig {
        delivery_stream: "bench".into(),
        retry_base_ms: 1,
        max_backoff_ms: 1,
        backpressure_after: 1,
    };
    let mut sink = FirehoseSink::new(AcceptAll, config, Default::default());
    let stats = sink.stats();
    let mut encoder = DocumentEncoder::default();
    let mut encoded = Encoded::default();
    let ((), took) = timed(|| {
        for out in outputs {
            encoder.encode(
                &out.batch.trajectories,
                &out.zone_sets,
                out.points.iter(),
                &mut encoded,
            );
            Sink::write(&mut sink, &encoded)?;
        }
        Sink::flush(&mut sink)
    })?;
    let records = stats
        .records_accepted
        .load(std::sync::atomic::Ordering::Relaxed) as usize;
    let bytes = stats
        .bytes_accepted
        .load(std::sync::atomic::Ordering::Relaxed);
    Ok((records, bytes as f64 / 1e6, took))
}

/// Passes over the data per measurement; the fastest counts.
const REPEATS: usize = 5;

/// The best time of `wasm` and of `native` (each a measured pass) over [`REPEATS`] rounds
/// of one pass each, alternating: this kind of machine varies by ±15 % from one second to
/// the next, and alternating gives both sides the same share of its slow moments.
fn alternate<A, B>(
    mut wasm: impl FnMut() -> Result<(A, Duration)>,
    mut native: impl FnMut() -> Result<(B, Duration)>,
) -> Result<(Duration, Duration)> {
    let (mut best_wasm, mut best_native) = (Duration::MAX, Duration::MAX);
    for _ in 0..REPEATS {
        best_wasm = best_wasm.min(wasm()?.1);
        best_native = best_native.min(native()?.1);
    }
    Ok((best_wasm, best_native))
}

/// Whether a pass keeps what it produces. Timed passes drop each output as soon as it is
/// made, as the pipeline does: keeping 2.8 M points makes every batch's allocation land on
/// fresh pages, and the page faults were a tenth of the Wasm figures.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    Outputs,
    Nothing,
}

/// The host's chain (as `waystream run` uses it) over every batch.
fn wasm_chain(
    engine: &Arc<Engine>,
    modules: &[Arc<Module>],
    lines: &[host::Batch],
    keep: Keep,
) -> Result<((Chain, Vec<ChainOutput>), Duration)> {
    let mut chain = Chain::new(engine.clone(), modules.to_vec())?;
    let mut outputs = Vec::new();
    let mut busy = Duration::ZERO;
    for batch in lines {
        let input = batch.clone();
        let mut dead = Vec::new();
        let (out, took) = timed(|| Ok(chain.run(input, &mut dead)))?;
        busy += took;
        if keep == Keep::Outputs {
            outputs.push(out);
        }
    }
    Ok(((chain, outputs), busy))
}

/// One module alone over `inputs`; returns its outputs (the next module's inputs) when
/// asked to keep them.
fn wasm_stage(
    engine: &Arc<Engine>,
    module: Arc<Module>,
    inputs: &[host::Batch],
    keep: Keep,
) -> Result<(Vec<host::Batch>, Duration)> {
    let mut instance = Instance::new(engine, module)?;
    let mut outputs = Vec::new();
    let mut busy = Duration::ZERO;
    for batch in inputs {
        let (out, took) = timed(|| {
            instance
                .process(engine, batch)
                .map_err(|e| anyhow::anyhow!("{e}"))
        })?;
        busy += took;
        if keep == Keep::Outputs {
            outputs.push(with_points(batch, out.points, out.zone_sets));
        }
    }
    Ok((outputs, busy))
}

/// The same transform natively on the same batches (converted before the clock starts).
fn native_stage<T: Transform>(config: &str, inputs: &[host::Batch]) -> Result<(usize, Duration)> {
    let mut transform = T::init(config).map_err(anyhow::Error::msg)?;
    let inputs: Vec<guest::Batch> = inputs.iter().map(to_guest).collect();
    let mut busy = Duration::ZERO;
    let mut points = 0;
    for batch in inputs {
        let (out, took) = timed(|| transform.process(batch).map_err(anyhow::Error::msg))?;
        busy += took;
        points += out.points.len();
    }
    Ok((points, busy))
}

/// parse-plt, geofence and speed called natively one after the other on every batch.
fn native_chain(lines: &[host::Batch], zones: &str) -> Result<((), Duration)> {
    let mut chain = NativeChain::new(zones)?;
    let inputs: Vec<guest::Batch> = lines.iter().map(to_guest).collect();
    let mut busy = Duration::ZERO;
    for batch in inputs {
        let (_, took) = timed(|| chain.run(batch))?;
        busy += took;
    }
    Ok(((), busy))
}

/// Swaps geofence into `chain` between batches; returns the median and worst pause.
fn swap_pauses(
    engine: &Arc<Engine>,
    chain: &mut Chain,
    lines: &[host::Batch],
    args: &Args,
    zones: &str,
) -> Result<(Duration, Duration)> {
    let path = args.modules.join("geofence.wasm");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    for (i, batch) in lines.iter().cycle().take(args.swaps).enumerate() {
        // Another build each time: a swap to the running version is a no-op.
        let build = waystream_tests::component_variant(&bytes, i as u64);
        let module = Module::from_bytes(
            engine,
            "geofence",
            &path,
            &build,
            zones.to_string(),
            i as u64 + 2,
        )?;
        chain.swap(module, None);
        chain.run(batch.clone(), &mut Vec::new());
    }
    let mut pauses: Vec<Duration> = chain
        .reload_status()
        .events()
        .into_iter()
        .filter_map(|e| match e.outcome {
            Outcome::Activated { pause, .. } => Some(pause),
            _ => None,
        })
        .collect();
    anyhow::ensure!(
        pauses.len() == args.swaps,
        "{} of {} swaps activated",
        pauses.len(),
        args.swaps
    );
    pauses.sort();
    Ok((pauses[pauses.len() / 2], pauses[pauses.len() - 1]))
}
