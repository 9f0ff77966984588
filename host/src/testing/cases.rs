//! `waystream test`: case folders of input and expected output, run and compared.
//!
//! A case is a folder (for a transform's own cases, `transforms/<name>/tests/<case>/`):
//!
//! * `case.toml`: the chain to run, as in a pipeline config:
//!   ```toml
//!   [[transforms]]
//!   name = "geofence"                 # path defaults to <modules>/<name>.wasm
//!   config_files = { zones = "zones.geojson" }   # relative to the case folder
//!   ```
//! * `input.plt` (a Geolife file, six header lines included; user and trajectory come from
//!   the path as in the files source) or `input.ndjson` (point documents, see
//!   [`super::points_from_documents`]);
//! * `expected.ndjson`: the output documents;
//! * `rejected.ndjson`: the rejected records as dead letters without `digest` and
//!   `generation` (absent means none).
//!
//! Outputs are compared as text, line by line; a mismatch prints a unified diff. With
//! `--update` the expected files are (re)written from what the chain produced instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{Harness, TestOutput};
use crate::config::ModuleConfig;
use crate::engine::Limits;
use crate::sources::{FilesSource, FilesSourceConfig, Source};

/// The file that makes a folder a case.
pub const CASE_FILE: &str = "case.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseConfig {
    transforms: Vec<CaseModule>,
    #[serde(default)]
    limits: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseModule {
    name: String,
    path: Option<PathBuf>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    config_files: BTreeMap<String, PathBuf>,
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseOutcome {
    /// Output and rejections are as expected.
    Passed,
    /// `--update` wrote the expected files.
    Updated,
    /// Why not: a readable diff, or the error that stopped the case.
    Failed(String),
}

/// Every case folder under `roots` (a root may be a case itself), sorted.
pub fn find_cases(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut cases = Vec::new();
    for root in roots {
        anyhow::ensure!(root.exists(), "{} does not exist", root.display());
        for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
            let entry = entry?;
            if entry.file_name() == CASE_FILE {
                cases.extend(entry.path().parent().map(Path::to_path_buf));
            }
        }
    }
    Ok(cases)
}

/// Runs the case in `dir` with modules (that name no path) from `modules`.
pub fn run_case(dir: &Path, modules: &Path, update: bool) -> CaseOutcome {
    match run_and_compare(dir, modules, update) {
        Ok(outcome) => outcome,
        Err(e) => CaseOutcome::Failed(format!("error: {e:#}")),
    }
}

fn run_and_compare(dir: &Path, modules: &Path, update: bool) -> Result<CaseOutcome> {
    let output = run(dir, modules)?;
    let documents: String = output.documents.iter().map(|d| format!("{d}\n")).collect();
    let mut rejected = String::new();
    for letter in &output.rejected {
        // Digest and generation change with every build, not with behaviour.
        let mut value = letter.to_value();
        if let Some(fields) = value.as_object_mut() {
            fields.remove("digest");
            fields.remove("generation");
        }
        writeln!(rejected, "{value}")?;
    }
    let files = [
        ("expected.ndjson", documents),
        ("rejected.ndjson", rejected),
    ];
    if update {
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))?;
        }
        return Ok(CaseOutcome::Updated);
    }
    let mut report = String::new();
    for (name, actual) in &files {
        let expected = match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && *name == "rejected.ndjson" => {
                String::new()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                anyhow::bail!("{name} is missing (write it with --update)")
            }
            Err(e) => return Err(anyhow::Error::from(e).context(format!("reading {name}"))),
        };
        if expected != *actual {
            let diff = similar::TextDiff::from_lines(&expected, actual);
            let header = (format!("{name} (expected)"), format!("{name} (actual)"));
            write!(
                report,
                "{}",
                diff.unified_diff()
                    .context_radius(1)
                    .header(&header.0, &header.1)
            )?;
            field_differences(&diff, &mut report);
        }
    }
    Ok(if report.is_empty() {
        CaseOutcome::Passed
    } else {
        CaseOutcome::Failed(report)
    })
}

/// Documents are long single lines, so a line diff alone hides what changed: pair the
/// removed and added lines of each change and name the fields that differ.
fn field_differences(diff: &similar::TextDiff<'_, '_, '_, str>, report: &mut String) {
    use similar::ChangeTag;
    for group in diff.grouped_ops(0) {
        let changes: Vec<_> = group.iter().flat_map(|op| diff.iter_changes(op)).collect();
        let removed = changes.iter().filter(|c| c.tag() == ChangeTag::Delete);
        let added = changes.iter().filter(|c| c.tag() == ChangeTag::Insert);
        for (old, new) in removed.zip(added) {
            let parse = |line: &str| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line).ok()
            };
            let (Some(old), Some(new)) = (parse(old.value()), parse(new.value())) else {
                continue;
            };
            let at = new
                .get("seq")
                .map(|s| format!("seq {s}"))
                .unwrap_or_default();
            for (key, value) in &new {
                let before = old.get(key).unwrap_or(&serde_json::Value::Null);
                if before != value {
                    let _ = writeln!(report, "  {at}: {key}: expected {before}, actual {value}");
                }
            }
        }
    }
}

/// Runs the case's chain on its input.
fn run(dir: &Path, modules: &Path) -> Result<TestOutput> {
    let text = std::fs::read_to_string(dir.join(CASE_FILE))
        .with_context(|| format!("reading {CASE_FILE}"))?;
    let case: CaseConfig =
        toml::from_str(&text).with_context(|| format!("{CASE_FILE} is not a valid case"))?;
    let modules = std::path::absolute(modules)?;
    let chain: Vec<ModuleConfig> = case
        .transforms
        .into_iter()
        .map(|m| ModuleConfig {
            path: m
                .path
                .unwrap_or_else(|| modules.join(format!("{}.wasm", m.name))),
            name: m.name,
            config: m.config,
            config_files: m.config_files,
            allowed_digests: Vec::new(),
        })
        .collect();
    let mut harness = Harness::chain(&chain, dir, case.limits)?;
    let points = dir.join("input.ndjson");
    if dir.join("input.plt").exists() {
        let source = FilesSourceConfig {
            path: "input.plt".into(),
            header_lines: 6,
            extension: "plt".into(),
        };
        let mut source = FilesSource::open(&source, dir, 4096)?;
        let mut output = TestOutput::default();
        while let Some(batch) = source.next_batch()? {
            let out = harness.run(batch.batch);
            output.documents.extend(out.documents);
            output.rejected.extend(out.rejected);
        }
        Ok(output)
    } else if points.exists() {
        let text = std::fs::read_to_string(&points)?;
        Ok(harness.run(super::points_from_documents(&text)?))
    } else {
        anyhow::bail!("the case has no input.plt or input.ndjson")
    }
}
