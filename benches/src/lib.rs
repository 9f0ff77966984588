//! Shared pieces of waystream's measurements: the same batches for the Wasm path (host
//! types) and the native path (the transforms' own Rust types), and a clock.
//!
//! The native path runs each transform's `Transform` implementation directly, as a plain
//! Rust library, on the same batches the host hands the components: the Wasm/native ratio
//! is the cost of the sandbox and the boundary, nothing else.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use waystream::engine::bindings as host;
use waystream::engine::{Engine, Module};
use waystream::sources::{FilesSource, FilesSourceConfig, Source};
use waystream_guest::{self as guest, Transform};

/// Every batch of raw lines under `folder` (PLT files, six header lines each).
pub fn read_batches(folder: &Path, batch_size: usize) -> Result<Vec<host::Batch>> {
    let config = FilesSourceConfig::plt(folder);
    let mut source = FilesSource::open(&config, Path::new("."), batch_size)?;
    let mut batches = Vec::new();
    while let Some(batch) = source.next_batch()? {
        batches.push(batch.batch);
    }
    anyhow::ensure!(
        !batches.is_empty(),
        "no .plt lines under {}",
        folder.display()
    );
    Ok(batches)
}

/// The same batch in the guest SDK's types, for the native path.
pub fn to_guest(batch: &host::Batch) -> guest::Batch {
    guest::Batch {
        trajectories: batch
            .trajectories
            .iter()
            .map(|t| guest::Trajectory {
                user: t.user.clone(),
                id: t.id.clone(),
            })
            .collect(),
        zone_sets: batch.zone_sets.clone(),
        records: match &batch.records {
            host::Records::Lines(raw) => guest::Records::Lines(guest::RawLines {
                data: raw.data.clone(),
                ends: raw.ends.clone(),
                trajectory: raw.trajectory.clone(),
                seq: raw.seq.clone(),
            }),
            host::Records::Points(points) => guest::Records::Points(points.iter().collect()),
        },
    }
}

/// `batch` with its records replaced by `points` (the next module's input).
pub fn with_points(
    batch: &host::Batch,
    points: host::PointColumns,
    zone_sets: Option<Vec<Vec<String>>>,
) -> host::Batch {
    host::Batch {
        trajectories: batch.trajectories.clone(),
        zone_sets: zone_sets.unwrap_or_else(|| batch.zone_sets.clone()),
        records: host::Records::Points(points),
    }
}

/// Runs `f` and returns its result with the time it took.
pub fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let started = Instant::now();
    let value = f()?;
    Ok((value, started.elapsed()))
}

/// A GeoJSON file as the JSON config geofence's `init` takes.
pub fn zones_config(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!("{{\"zones\":{text}}}"))
}

/// The component `<modules>/<name>.wasm`, loaded as module `name` with `config` (the JSON
/// its `init` takes).
pub fn load_module(
    engine: &Arc<Engine>,
    modules: &Path,
    name: &str,
    config: &str,
) -> Result<Arc<Module>> {
    Module::load(
        engine,
        name,
        &modules.join(format!("{name}.wasm")),
        config.into(),
    )
}

/// The measured chain's modules: parse-plt → geofence (with `zones`, from
/// [`zones_config`]) → speed, from the folder `modules`.
pub fn chain_modules(
    engine: &Arc<Engine>,
    modules: &Path,
    zones: &str,
) -> Result<Vec<Arc<Module>>> {
    Ok(vec![
        load_module(engine, modules, "parse-plt", "{}")?,
        load_module(engine, modules, "geofence", zones)?,
        load_module(engine, modules, "speed", "{}")?,
    ])
}

/// Records per second.
pub fn rate(records: usize, took: Duration) -> f64 {
    records as f64 / took.as_secs_f64().max(1e-9)
}

/// parse-plt, geofence and speed natively, one after the other: the chain without Wasm.
pub struct NativeChain {
    parse: parse_plt::ParsePlt,
    fence: geofence::Geofence,
    speed: speed::Speed,
}

impl NativeChain {
    /// The three transforms, geofence with `zones` (its JSON config).
    pub fn new(zones: &str) -> Result<Self> {
        Ok(NativeChain {
            parse: parse_plt::ParsePlt::init("{}").map_err(anyhow::Error::msg)?,
            fence: geofence::Geofence::init(zones).map_err(anyhow::Error::msg)?,
            speed: speed::Speed::init("{}").map_err(anyhow::Error::msg)?,
        })
    }

    /// One batch of raw lines through the three; returns the points that come out.
    pub fn run(&mut self, batch: guest::Batch) -> Result<usize> {
        let trajectories = batch.trajectories.clone();
        let step = |trajectories, zone_sets, out: guest::Output| guest::Batch {
            trajectories,
            zone_sets,
            records: guest::Records::Points(out.points),
        };
        let parsed = self.parse.process(batch).map_err(anyhow::Error::msg)?;
        let fenced = self
            .fence
            .process(step(trajectories.clone(), Vec::new(), parsed))
            .map_err(anyhow::Error::msg)?;
        let zone_sets = fenced.zone_sets.clone().unwrap_or_default();
        let out = self
            .speed
            .process(step(trajectories, zone_sets, fenced))
            .map_err(anyhow::Error::msg)?;
        Ok(out.points.len())
    }
}
