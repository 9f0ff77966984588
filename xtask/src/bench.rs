//! `cargo xtask bench`: the measurements behind BENCHMARKS.md (`--polyglot` and `--kinesis`
//! add the sections of `bench_polyglot.rs` and `bench_kinesis.rs`).
//!
//! Data: the Geolife bench set when `WAYSTREAM_BENCH_DATA` names `bench.tar.zst` (unpacked
//! under target/bench-work and removed afterwards, never into the repository), otherwise a
//! synthetic set of similar size from `waystream synth`; the output says which. Then the in-process measurements
//! (`benches/src/bin/bench.rs`) and end-to-end `waystream run`s (files → chain →
//! NDJSON) with their throughput, CPU time and peak RSS, on two cores and pinned to one. `--smoke` runs everything on tiny data with
//! debug builds (the test suite does that, so the command stays working); its figures
//! mean nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{build_transforms, cargo, output, run};

/// Options of `cargo xtask bench [--smoke] [--polyglot] [--kinesis] [--out FILE]`.
struct Options {
    smoke: bool,
    /// Also measure transforms in Python and JavaScript (see `bench_polyglot.rs`).
    polyglot: bool,
    /// Also measure the Kinesis path with state checkpointing on and off (see
    /// `bench_kinesis.rs`).
    kinesis: bool,
    out: PathBuf,
}

fn options(root: &Path, args: &[String]) -> Result<Options> {
    let mut options = Options {
        smoke: false,
        polyglot: false,
        kinesis: false,
        out: root.join("BENCHMARKS.md"),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => options.smoke = true,
            "--polyglot" => options.polyglot = true,
            "--kinesis" => options.kinesis = true,
            "--out" => options.out = args.next().context("--out needs a file")?.into(),
            other => {
                bail!(
                    "unknown bench option {other:?} (expected --smoke, --polyglot, --kinesis, --out FILE)"
                )
            }
        }
    }
    Ok(options)
}

