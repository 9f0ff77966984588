//! parse-plt in Wasm (through the host, batch by batch) against the same parser compiled
//! natively, on the same lines.
//!
//! ```sh
//! cargo xtask build-transforms
//! cargo run --release -p waystream-benches --bin parse-wasm-vs-native -- <folder of .plt files> [batch size]
//! ```

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use waystream::engine::bindings::Records;
use waystream::engine::{Engine, Instance, Limits, Module};
use waystream::sources::{FilesSource, FilesSourceConfig, Source};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let input = args
        .next()
        .context("usage: parse-wasm-vs-native <folder> [batch size]")?;
    let batch_size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1024);

    // Read every batch first: both sides parse the same in-memory lines.
    let config = FilesSourceConfig {
        path: input.clone().into(),
        header_lines: 6,
        extension: "plt".into(),
    };
    let mut source = FilesSource::open(&config, Path::new("."), batch_size)?;
    let mut batches = Vec::new();
    while let Some(batch) = source.next_batch()? {
        batches.push(batch);
    }
    let lines: usize = batches.iter().map(|b| b.len()).sum();

    let started = Instant::now();
    let mut native_points = 0usize;
    for batch in &batches {
        let Records::Lines(raw) = &batch.records else {
            unreachable!("the files source yields lines")
        };
        let mut start = 0usize;
        for line in &raw.lines {
            let end = line.end as usize;
            native_points += usize::from(parse_plt::parse_line(&raw.data[start..end]).is_ok());
            start = end;
        }
    }
    let native = started.elapsed();

    let engine = Engine::new(Limits::default())?;
    let module_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/modules/parse-plt.wasm");
    let module = Module::load(&engine, "parse-plt", &module_path, "{}".into())?;
    let mut instance = Instance::new(&engine, module)?;
    let started = Instant::now();
    let mut wasm_points = 0usize;
    for batch in &batches {
        let out = instance
            .process(&engine, batch)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        wasm_points += out.points.len();
    }
    let wasm = started.elapsed();

    anyhow::ensure!(
        native_points == wasm_points,
        "native {native_points} points, Wasm {wasm_points}"
    );
    let rate = |d: std::time::Duration| lines as f64 / d.as_secs_f64();
    println!("input: {input} ({lines} lines, batch size {batch_size})");
    println!(
        "native parse-plt: {:>12.0} lines/s ({:.3} s)",
        rate(native),
        native.as_secs_f64()
    );
    println!(
        "Wasm parse-plt:   {:>12.0} lines/s ({:.3} s)",
        rate(wasm),
        wasm.as_secs_f64()
    );
    println!(
        "Wasm / native:    {:>12.2}",
        native.as_secs_f64() / wasm.as_secs_f64()
    );
    Ok(())
}
