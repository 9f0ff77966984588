//! Project commands, run as `cargo xtask <command>`.
//!
//! * `build-transforms`: builds the Wasm components (the project's transforms and the test
//!   guests) and copies them to `target/modules/<name>.wasm`.
//! * `demo`: builds everything, generates synthetic data into `demo/plt` and runs the
//!   embedded default pipeline on it; with `--follow` it keeps running, reads files added
//!   to `demo/plt` and serves the live page on 127.0.0.1:9464.
//! * `test`: builds the components, starts local AWS servers (see `local_aws.rs`) and
//!   runs the whole test suite against them, then the polyglot check
//!   (`guest-sdk/check-polyglot.sh`) and the hot swap of the JavaScript and Python modules
//!   it builds, the live page in Chromium (`browser`, also a command of its own), a smoke
//!   run of `bench`, the deployment checks and
//!   the package.
//! * `bench`: the measurements behind BENCHMARKS.md (see `bench.rs`).
//!
//! Every command does its own set-up (the `wasm32-wasip2` target), so each works on a fresh
//! machine.

mod bench;
mod bench_kinesis;
mod bench_polyglot;
mod browser;
mod deploy;
mod local_aws;
mod package;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// (package, component name): built together, copied to `target/modules/<name>.wasm`.
pub(crate) const COMPONENTS: [(&str, &str); 5] = [
    ("parse-plt", "parse-plt"),
    ("geofence", "geofence"),
    ("speed", "speed"),
    ("hostile", "hostile"),
    ("incompatible", "incompatible"),
];
/// The components the demo runs (the first of [`COMPONENTS`]).
pub(crate) const DEMO_COMPONENTS: usize = 3;
/// (package, feature, component name): test builds that differ by a feature, one by one.
const VARIANTS: [(&str, &str, &str); 2] = [
    ("hostile", "init-fails", "hostile-init-fails"),
    ("hostile", "trap-always", "hostile-trap-always"),
];
const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("build-transforms") => build_transforms(&root),
        Some("demo") => demo(&root, &args[1..]),
        Some("test") => test(&root, &args[1..]),
        Some("browser") => browser::check(&root),
        Some("bench") => bench::bench(&root, &args[1..]),
        Some("package") => package::package(&root, &args[1..]).map(drop),
        Some("deploy") => deploy::deploy(&root, &args[1..]),
        Some("teardown") => deploy::teardown(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <build-transforms | demo [--follow] | test [cargo test args] | browser | bench [--smoke] [--polyglot] [--kinesis] [--out FILE] | package [--dev] [--check] | deploy --stack NAME --artifacts-bucket B --subnet S | teardown --stack NAME>"
            );
            bail!("unknown command {:?}", args.first());
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs `command`, returning its standard output; fails with its standard error.
pub(crate) fn output(command: &mut Command) -> Result<String> {
    eprintln!("xtask: running {command:?}");
    let out = command
        .output()
        .with_context(|| format!("starting {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn run(command: &mut Command) -> Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

/// Adds the Wasm target when rustup manages the toolchain (a no-op when it is there).
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET) =>
        {
            Ok(())
        }
        Ok(_) => run(Command::new("rustup").args(["target", "add", WASM_TARGET])),
        Err(_) => {
            eprintln!("xtask: rustup not found; assuming the {WASM_TARGET} target is installed");
            Ok(())
        }
    }
}

/// Builds every component: the project's transforms and the test guests.
pub(crate) fn build_transforms(root: &Path) -> Result<()> {
    build_components(root, &COMPONENTS)?;
    for (package, feature, name) in VARIANTS {
        run(wasm_build().args(["-p", package, "--features", feature]))?;
        copy_component(root, package, name)?;
    }
    Ok(())
}

/// Builds `components` in one cargo call and copies them to `target/modules`.
pub(crate) fn build_components(root: &Path, components: &[(&str, &str)]) -> Result<()> {
    ensure_wasm_target()?;
    let out_dir = root.join("target/modules");
    std::fs::create_dir_all(&out_dir)?;
    let mut build = wasm_build();
    for (package, _) in components {
        build.args(["-p", package]);
    }
    run(&mut build)?;
    for (package, name) in components {
        copy_component(root, package, name)?;
    }
    eprintln!("xtask: components in {}", out_dir.display());
    Ok(())
}

/// `cargo build` of components: release, for the Wasm target, without debug info.
fn wasm_build() -> Command {
    let mut build = cargo();
    build.args(["build", "--release", "--target", WASM_TARGET]);
    // Debug info would make the components ~10x larger and slower to compile at load and
    // reload time; function names stay, so trap backtraces still name the function.
    build.env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    build.env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    build
}

fn copy_component(root: &Path, package: &str, name: &str) -> Result<()> {
    let built = root.join(format!(
        "target/{WASM_TARGET}/release/{}.wasm",
        package.replace('-', "_")
    ));
    let dest = root.join(format!("target/modules/{name}.wasm"));
    std::fs::copy(&built, &dest).with_context(|| format!("copying {}", built.display()))?;
    Ok(())
}

