//! Helpers for waystream's end-to-end tests: the built components, PLT fixtures, pipeline
//! configs and NDJSON output.
//!
//! The tests load the Wasm components that `cargo xtask build-transforms` (run by
//! `cargo xtask test`) puts in `target/modules`; without them they fail and say so.

pub mod aws;
pub mod fake_firehose;
pub mod fake_http;
pub mod fake_opensearch;
pub mod handmade;
pub mod http;
mod stream;

use std::path::{Path, PathBuf};

pub use stream::StreamSource;

use serde_json::Value;
use waystream::{Pipeline, PipelineConfig, Summary};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The built component of `name` (`parse-plt`, `geofence`, `speed`, `hostile`).
pub fn module(name: &str) -> PathBuf {
    let dir = std::env::var_os("WAYSTREAM_MODULES")
        .map_or_else(|| workspace().join("target/modules"), PathBuf::from);
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build-transforms` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// The project's demo zones.
pub fn demo_zones() -> PathBuf {
    workspace().join("zones/beijing-demo.geojson")
}

/// The six Geolife header lines.
pub use waystream_contract::plt::HEADER as PLT_HEADER;

/// Writes `<root>/Data/<user>/Trajectory/<trajectory>.plt` with the header and `lines`.
pub fn write_plt(root: &Path, user: &str, trajectory: &str, lines: &[String]) -> PathBuf {
    let dir = root.join("Data").join(user).join("Trajectory");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{trajectory}.plt"));
    let mut text = PLT_HEADER.to_string();
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A PLT point line at (lat, lon) with altitude in feet, `secs` after 2008-10-23 02:00:00.
pub fn plt_line(lat: f64, lon: f64, alt_ft: f64, secs: u32) -> String {
    format!(
        "{lat},{lon},0,{alt_ft},39744.0,2008-10-23,{:02}:{:02}:{:02}",
        2 + secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// One module of a test pipeline: name, component file, extra TOML lines for its table.
pub struct Stage {
    pub name: String,
    pub path: PathBuf,
    pub extra: String,
}

impl Stage {
    /// A module with no config.
    pub fn new(name: &str) -> Self {
        Stage {
            name: name.into(),
            path: module(name),
            extra: String::new(),
        }
    }

    /// A module with extra TOML lines (e.g. `config = { behaviour = "loop" }`).
    pub fn with(name: &str, extra: &str) -> Self {
        Stage {
            extra: extra.into(),
            ..Stage::new(name)
        }
    }

    /// The standard chain: parse-plt, geofence on the demo zones, speed.
    pub fn standard_chain() -> Vec<Stage> {
        vec![
            Stage::new("parse-plt"),
            Stage::with(
                "geofence",
                &format!(
                    "config_files = {{ zones = {:?} }}",
                    demo_zones().display().to_string()
                ),
            ),
            Stage::new("speed"),
        ]
    }
}

/// A pipeline config reading `input` and writing `out/points.ndjson` and
/// `out/dead-letter.ndjson`, with `extra` TOML at the top (batch size, limits).
pub fn pipeline_config(input: &Path, out: &Path, stages: &[Stage], extra: &str) -> PipelineConfig {
    PipelineConfig::parse(
        &pipeline_config_text(input, out, stages, extra),
        Path::new("."),
    )
    .unwrap()
}

/// The TOML text of [`pipeline_config`], to write to a file.
pub fn pipeline_config_text(input: &Path, out: &Path, stages: &[Stage], extra: &str) -> String {
    let source = format!("type = \"files\"\npath = {:?}", input.display().to_string());
    config_text_with_source(&source, out, stages, extra)
}

/// A pipeline config's TOML with `source` as the body of its `[source]` table, writing
/// `out/points.ndjson` and `out/dead-letter.ndjson`.
pub fn config_text_with_source(source: &str, out: &Path, stages: &[Stage], extra: &str) -> String {
    let mut text = format!("{extra}\n[source]\n{source}\n{}", chain_text(stages));
    text += &format!(
        "[sink]\ntype = \"ndjson\"\npath = {:?}\n[dead_letter]\ntype = \"ndjson\"\npath = {:?}\n",
        out.join("points.ndjson").display().to_string(),
        out.join("dead-letter.ndjson").display().to_string()
    );
    text
}

/// The `[[transforms]]` tables of `stages`, in order.
pub fn chain_text(stages: &[Stage]) -> String {
    stages
        .iter()
        .map(|stage| {
            format!(
                "[[transforms]]\nname = {:?}\npath = {:?}\n{}\n",
                stage.name,
                stage.path.display().to_string(),
                stage.extra
            )
        })
        .collect()
}

/// Runs a pipeline to the end.
pub fn run(config: &PipelineConfig) -> Summary {
    Pipeline::build(config)
        .unwrap()
        .show_progress(false)
        .run()
        .unwrap()
}

/// The documents of an NDJSON file.
pub fn read_ndjson(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad line {l:?}: {e}", path.display()))
        })
        .collect()
}

/// `component` with a custom section holding `n` appended: another build (another file,
/// another digest) with the same behaviour, for hot-reload tests and swap measurements.
pub fn component_variant(component: &[u8], n: u64) -> Vec<u8> {
    let name = b"waystream-test-variant";
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.push((1 + name.len() + 8) as u8); // section size (one LEB128 byte)
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&n.to_le_bytes());
    out
}
