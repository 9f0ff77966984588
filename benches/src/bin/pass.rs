//! One pass of one measurement, for profilers: the machine this project runs on varies by
//! ±15 % from one second to the next, so comparisons of small changes use instruction
//! counts (`valgrind --tool=callgrind`), which repeat exactly, or `perf record`, on one
//! thing at a time rather than on the whole of `bench`.
//!
//! ```sh
//! cargo build --release -p waystream-benches --bin pass
//! valgrind --tool=callgrind --toggle-collect='pass::measured*' \
//!     target/release/pass chain-wasm --data DIR --zones Z12 --modules target/modules
//! ```
//!
//! Everything outside [`measured`] (reading the data, compiling the modules, converting
//! batches for the native path) is left out by the `--toggle-collect` pattern.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use waystream::chain::Chain;
use waystream::engine::bindings as host;
use waystream::engine::{Engine, Instance, Limits};
use waystream_benches::*;
use waystream_guest::{self as guest, Transform};

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum What {
    /// parse-plt → geofence → speed through the host's chain.
    ChainWasm,
    /// The same with `call_timeout_ms = 0` (no deadline checks in the compiled code).
    ChainWasmUntimed,
    /// The three transforms natively, one after the other.
    ChainNative,
    /// parse-plt alone in Wasm.
    ParseWasm,
    /// parse-plt alone natively.
    ParseNative,
}

#[derive(Parser)]
struct Args {
    what: What,
    /// Folder of PLT files.
    #[arg(long)]
    data: PathBuf,
    /// The zones GeoJSON for geofence.
    #[arg(long)]
    zones: PathBuf,
    /// Folder of the built components.
    #[arg(long, default_value = "target/modules")]
    modules: PathBuf,
    /// Lines per batch.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    passes: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let lines = read_batches(&args.data, args.batch)?;
    let zones = zones_config(&args.zones)?;
    let timeout = if args.what == What::ChainWasmUntimed {
        0
    } else {
        Limits::default().call_timeout_ms
    };
    let engine = Engine::new(Limits {
        call_timeout_ms: timeout,
        ..Limits::default()
    })?;
    // One closure per measurement: a whole timed pass over the data (inputs converted
    // before the clock starts), returning the points out and the time.
    type Pass<'a> = Box<dyn FnMut() -> Result<(usize, Duration)> + 'a>;
    let mut pass: Pass = match args.what {
        What::ChainWasm | What::ChainWasmUntimed => {
            let modules = chain_modules(&engine, &args.modules, &zones)?;
            let mut chain = Chain::new(engine.clone(), modules)?;
            Box::new(move || timed(|| Ok(measured::chain_wasm(&mut chain, &lines))))
        }
        What::ChainNative => {
            let mut chain = NativeChain::new(&zones)?;
            Box::new(move || {
                let inputs = guest_batches(&lines);
                timed(|| measured::chain_native(&mut chain, inputs))
            })
        }
        What::ParseWasm => {
            let parse = load_module(&engine, &args.modules, "parse-plt", "{}")?;
            let mut instance = Instance::new(&engine, parse)?;
            let engine = engine.clone();
            Box::new(move || timed(|| measured::stage_wasm(&engine, &mut instance, &lines)))
        }
        What::ParseNative => {
            let mut parse = parse_plt::ParsePlt;
            Box::new(move || {
                let inputs = guest_batches(&lines);
                timed(|| measured::stage_native(&mut parse, inputs))
            })
        }
    };
    let mut best = Duration::MAX;
    let mut points = 0;
    for _ in 0..args.passes {
        let (out, took) = pass()?;
        (points, best) = (out, best.min(took));
    }
    println!(
        "{points} points per pass, best of {} passes {best:.3?}: {:.0} points/s",
        args.passes,
        rate(points, best)
    );
    Ok(())
}

/// The batches in the guest SDK's types, for a native pass.
fn guest_batches(lines: &[host::Batch]) -> Vec<guest::Batch> {
    lines.iter().map(to_guest).collect()
}

/// The measured work, kept out of line so a profiler can select it by name.
mod measured {
    use super::*;

    #[inline(never)]
    pub fn chain_wasm(chain: &mut Chain, lines: &[host::Batch]) -> usize {
        lines
            .iter()
            .map(|batch| chain.run(batch.clone(), &mut Vec::new()).points.len())
            .sum()
    }

    #[inline(never)]
    pub fn chain_native(chain: &mut NativeChain, inputs: Vec<guest::Batch>) -> Result<usize> {
        inputs.into_iter().map(|batch| chain.run(batch)).sum()
    }

    #[inline(never)]
    pub fn stage_wasm(
        engine: &Engine,
        instance: &mut Instance,
        inputs: &[host::Batch],
    ) -> Result<usize> {
        let mut points = 0;
        for batch in inputs {
            let out = instance
                .process(engine, batch)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            points += out.points.len();
        }
        Ok(points)
    }

    #[inline(never)]
    pub fn stage_native(
        transform: &mut impl Transform,
        inputs: Vec<guest::Batch>,
    ) -> Result<usize> {
        let mut points = 0;
        for batch in inputs {
            points += transform
                .process(batch)
                .map_err(anyhow::Error::msg)?
                .points
                .len();
        }
        Ok(points)
    }
}
