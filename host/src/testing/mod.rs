//! Testing transforms as built components, offline, with the production engine.
//!
//! A transform's logic is tested natively through the guest SDK; this module tests what
//! ships: the `.wasm` file, loaded with the same linker, sandbox and limits as a running
//! pipeline, fed PLT lines or points, with the output documents and the rejections as the
//! result. [`Harness`] is the library form, for `cargo test` (add `waystream` as a
//! dev-dependency); [`cases`] is what `waystream test` runs over case folders.
//!
//! ```no_run
//! use waystream::testing::Harness;
//!
//! let mut harness = Harness::module("target/modules/parse-plt.wasm", "{}").unwrap();
//! let out = harness.run_plt("000", "t1", "39.9,116.4,0,100,39744.0,2008-10-23,02:53:04\nnot a point\n").unwrap();
//! assert_eq!(out.documents.len(), 1);
//! assert_eq!(out.rejected[0].cause, "expected 7 comma-separated fields, found 1");
//! ```

pub mod cases;
mod input;

use std::path::Path;

use anyhow::{Context, Result};
use waystream_contract::document::{DocumentEncoder, Encoded};

use crate::chain::Chain;
use crate::config::ModuleConfig;
use crate::dead_letter::DeadLetter;
use crate::engine::bindings::{Batch, RawLines, Records, Trajectory};
use crate::engine::{Engine, Limits};
use crate::pipeline::load_modules;

pub use input::points_from_documents;

/// A chain of built modules, ready to take test input.
pub struct Harness {
    chain: Chain,
    encoder: DocumentEncoder,
}

/// What a chain made of one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestOutput {
    /// Output documents, one JSON object per line as the sinks write them (no `\n`).
    pub documents: Vec<String>,
    /// Records rejected on the way, as dead letters, in the order the chain reported them.
    pub rejected: Vec<DeadLetter>,
}

impl Harness {
    /// A chain of `modules` (paths and config files relative to `base`) under `limits`.
    pub fn chain(modules: &[ModuleConfig], base: &Path, limits: Limits) -> Result<Self> {
        let engine = Engine::with_cache(limits, &Default::default())?;
        let loaded = load_modules(&engine, modules, base, false)?;
        Ok(Harness {
            chain: Chain::new(engine, loaded)?,
            encoder: DocumentEncoder::default(),
        })
    }

    /// One module, named after its file, with `config` (JSON) for its `init`.
    pub fn module(path: impl AsRef<Path>, config: &str) -> Result<Self> {
        let path = path.as_ref();
        let name = path
            .file_stem()
            .context("module path names no file")?
            .to_string_lossy();
        let config: toml::Table =
            serde_json::from_str(config).context("module config must be a JSON object")?;
        let module = ModuleConfig {
            name: name.into_owned(),
            path: path.to_path_buf(),
            config,
            config_files: Default::default(),
            allowed_digests: Vec::new(),
        };
        Self::chain(&[module], Path::new("."), Limits::default())
    }

    /// Runs the point lines of one trajectory (no header lines; LF or CRLF) as one batch.
    pub fn run_plt(&mut self, user: &str, trajectory: &str, text: &str) -> Result<TestOutput> {
        let mut raw = RawLines::default();
        for (seq, line) in text.lines().enumerate() {
            raw.push(
                line.trim_end_matches('\r').as_bytes(),
                0,
                u32::try_from(seq)?,
            );
        }
        // Line ends are u32 offsets: every one fits when the last does.
        u32::try_from(raw.data.len()).context("input too large for one batch")?;
        let trajectory = Trajectory {
            user: user.into(),
            id: trajectory.into(),
        };
        Ok(self.run(Batch {
            trajectories: vec![trajectory],
            zone_sets: Vec::new(),
            records: Records::Lines(raw),
        }))
    }

    /// Hands every module's state over to a new instance, as a hot swap does: of the
    /// version `next[i]` names for module `i` (paths relative to `base`), or of the same
    /// version. A new version that is refused, or state that does not carry over, is an
    /// error: the case exists to show that it does.
    pub fn hand_over_state(
        &mut self,
        modules: &[ModuleConfig],
        next: &[Option<std::path::PathBuf>],
        base: &Path,
    ) -> Result<()> {
        for (module, next) in modules.iter().zip(next) {
            let Some(path) = next else { continue };
            let version = crate::engine::Module::load(
                self.chain.engine(),
                &module.name,
                path,
                module.config_json(base)?,
            )?;
            self.chain.swap(version, None);
            if let Some(crate::status::Outcome::Activated {
                fresh_because: Some(why),
                ..
            }) = self
                .chain
                .reload_status()
                .events()
                .last()
                .map(|e| e.outcome.clone())
            {
                anyhow::bail!(
                    "module {}: the state did not carry over: {why}",
                    module.name
                );
            }
        }
        if next.iter().all(Option::is_none)
            && let Some((name, why)) = self.chain.restart_with_state().into_iter().next()
        {
            anyhow::bail!("module {name}: the state did not carry over: {why}");
        }
        Ok(())
    }

    /// Runs one batch (lines or points) through the chain.
    pub fn run(&mut self, batch: Batch) -> TestOutput {
        let mut dead = Vec::new();
        let out = self.chain.run(batch, &mut dead);
        let mut encoded = Encoded::default();
        self.encoder.encode(
            &out.batch.trajectories,
            &out.zone_sets,
            out.points.iter(),
            &mut encoded,
        );
        TestOutput {
            documents: encoded
                .iter()
                .map(|d| String::from_utf8_lossy(d.strip_suffix(b"\n").unwrap_or(d)).into_owned())
                .collect(),
            rejected: dead,
        }
    }
}