/// Builds what the demo needs and nothing more (its three components, the host without
/// the AWS parts), then generates data and runs the embedded default pipeline.
fn demo(root: &Path, args: &[String]) -> Result<()> {
    let started = std::time::Instant::now();
    // The components and the host build side by side: each has stretches where it keeps
    // only one core busy.
    let host = cargo()
        .args(["build", "-p", "waystream", "--no-default-features"])
        .spawn()
        .context("starting the host's build")?;
    let components = build_components(root, &COMPONENTS[..DEMO_COMPONENTS]);
    let host = host.wait_with_output()?;
    components?;
    anyhow::ensure!(
        host.status.success(),
        "the host's build failed: {}",
        host.status
    );
    eprintln!(
        "xtask: built the demo in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let waystream = root.join("target/debug/waystream");
    let plt = root.join("demo/plt");
    if plt.exists() {
        std::fs::remove_dir_all(&plt)?;
    }
    // `--follow`: the demo keeps running, watching demo/plt, with the live page.
    let follow = args.iter().any(|a| a == "--follow");
    let synth_args = args.iter().filter(|a| *a != "--follow");
    run(Command::new(&waystream)
        .args(["synth", "--out", "demo/plt"])
        .args(synth_args))?;
    if follow {
        eprintln!(
            "xtask: following demo/plt until Ctrl-C; live page, metrics and status at {DEMO_HTTP}\n\
             xtask: add trajectories from another shell: target/debug/waystream synth --seed 7 --out demo/plt/more-7"
        );
        let http = DEMO_HTTP
            .trim_start_matches("http://")
            .trim_end_matches('/');
        run(Command::new(&waystream).args(["run", "--follow", "--http", http]))?;
    } else {
        run(Command::new(&waystream).arg("run"))?;
    }
    eprintln!(
        "xtask: output in demo/out/points.ndjson, rejected lines in demo/out/dead-letter.ndjson"
    );
    Ok(())
}

/// Where `cargo xtask demo --follow` serves the live page.
const DEMO_HTTP: &str = "http://127.0.0.1:9464/";

fn test(root: &Path, args: &[String]) -> Result<()> {
    build_transforms(root)?;
    let mut test = cargo();
    test.args(["test", "--workspace"]).args(args);
    // The AWS integration tests are #[ignore]d for a plain `cargo test` (they need the
    // servers started below); here they run.
    if !args.iter().any(|a| a == "--") {
        test.arg("--");
    }
    test.arg("--include-ignored");
    test.env("WAYSTREAM_MODULES", root.join("target/modules"));
    match std::env::var_os("WAYSTREAM_GEOLIFE") {
        Some(dir) => eprintln!(
            "xtask: Geolife tests use WAYSTREAM_GEOLIFE={}",
            dir.to_string_lossy()
        ),
        None => {
            let shared = root.join("../shared/data/geolife/small");
            if shared.is_dir() {
                eprintln!("xtask: Geolife tests use {}", shared.display());
                test.env("WAYSTREAM_GEOLIFE", shared);
            } else {
                eprintln!(
                    "xtask: no Geolife data (WAYSTREAM_GEOLIFE unset, ../shared absent): those tests skip"
                );
            }
        }
    }
    // The integration tests of the AWS parts talk to these; they stop when dropped.
    let local_aws = local_aws::LocalAws::start(root)?;
    local_aws.configure(&mut test);
    run(&mut test)?;
    drop(local_aws);
    // The Python and JavaScript SDKs, their examples and hostile guests, and a project of
    // each language from `waystream new`, with the host binary the tests just built.
    run(Command::new("bash")
        .arg(root.join("guest-sdk/check-polyglot.sh"))
        .env("WAYSTREAM_TARGET", root.join("target")))?;
    // The hot-reload test that swaps the JavaScript and Python modules that script built
    // (it skipped in the workspace run above, which came before them).
    run(cargo()
        .args([
            "test",
            "-p",
            "waystream-tests",
            "--test",
            "hot_reload",
            "--",
        ])
        .args(["--include-ignored", "javascript_and_python"])
        .env("WAYSTREAM_MODULES", root.join("target/modules"))
        .env("WAYSTREAM_POLYGLOT_MODULES", "1"))?;
    // The live page in Chromium, against the host the tests built.
    browser::check(root)?;
    // The bench command must keep working; on tiny data its figures mean nothing.
    bench::bench(
        root,
        &[
            "--smoke".into(),
            "--polyglot".into(),
            "--kinesis".into(),
            "--out".into(),
            "target/bench-smoke.md".into(),
        ],
    )?;
    // What a deployment ships: the artifacts' checks, and the package itself (unoptimised:
    // what is checked is how it is built and laid out, not its speed).
    deploy::check(root)?;
    package::package(root, &["--dev".into(), "--check".into()]).map(drop)
}
