//! `waystream test`: case folders of input and expected output, run and compared.
//!
//! A case is a folder (for a transform's own cases, `transforms/<name>/tests/<case>/`):
//!
//! * `case.toml`: the chain to run, as in a pipeline config, and how:
//!   ```toml
//!   batch_size = 16                   # records per batch (default: the whole input)
//!   swap_after_batches = 2            # after 2 batches, hand every module's state over
//!                                     # (snapshot → restore) to a fresh instance, or to
//!                                     # the version `next` names, and go on
//!   [[transforms]]
//!   name = "geofence"                 # path defaults to <name>.wasm in the modules folder
//!   config_files = { zones = "zones.geojson" }   # relative to the case folder
//!   # next = "v2/geofence.wasm"       # the version to swap to (default: the same)
//!   # build = "cargo build --release --target wasm32-wasip2"   # run first, in the case folder
//!   ```
//! * `input.plt` (a Geolife file, six header lines included; user and trajectory come from
//!   the path as in the files source) or `input.ndjson` (point documents, see
//!   [`super::points_from_documents`]);
//! * `expected.ndjson`: the output documents;
//! * `rejected.ndjson`: the rejected records as dead letters without `digest` and
//!   `generation` (absent means none).
//!
//! Outputs are compared as text, line by line; a mismatch prints a unified diff. With
//! `--update` the expected files are (re)written from what the chain produced instead, and
//! the diff of what changed is shown. A module named without a path is looked for in the
//! modules folder given (`--modules`), else in `modules/` or `target/modules/` of the case
//! folder or the nearest folder above it that has one. A module file older than the
//! sources of the project it lives in is run all the same, with a warning that says what
//! to rebuild (a case's `build` command rebuilds it first).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{Harness, TestOutput};
use crate::config::ModuleConfig;
use crate::engine::Limits;
use crate::engine::bindings::{Batch, Records};
use crate::sources::{FilesSource, FilesSourceConfig, Source};

/// The file that makes a folder a case.
pub const CASE_FILE: &str = "case.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseConfig {
    transforms: Vec<CaseModule>,
    #[serde(default)]
    limits: Limits,
    /// Records per batch; none: the whole input in one batch (a PLT input: 4,096).
    batch_size: Option<usize>,
    /// After this many batches, every module's state goes to a new instance.
    swap_after_batches: Option<usize>,
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
    /// The version to swap to at `swap_after_batches` (default: the same file).
    next: Option<PathBuf>,
    /// A shell command that builds the module, run in the case folder first.
    build: Option<String>,
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseOutcome {
    /// Output and rejections are as expected.
    Passed,
    /// `--update` wrote the expected files; what changed in them, as a diff (empty when
    /// nothing did).
    Updated(String),
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

/// Runs the case in `dir` with modules (that name no path) from `modules`, or from the
/// modules folder nearest the case.
pub fn run_case(dir: &Path, modules: Option<&Path>, update: bool) -> CaseOutcome {
    match run_and_compare(dir, modules, update) {
        Ok(outcome) => outcome,
        Err(e) => CaseOutcome::Failed(format!("error: {e:#}")),
    }
}

fn run_and_compare(dir: &Path, modules: Option<&Path>, update: bool) -> Result<CaseOutcome> {
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
    let mut report = String::new();
    if update {
        for (name, text) in &files {
            let before = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            if before != *text {
                unified_diff(&mut report, name, ["before", "now"], &before, text)?;
            }
            std::fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))?;
        }
        return Ok(CaseOutcome::Updated(report));
    }
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
            unified_diff(&mut report, name, ["expected", "actual"], &expected, actual)?;
            field_differences(
                &similar::TextDiff::from_lines(&expected, actual),
                &mut report,
            );
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

/// Writes the line diff of file `name` from `before` to `after` into `report`, its two
/// sides labelled `labels`.
fn unified_diff(
    report: &mut String,
    name: &str,
    labels: [&str; 2],
    before: &str,
    after: &str,
) -> std::fmt::Result {
    let diff = similar::TextDiff::from_lines(before, after);
    let header = labels.map(|label| format!("{name} ({label})"));
    write!(
        report,
        "{}",
        diff.unified_diff()
            .context_radius(1)
            .header(&header[0], &header[1])
    )
}