pub fn bench(root: &Path, args: &[String]) -> Result<()> {
    let options = options(root, args)?;
    build_transforms(root)?;
    let profile = if options.smoke { "debug" } else { "release" };
    let mut build = cargo();
    build.args([
        "build",
        "-p",
        "waystream",
        "-p",
        "waystream-benches",
        "--bins",
    ]);
    if !options.smoke {
        build.arg("--release");
    }
    run(&mut build)?;
    let bin = |name: &str| root.join("target").join(profile).join(name);
    let work = root.join("target/bench-work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let (data, data_label) = data_set(&bin("waystream"), &work, options.smoke)?;
    let (zones, grid, zones_label) = zone_sets(root, &work)?;

    let table = output(
        Command::new(bin("bench"))
            .arg("--data")
            .arg(&data)
            .arg("--zones")
            .arg(&zones)
            .arg("--grid")
            .arg(&grid)
            .arg("--modules")
            .arg(root.join("target/modules"))
            .args(["--swaps", if options.smoke { "3" } else { "20" }]),
    )?;

    let chain_config = format!(
        "[source]\ntype = \"files\"\npath = {data:?}\n\
         [[transforms]]\nname = \"parse-plt\"\npath = {p:?}\n\
         [[transforms]]\nname = \"geofence\"\npath = {g:?}\nconfig_files = {{ zones = {zones:?} }}\n\
         [[transforms]]\nname = \"speed\"\npath = {s:?}\n\
         [sink]\ntype = \"ndjson\"\npath = {out:?}\n[dead_letter]\ntype = \"ndjson\"\npath = {dead:?}\n",
        p = root.join("target/modules/parse-plt.wasm"),
        g = root.join("target/modules/geofence.wasm"),
        s = root.join("target/modules/speed.wasm"),
        out = work.join("out/points.ndjson"),
        dead = work.join("out/dead-letter.ndjson"),
    );
    let config = work.join("pipeline.toml");
    std::fs::write(&config, &chain_config)?;
    let untimed_config = work.join("pipeline-untimed.toml");
    std::fs::write(
        &untimed_config,
        format!("{chain_config}[limits]\ncall_timeout_ms = 0\n"),
    )?;
    let one_core = which("taskset");
    let mut e2e = format!(
        "- end to end, `waystream run` files → parse-plt → geofence (12 zones) → speed → NDJSON, best of {E2E_RUNS} runs:"
    );
    for (config, limits) in [(&config, ""), (&untimed_config, ", `call_timeout_ms = 0`")] {
        e2e += &format!(
            "\n  - two cores (the chain on one thread, encoding + writing on a second){limits}: {}",
            end_to_end(Command::new(bin("waystream")), config)?
        );
        e2e += &format!(
            "\n  - one core (`taskset -c 0`){limits}: {}",
            if one_core {
                let mut pinned = Command::new("taskset");
                pinned.args(["-c", "0"]).arg(bin("waystream"));
                end_to_end(pinned, config)?
            } else {
                "not measured (no `taskset` on this machine)".into()
            }
        );
    }

    e2e += "\n";
    e2e += &metrics_overhead(&bin("waystream"), &config)?;
    e2e += "\n";
    e2e += &bounded_state(&bin("state_bound"), root, &zones, options.smoke)?;

    let polyglot = if options.polyglot {
        crate::bench_polyglot::measure(root, &bin("waystream"), &data, &work)?
    } else {
        String::new()
    };

    let kinesis = if options.kinesis {
        crate::bench_kinesis::measure(root, &bin("kinesis_state"), options.smoke)?
    } else {
        String::new()
    };

    let report = format!(
        "# Benchmarks\n\n\
         Written by `cargo xtask bench{}` on {}.\n\n\
         - machine: {}\n- data set: {data_label}\n- {zones_label}\n- builds: {profile}; components from `cargo xtask build-transforms`\n\
         - Wasm figures are time inside the module calls, boundary included; native figures run the same\n  \
         transform crates as plain Rust on the same batches (1,024 lines each).\n\n\
         {table}{e2e}\n\n\
         Targets (issue 6): Wasm chain ≥ 0.75 × native; end to end ≥ 1.5 M points/s on one core;\n\
         2,500 zones ≥ 0.5 × the 12-zone throughput; steady RSS ≤ 100 MB.\n{polyglot}{kinesis}",
        [
            (options.smoke, " --smoke"),
            (options.polyglot, " --polyglot"),
            (options.kinesis, " --kinesis"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, flag)| *flag)
        .collect::<String>(),
        output(Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC"))?.trim(),
        machine(),
    );
    std::fs::write(&options.out, &report)
        .with_context(|| format!("writing {}", options.out.display()))?;
    println!("{report}");
    eprintln!("xtask: wrote {}", options.out.display());
    // The unpacked data set (Geolife's licence forbids redistribution) does not stay around.
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(())
}

/// Resident memory with `[state] max_trajectories` at a tenth of the trajectories run, and
/// without a bound, each in a process of its own (`benches/src/bin/state_bound.rs`).
fn bounded_state(state_bound: &Path, root: &Path, zones: &Path, smoke: bool) -> Result<String> {
    let trajectories: usize = if smoke { 4_000 } else { 2_000_000 };
    let mut section = format!(
        "- bounded state: {trajectories} trajectories of 4 points through parse-plt → geofence → speed in the host's chain, 256 per batch, RSS as they go (`benches/src/bin/state_bound.rs`):\n"
    );
    for bound in [trajectories / 10, 0] {
        let printed = output(
            Command::new(state_bound)
                .arg("--zones")
                .arg(zones)
                .arg("--modules")
                .arg(root.join("target/modules"))
                .args(["--trajectories", &trajectories.to_string()])
                .args(["--max-trajectories", &bound.to_string()]),
        )?;
        section += "\n```text\n";
        section += printed.trim_end();
        section += "\n```\n";
    }
    Ok(section)
}

/// How many times each end-to-end run is repeated (the best counts: page-cache writeback
/// of the ~900 MB written makes the kernel's share vary by a factor of three or more).
const E2E_RUNS: usize = 5;

/// The best of [`E2E_RUNS`] runs of `waystream` (already in `command`) on `config`, as a
/// line of the report.
fn end_to_end(mut command: Command, config: &Path) -> Result<String> {
    command
        .args(["run", "--quiet", "--no-reload", "--config"])
        .arg(config);
    let mut best: Option<(f64, String)> = None;
    for _ in 0..E2E_RUNS {
        let (wall, line) = timed_run(&mut command)?;
        if best.as_ref().is_none_or(|(w, _)| wall < *w) {
            best = Some((wall, line));
        }
    }
    Ok(best.map(|(_, line)| line).unwrap_or_default())
}

/// The cost of the HTTP server and its metrics: runs on `config` with `--http` (metrics
/// recorded per batch, the live page's sample taken) and without, alternating, best of
/// [`E2E_RUNS`] each, as a line of the report.
fn metrics_overhead(waystream: &Path, config: &Path) -> Result<String> {
    let (mut off, mut on) = (f64::MAX, f64::MAX);
    for _ in 0..E2E_RUNS {
        let mut plain = Command::new(waystream);
        plain
            .args(["run", "--quiet", "--no-reload", "--config"])
            .arg(config);
        off = off.min(timed_run(&mut plain)?.0);
        let mut observed = Command::new(waystream);
        observed
            .args([
                "run",
                "--quiet",
                "--no-reload",
                "--http",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(config);
        on = on.min(timed_run(&mut observed)?.0);
    }
    Ok(format!(
        "- metrics on (`--http`: Prometheus registry, live page sample) against off, same build, runs alternating, \
         best of {E2E_RUNS} each (two cores): off {off:.3} s, on {on:.3} s: on takes **{:+.1} %**",
        (on / off - 1.0) * 100.0
    ))
}

/// One run of `command` (a `waystream run`): its wall time (s) and its summary as a line of
/// the report.
fn timed_run(command: &mut Command) -> Result<(f64, String)> {
    // Start each run without the previous run's output still being written back.
    run(&mut Command::new("sync"))?;
    let summary = output(command)?;
    let field = |name: &str| {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(|l| l.trim_start()[name.len()..].trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    // "0.874 s (the run)": the first word is the number.
    let wall: f64 = field("wall time")
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .context("no wall time in the summary")?;
    let line = format!(
        "{} points in {}, **{}**, CPU {}, peak RSS **{}**",
        field("points in"),
        field("wall time"),
        field("throughput"),
        field("cpu time"),
        field("peak RSS"),
    );
    Ok((wall, line))
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The folder of PLT files to measure on, and how to name it in the report.
/// The 12-zone set and the 2,500-zone grid of the geofence measurements: the project's
/// shared zone sets (`../shared/data/zones`) when they are there, so figures stay
/// comparable; otherwise the repository's demo zones and a generated grid of the same
/// size (a clone without `../shared` still runs every command). Also says which.
fn zone_sets(root: &Path, work: &Path) -> Result<(PathBuf, PathBuf, String)> {
    let shared = root.join("../shared/data/zones");
    let (zones, grid) = (
        shared.join("beijing.geojson"),
        shared.join("beijing-grid-2500.geojson"),
    );
    if zones.exists() && grid.exists() {
        return Ok((
            zones,
            grid,
            "zones: ../shared/data/zones (12 zones; 2,500-zone grid)".into(),
        ));
    }
    let generated = work.join("grid-2500.geojson");
    std::fs::write(&generated, square_grid(50, 50))?;
    eprintln!(
        "xtask: ../shared/data/zones is absent: the demo zones and a generated 2,500-zone grid stand in"
    );
    Ok((
        root.join("zones/beijing-demo.geojson"),
        generated,
        "zones: the repository's demo zones (8) and a generated 2,500-square grid (../shared/data/zones was absent)".into(),
    ))
}

/// A GeoJSON FeatureCollection of `columns × rows` square zones tiling central Beijing.
fn square_grid(columns: u32, rows: u32) -> String {
    let (west, south, east, north) = (116.20, 39.80, 116.55, 40.05);
    let (dx, dy) = (
        (east - west) / f64::from(columns),
        (north - south) / f64::from(rows),
    );
    let features: Vec<String> = (0..rows)
        .flat_map(|r| (0..columns).map(move |c| (r, c)))
        .map(|(r, c)| {
            let (x, y) = (west + f64::from(c) * dx, south + f64::from(r) * dy);
            format!(
                r#"{{"type":"Feature","properties":{{"name":"cell-{r}-{c}"}},"geometry":{{"type":"Polygon","coordinates":[[[{x},{y}],[{x1},{y}],[{x1},{y1}],[{x},{y1}],[{x},{y}]]]}}}}"#,
                x1 = x + dx,
                y1 = y + dy
            )
        })
        .collect();
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
}

fn data_set(waystream: &Path, work: &Path, smoke: bool) -> Result<(PathBuf, String)> {
    let data = work.join("data");
    std::fs::create_dir_all(&data)?;
    if let Some(archive) = std::env::var_os("WAYSTREAM_BENCH_DATA").filter(|_| !smoke) {
        eprintln!(
            "xtask: unpacking {} into {}",
            archive.to_string_lossy(),
            data.display()
        );
        run(Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&data))?;
        let name = Path::new(&archive)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        return Ok((
            data,
            format!(
                "Geolife bench set `{name}` (WAYSTREAM_BENCH_DATA), unpacked under target/bench-work, removed afterwards"
            ),
        ));
    }
    let (users, trajectories, points) = if smoke {
        ("2", "2", "300")
    } else {
        ("20", "60", "2400")
    };
    run(Command::new(waystream)
        .args(["synth", "--out"])
        .arg(&data)
        .args([
            "--users",
            users,
            "--trajectories",
            trajectories,
            "--points",
            points,
            "--seed",
            "7",
        ]))?;
    let label = format!(
        "synthetic, `waystream synth --users {users} --trajectories {trajectories} --points {points} --seed 7` \
         (WAYSTREAM_BENCH_DATA unset{})",
        if smoke { "; --smoke" } else { "" }
    );
    eprintln!("xtask: measuring on {label}");
    Ok((data, label))
}

/// CPU model, cores and memory, from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    format!(
        "{model}, {cores} cores, {:.0} GiB RAM",
        mem_kib as f64 / (1u64 << 20) as f64
    )
}
