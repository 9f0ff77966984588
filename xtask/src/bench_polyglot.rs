//! `cargo xtask bench --polyglot`: the same transforms in Rust, Python and JavaScript.
//!
//! Two transforms per language: a trivial one (the `waystream new` template, which passes
//! points through) and a stops-like one (`examples/{rust,python,js}-stops`: a loop over two
//! columns). Each runs end to end after `parse-plt → speed` on the bench data, twice: first
//! with an empty compiled-module cache (its load time is the compile), then with the cache
//! the first run filled (what every later start and hot swap of that version costs). The
//! table gives the module's own figures from the run's summary (`--summary-json`): load
//! time, points per second inside its calls (boundary included), and the process's peak
//! RSS beside that of the chain without it (the difference is what the module's instance
//! and compiled code cost).
//!
//! The components come from `guest-sdk/check-polyglot.sh` (run first when one is missing).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{output, run};

/// (name, language, what it is, config): the modules measured, in `target/modules`.
const MODULES: [(&str, &str, &str, &str); 6] = [
    ("tpl-rust", "Rust", "trivial", ""),
    ("tpl-python", "Python", "trivial", ""),
    ("tpl-js", "JavaScript", "trivial", ""),
    (
        "rust-stops",
        "Rust",
        "stops",
        "config = { max_speed_mps = 5.0 }",
    ),
    (
        "python-stops",
        "Python",
        "stops",
        "config = { max_speed_mps = 5.0 }",
    ),
    (
        "js-stops",
        "JavaScript",
        "stops",
        "config = { max_speed_mps = 5.0 }",
    ),
];

/// The report's section: a table of the six modules on `data`, measured with `waystream`.
pub fn measure(root: &Path, waystream: &Path, data: &Path, work: &Path) -> Result<String> {
    let modules = root.join("target/modules");
    if MODULES
        .iter()
        .any(|(name, ..)| !modules.join(format!("{name}.wasm")).exists())
    {
        run(Command::new("bash")
            .arg(root.join("guest-sdk/check-polyglot.sh"))
            .env("WAYSTREAM_TARGET", root.join("target"))
            .env("WAYSTREAM_BIN", waystream))?;
    }
    let work = work.join("polyglot");
    std::fs::create_dir_all(&work)?;
    // Twice, like the modules below: the first run compiles, which costs memory of its own.
    summary(waystream, &work, data, &modules, None, "baseline")?;
    let baseline = summary(waystream, &work, data, &modules, None, "baseline")?;
    let baseline_mb = mb(&baseline["peak_rss_bytes"]);
    let mut table = String::from(
        "| transform | language | load, compiling (s) | load, from the cache (ms) | points/s inside the module | peak RSS (MB) | over the chain without it (MB) |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for (name, language, what, config) in MODULES {
        let cold = summary(waystream, &work, data, &modules, Some((name, config)), name)?;
        let cached = summary(waystream, &work, data, &modules, Some((name, config)), name)?;
        let (cold, cached_module) = (module(&cold, name)?, module(&cached, name)?);
        anyhow::ensure!(
            cached_module["compiled_from_cache"] == true,
            "{name}: the second run compiled it again"
        );
        let points = cached_module["records_in"].as_f64().unwrap_or(0.0);
        let busy = cached_module["busy_s"].as_f64().unwrap_or(f64::NAN);
        let rss = mb(&cached["peak_rss_bytes"]);
        table += &format!(
            "| {what} | {language} | {:.2} | {:.0} | {:.0} | {rss:.0} | {:.0} |\n",
            cold["load_s"].as_f64().unwrap_or(f64::NAN),
            cached_module["load_s"].as_f64().unwrap_or(f64::NAN) * 1e3,
            points / busy,
            rss - baseline_mb,
        );
    }
    Ok(format!(
        "\n## Transforms in Rust, Python and JavaScript (`--polyglot`)\n\n\
         Each after `parse-plt → speed` (whose run alone peaked at {baseline_mb:.0} MB), files → \
         NDJSON, the chain's modules from the cache in every measured run; load and speed \
         from the run's summary; \"from the cache\" is the second start with the same \
         compiled-module cache.\n\n{table}"
    ))
}

/// Runs `parse-plt → speed [→ extra]` on `data` with the compiled-module cache in
/// `work/cache-<cache>`; returns the run's summary.
fn summary(
    waystream: &Path,
    work: &Path,
    data: &Path,
    modules: &Path,
    extra: Option<(&str, &str)>,
    cache: &str,
) -> Result<serde_json::Value> {
    let mut chain = String::new();
    for (name, config) in [("parse-plt", ""), ("speed", "")].into_iter().chain(extra) {
        let path = modules.join(format!("{name}.wasm"));
        chain += &format!("[[transforms]]\nname = {name:?}\npath = {path:?}\n{config}\n");
    }
    let config = format!(
        "[source]\ntype = \"files\"\npath = {data:?}\n{chain}\
         [sink]\ntype = \"ndjson\"\npath = {out:?}\n[dead_letter]\ntype = \"ndjson\"\npath = {dead:?}\n",
        out = work.join("out/points.ndjson"),
        dead = work.join("out/dead-letter.ndjson"),
    );
    let config_path = work.join("pipeline.toml");
    std::fs::write(&config_path, config)?;
    let summary_path = work.join("summary.json");
    output(
        Command::new(waystream)
            .args(["run", "--quiet", "--no-reload", "--config"])
            .arg(&config_path)
            .arg("--summary-json")
            .arg(&summary_path)
            .env("WAYSTREAM_CACHE_DIR", work.join(format!("cache-{cache}")))
            .env("RUST_LOG", "warn"),
    )?;
    let text = std::fs::read_to_string(&summary_path)?;
    serde_json::from_str(&text).context("the run's summary JSON")
}

/// The summary's entry for module `name`.
fn module<'a>(summary: &'a serde_json::Value, name: &str) -> Result<&'a serde_json::Value> {
    summary["modules"]
        .as_array()
        .and_then(|modules| modules.iter().find(|m| m["name"] == name))
        .with_context(|| format!("no module {name} in the summary"))
}

fn mb(bytes: &serde_json::Value) -> f64 {
    bytes.as_f64().unwrap_or(f64::NAN) / 1e6
}