/// Runs the case's chain on its input.
fn run(dir: &Path, modules: Option<&Path>) -> Result<TestOutput> {
    let text = std::fs::read_to_string(dir.join(CASE_FILE))
        .with_context(|| format!("reading {CASE_FILE}"))?;
    let case: CaseConfig =
        toml::from_str(&text).with_context(|| format!("{CASE_FILE} is not a valid case"))?;
    for command in case.transforms.iter().filter_map(|m| m.build.as_deref()) {
        let status = std::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(dir)
            .status()
            .with_context(|| format!("running {command:?}"))?;
        anyhow::ensure!(status.success(), "the build {command:?} failed: {status}");
    }
    let folder = match modules {
        Some(folder) => Some(std::path::absolute(folder)?),
        None => modules_folder(dir),
    };
    let locate = |name: &str| -> Result<PathBuf> {
        let folder = folder.as_ref().with_context(|| {
            format!("module {name} names no path and no modules folder was found near the case (pass --modules)")
        })?;
        Ok(folder.join(format!("{name}.wasm")))
    };
    let mut chain = Vec::new();
    let mut next = Vec::new();
    for m in case.transforms {
        let path = match m.path {
            Some(path) => dir.join(path),
            None => locate(&m.name)?,
        };
        if let Some(stale) = staleness(&path) {
            tracing::warn!("{stale}");
        }
        next.push(m.next.map(|n| dir.join(n)));
        chain.push(ModuleConfig {
            path,
            name: m.name,
            config: m.config,
            config_files: m.config_files,
            allowed_digests: Vec::new(),
        });
    }
    let mut harness = Harness::chain(&chain, dir, case.limits)?;
    let batches = input_batches(dir, case.batch_size)?;
    let mut output = TestOutput::default();
    for (number, batch) in batches.into_iter().enumerate() {
        if case.swap_after_batches == Some(number) && number > 0 {
            harness.hand_over_state(&chain, &next, dir)?;
        }
        let out = harness.run(batch);
        output.documents.extend(out.documents);
        output.rejected.extend(out.rejected);
    }
    Ok(output)
}

/// The case's input as batches of `batch_size` records.
fn input_batches(dir: &Path, batch_size: Option<usize>) -> Result<Vec<Batch>> {
    let points = dir.join("input.ndjson");
    if dir.join("input.plt").exists() {
        let source = FilesSourceConfig::plt("input.plt");
        let mut source = FilesSource::open(&source, dir, batch_size.unwrap_or(4096))?;
        let mut batches = Vec::new();
        while let Some(batch) = source.next_batch()? {
            batches.push(batch.batch);
        }
        Ok(batches)
    } else if points.exists() {
        let all = super::points_from_documents(&std::fs::read_to_string(&points)?)?;
        let Records::Points(columns) = &all.records else {
            unreachable!("documents read back are points")
        };
        let size = batch_size.unwrap_or(usize::MAX).max(1);
        let rows: Vec<_> = columns.iter().collect();
        Ok(rows
            .chunks(size)
            .map(|chunk| Batch {
                trajectories: all.trajectories.clone(),
                zone_sets: all.zone_sets.clone(),
                records: Records::Points(chunk.iter().copied().collect()),
            })
            .collect())
    } else {
        anyhow::bail!("the case has no input.plt or input.ndjson")
    }
}

/// `modules/` or `target/modules/` of `dir` or of the nearest folder above it that has one.
fn modules_folder(dir: &Path) -> Option<PathBuf> {
    let dir = std::path::absolute(dir).ok()?;
    dir.ancestors()
        .flat_map(|a| [a.join("modules"), a.join("target/modules")])
        .find(|candidate| candidate.is_dir())
}

/// Says so when `module` is older than a source file of the project it was built in (the
/// nearest folder above it with a Cargo.toml, package.json or pyproject.toml /
/// requirements.txt): a stale build may pass or fail for the wrong reason. (In a
/// workspace that is every member's sources, so the warning can be a false alarm; it
/// never fails the case.)
fn staleness(module: &Path) -> Option<String> {
    let built = std::fs::metadata(module).and_then(|m| m.modified()).ok()?;
    let module = std::path::absolute(module).ok()?;
    let project = module.ancestors().skip(1).find(|a| {
        [
            "Cargo.toml",
            "package.json",
            "pyproject.toml",
            "requirements.txt",
        ]
        .iter()
        .any(|f| a.join(f).is_file())
    })?;
    // The project's own sources, not what a build or an install wrote.
    let skip = [
        "target",
        "node_modules",
        "modules",
        ".venv",
        "tests",
        "__pycache__",
        ".git",
    ];
    let newer = walkdir::WalkDir::new(project)
        .into_iter()
        .filter_entry(|e| !skip.iter().any(|s| e.file_name() == *s) || e.depth() == 0)
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_type().is_file()
                && e.path()
                    .extension()
                    .is_some_and(|x| ["rs", "py", "js", "ts", "wit"].iter().any(|k| x == *k))
        })
        .find(|e| {
            e.metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t > built)
        });
    newer.map(|source| {
        format!(
            "{} is older than {}: rebuild it (or give the module a `build` command in case.toml)",
            module.display(),
            source.path().display()
        )
    })
}
