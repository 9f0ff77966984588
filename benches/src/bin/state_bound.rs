//! Memory with bounded state: many short trajectories through the host's chain
//! (parse-plt → geofence → speed), with `[state] max_trajectories` set or not, printing the
//! process's resident memory as the count of trajectories seen grows.
//!
//! ```sh
//! cargo build --release -p waystream-benches --bin state_bound
//! target/release/state_bound --zones zones/beijing-demo.geojson --max-trajectories 200000
//! target/release/state_bound --zones zones/beijing-demo.geojson --max-trajectories 0
//! ```
//!
//! With a bound, RSS stops growing once the bound is reached (the guests' allocators reuse
//! what dropped trajectories freed; linear memory never shrinks, so it stays at its peak);
//! without one, it grows with every trajectory: the difference per trajectory is what one
//! trajectory's state costs. `cargo xtask bench --state` runs both, each in a process of
//! its own.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use waystream::chain::{Chain, StateConfig};
use waystream::engine::bindings::{Batch, RawLines, Records, Trajectory};
use waystream::engine::{Engine, Limits};
use waystream::summary::resident_bytes;
use waystream_benches::{chain_modules, zones_config};
use waystream_tests::plt_line;

#[derive(Parser)]
struct Args {
    /// The zones GeoJSON for geofence.
    #[arg(long)]
    zones: PathBuf,
    /// Folder of the built components.
    #[arg(long, default_value = "target/modules")]
    modules: PathBuf,
    /// Trajectories to run, each in one batch of its own points.
    #[arg(long, default_value_t = 2_000_000)]
    trajectories: usize,
    /// Points per trajectory.
    #[arg(long, default_value_t = 4)]
    points: u32,
    /// Trajectories per batch.
    #[arg(long, default_value_t = 256)]
    per_batch: usize,
    /// `[state] max_trajectories`; 0 = no bound.
    #[arg(long, default_value_t = 200_000)]
    max_trajectories: usize,
    /// Lines of RSS figures printed over the run.
    #[arg(long, default_value_t = 10)]
    samples: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let engine = Engine::new(Limits {
        // Unbounded, a module's state outgrows the default 256 MiB; the point here is
        // to measure that growth, not to stop it.
        memory_mib: 4096,
        ..Limits::default()
    })?;
    let modules = chain_modules(&engine, &args.modules, &zones_config(&args.zones)?)?;
    let mut chain = Chain::new(engine, modules)?;
    chain.bound_state(&StateConfig {
        idle_secs: 0,
        max_trajectories: args.max_trajectories,
    });
    let mib = |bytes: Option<u64>| bytes.unwrap_or(0) as f64 / (1 << 20) as f64;
    println!(
        "{} trajectories of {} points, {} per batch, max_trajectories = {} (0 = no bound)",
        args.trajectories, args.points, args.per_batch, args.max_trajectories
    );
    println!("{:>12} {:>12} {:>10}", "seen", "state held", "RSS MiB");
    let start_rss = resident_bytes();
    let started = Instant::now();
    let every = (args.trajectories / args.samples.max(1)).max(1);
    let mut dead = Vec::new();
    let mut seen = 0;
    let mut at_bound = None;
    while seen < args.trajectories {
        let n = args.per_batch.min(args.trajectories - seen);
        chain.run(batch(seen, n, args.points), &mut dead);
        dead.clear();
        let before = seen;
        seen += n;
        if seen / every != before / every || seen == args.trajectories {
            let stats = chain.retention_stats();
            let held = stats.map_or(seen, |stats| stats.tracked);
            let rss = resident_bytes();
            println!("{seen:>12} {held:>12} {:>10.1}", mib(rss));
            if at_bound.is_none() && stats.is_some_and(|s| s.dropped_bound > 0) {
                at_bound = rss;
            }
        }
    }
    let end = resident_bytes();
    println!(
        "RSS {:.1} MiB at the start, {:.1} MiB at the end ({:.1} s)",
        mib(start_rss),
        mib(end),
        started.elapsed().as_secs_f64()
    );
    if let Some(at_bound) = at_bound {
        println!(
            "growth from the first sample after the bound was reached: {:.1} MiB",
            mib(end) - mib(Some(at_bound))
        );
    }
    if let (Some(start), Some(end)) = (start_rss, end) {
        println!(
            "per trajectory seen: {:.0} bytes",
            end.saturating_sub(start) as f64 / args.trajectories as f64
        );
    }
    Ok(())
}

/// `n` trajectories from number `first` on, side by side, each with `points` lines
/// walking north.
fn batch(first: usize, n: usize, points: u32) -> Batch {
    let mut raw = RawLines::default();
    let mut trajectories = Vec::with_capacity(n);
    for t in 0..n {
        let number = first + t;
        trajectories.push(Trajectory {
            user: format!("{:03}", number % 182),
            id: format!("{number:010}"),
        });
        let lon = 116.30 + 0.0001 * (number % 1000) as f64;
        for seq in 0..points {
            let line = plt_line(39.90 + 0.0005 * f64::from(seq), lon, 100.0, seq * 5);
            raw.push(line.as_bytes(), t as u32, seq);
        }
    }
    Batch {
        trajectories,
        zone_sets: Vec::new(),
        records: Records::Lines(raw),
    }
}
