//! One compiled and validated module version.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use wasmtime::component::InstancePre;

use super::bindings::{KeyedIndices, TransformIndices};
use super::instance::Started;
use super::{Compiled, Engine, GuestState, Instance};

/// A module version: compiled, linked, and proven to initialise with its config.
pub struct Module {
    /// The name the pipeline config gives the module (used in logs, metrics, dead letters).
    pub name: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// `sha256:<hex>` of the component file: the version's identity.
    pub digest: String,
    /// Counts the versions loaded under this name in this process, from 1; with the
    /// digest it tags log lines, reload events and dead letters.
    pub generation: u64,
    /// The module's config as the JSON document handed to `init`.
    pub config: String,
    /// How long compiling (or reading from the disk cache) and validating took.
    pub load_time: std::time::Duration,
    /// Whether the compiled code came from the disk cache.
    pub cached: bool,
    pub(super) pre: InstancePre<GuestState>,
    pub(super) transform: TransformIndices,
    /// The `keyed-state` export (contract 0.3.1), when the module has it.
    pub(super) keyed: Option<KeyedIndices>,
    /// The instance that validated the module, until [`Instance::new`] takes it.
    started: Mutex<Option<Started>>,
}

impl Module {
    /// Reads, compiles and validates a module: it must compile, its imports must be
    /// satisfiable, it must export the contract's world, and `init` must accept `config`.
    /// This is the first generation of `name`; reloads use [`Module::from_bytes`].
    pub fn load(
        engine: &Arc<Engine>,
        name: &str,
        path: &Path,
        config: String,
    ) -> Result<Arc<Module>> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("module {name}: reading {}", path.display()))?;
        Self::from_bytes(engine, name, path, &bytes, config, 1)
    }

    /// Like [`Module::load`], from bytes already in memory, as generation `generation`.
    pub fn from_bytes(
        engine: &Arc<Engine>,
        name: &str,
        path: &Path,
        bytes: &[u8],
        config: String,
        generation: u64,
    ) -> Result<Arc<Module>> {
        let started = std::time::Instant::now();
        let digest = digest_of(bytes);
        let (component, compiled) = engine.compile(&digest, bytes).with_context(|| {
            format!(
                "module {name}: {} does not compile as a component",
                path.display()
            )
        })?;
        let instance_pre = engine
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("module {name}: imports something the host does not provide")
            })?;
        let transform = TransformIndices::new(&instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("module {name}: does not export the waystream:transform@0.3 world")
            })?;
        let keyed = KeyedIndices::new(&instance_pre).ok();
        let mut module = Module {
            name: name.to_string(),
            path: path.to_path_buf(),
            digest,
            generation,
            config,
            load_time: Default::default(),
            cached: compiled == Compiled::Cached,
            pre: instance_pre,
            transform,
            keyed,
            started: Mutex::new(None),
        };
        module.load_time = started.elapsed();
        let module = Arc::new(module);
        // Validation: one instance must initialise. It is kept for the module's first use.
        let instance = Instance::start(engine, module.clone())?.into_started();
        *module
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(instance);
        Ok(module)
    }

    /// The instance made when the module was loaded, the first time it is asked for.
    pub(super) fn take_started(&self) -> Option<Started> {
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Whether the module keeps per-trajectory state the host can move (it exports
    /// contract 0.3.1's `keyed-state`).
    pub fn is_keyed(&self) -> bool {
        self.keyed.is_some()
    }

    /// The first 12 hex digits of the digest, for log lines.
    pub fn short_digest(&self) -> &str {
        short_digest(&self.digest)
    }
}

/// The first 12 hex digits of a `sha256:<hex>` digest, for log lines.
pub fn short_digest(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// `sha256:<hex>` of a component file, as [`Module::digest`] and pinning lists spell it.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}
