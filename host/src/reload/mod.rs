//! Hot reload: new module versions and pipeline configs, applied without a restart.
//!
//! # What a user sees
//!
//! Drop a new `.wasm` where a running pipeline's module lives (copy over it, rename a
//! temp file into place, or let a build write it) and, within a few hundred milliseconds,
//! the next batch runs through the new version with the old version's state. Edit the
//! pipeline config (or send SIGHUP) and the chain is rebuilt the same way: modules added,
//! removed, reordered or reconfigured. Anything wrong (a half-written file, a component
//! built against another contract, an `init` that refuses the config, a digest that is not
//! pinned) is refused with its reason in the log and a counter in [`ReloadStatus`], and
//! the running version keeps going.
//!
//! # How it works
//!
//! * A reload thread owns a [`FileWatcher`](crate::watch::FileWatcher) on the folders of the modules, the
//!   config and the config's files. Each changed module is compiled and validated on a
//!   thread of its own, off the hot path (read, pinning check, compile — or read from the
//!   disk cache —, link, `init` with the configured config), so a slow compile (a Python
//!   module's 10 s) never holds up another module's swap. The log says, per version, when
//!   the change was detected, how long it took to load, and how long until it was active.
//! * A validated version goes to the pipeline as an [`Update`] over a channel. The pipeline
//!   looks at the channel between batches and hands updates to the [`Chain`], which swaps
//!   them in with `snapshot` → `restore` and keeps the old version on probation for one
//!   batch (see [`crate::chain`]).
//! * Every version has a generation number (1, 2, … per module name) that, with the
//!   digest, tags its log lines, reload events and dead letters.
//!
//! Changes that need a new source or sinks (`[source]`, `[sink]`, `[dead_letter]`,
//! `batch_size`, `[limits]`, `[state]`, `[http]`) are logged and take effect at the next start.
//!
//! [`Chain`]: crate::chain::Chain

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::watch::{self, Change, Event, FileWatcher};

use crate::chain::ChainEntry;
use crate::config::{ModuleConfig, PipelineConfig};
use crate::engine::{Engine, Module, digest_of};
use crate::status::{Outcome, ReloadStatus};

/// A validated change for the chain, applied at the next batch boundary.
pub enum Update {
    /// A new version of the module of the same name, and when its file change was detected.
    Module(Arc<Module>, Instant),
    /// A new chain, from a reloaded pipeline config.
    Chain(Vec<ChainEntry>),
}

/// Watches a pipeline's files and validates what changes; see the module docs.
pub struct Reloader {
    control: Sender<Event>,
    updates: Receiver<Update>,
    thread: Option<JoinHandle<()>>,
    hangup: Option<signal_hook::iterator::Handle>,
}

impl Reloader {
    /// Starts watching. `config_path` is the file `config` was read from, if any: without
    /// one, only the modules are watched. `status` is the chain's, for the active versions.
    pub fn start(
        engine: Arc<Engine>,
        config: PipelineConfig,
        config_path: Option<&Path>,
        status: Arc<ReloadStatus>,
    ) -> Result<Self> {
        let config_path = config_path.map(watch::absolute).transpose()?;
        let (mut watcher, control) = FileWatcher::new()?;
        let (updates_tx, updates) = mpsc::channel();
        let (loaded_tx, loaded) = mpsc::channel();
        let thread = ReloadThread {
            control: control.clone(),
            loaded_tx,
            loaded,
            in_flight: HashMap::new(),
            sent: config
                .transforms
                .iter()
                .filter_map(|m| Some((m.name.clone(), status.active(&m.name)?.digest)))
                .collect(),
            generations: config
                .transforms
                .iter()
                .map(|m| (m.name.clone(), 1))
                .collect(),
            engine,
            config,
            config_path,
            status,
            updates: updates_tx,
        };
        watcher.watch_files(&thread.watched_files())?;
        let hangup = match &thread.config_path {
            Some(_) => Some(forward_hangups(control.clone())?),
            None => None,
        };
        let thread = std::thread::Builder::new()
            .name("waystream-reload".into())
            .spawn(move || thread.run(watcher))
            .context("starting the reload thread")?;
        Ok(Reloader {
            control,
            updates,
            thread: Some(thread),
            hangup,
        })
    }

    /// The next validated update, if one is waiting.
    pub fn try_next(&self) -> Option<Update> {
        self.updates.try_recv().ok()
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        if let Some(hangup) = self.hangup.take() {
            hangup.close();
        }
        let _ = self.control.send(Event::Other(Change::Stop));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Turns SIGHUP into [`Change::Hangup`] for the reload thread.
fn forward_hangups(control: Sender<Event>) -> Result<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .context("listening for SIGHUP")?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("waystream-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                if control.send(Event::Other(Change::Hangup)).is_err() {
                    break;
                }
            }
        })?;
    Ok(handle)
}

/// A module version loaded on its own thread: (name, generation, digest, result, when the
/// change was detected).
type Loaded = (String, u64, String, Result<Arc<Module>>, Instant);

/// The reload thread's state: the config in force and what it loaded.
struct ReloadThread {
    /// Wakes the reload thread when a load thread is done.
    control: Sender<Event>,
    loaded_tx: Sender<Loaded>,
    loaded: Receiver<Loaded>,
    /// The generation of the newest load started per module: an older one that finishes
    /// later is dropped, so a version never replaces a newer one.
    in_flight: HashMap<String, u64>,
    engine: Arc<Engine>,
    config: PipelineConfig,
    config_path: Option<PathBuf>,
    /// The digest of the version last sent (or first loaded) per module name: a file event
    /// for that same content is not a new version.
    sent: HashMap<String, String>,
    /// The last generation given out per module name.
    generations: HashMap<String, u64>,
    status: Arc<ReloadStatus>,
    updates: Sender<Update>,
}

impl ReloadThread {
    fn run(mut self, mut watcher: FileWatcher) {
        loop {
            match watcher.next_change() {
                Change::Stop => return,
                Change::Loaded => self.finish_loads(),
                Change::Hangup => self.reload_config(&mut watcher),
                Change::File(path) if self.is_config_file(&path) => {
                    self.reload_config(&mut watcher)
                }
                Change::File(path) => self.reload_modules_at(&path),
            }
        }
    }

    /// The config file and the files its modules' configs are read from.
    fn is_config_file(&self, path: &Path) -> bool {
        self.config_path.as_deref() == Some(path)
            || self.config.transforms.iter().any(|m| {
                m.config_files
                    .values()
                    .any(|f| watch::absolute(&self.config.base.join(f)).is_ok_and(|f| f == path))
            })
    }

    fn watched_files(&self) -> Vec<PathBuf> {
        let base = &self.config.base;
        let modules = self.config.transforms.iter().map(|m| base.join(&m.path));
        let config_files = self
            .config
            .transforms
            .iter()
            .flat_map(|m| m.config_files.values().map(|f| base.join(f)));
        modules
            .chain(config_files)
            .chain(self.config_path.clone())
            .collect()
    }

    /// Starts loading the new version of every module whose file is `path`, each on a
    /// thread of its own; [`ReloadThread::finish_loads`] sends them on.
    fn reload_modules_at(&mut self, path: &Path) {
        let detected = Instant::now();
        let changed: Vec<ModuleConfig> = self
            .config
            .transforms
            .iter()
            .filter(|m| watch::absolute(&self.config.base.join(&m.path)).is_ok_and(|p| p == path))
            .cloned()
            .collect();
        for module in changed {
            let file = self.config.base.join(&module.path);
            let read = std::fs::read(&file)
                .with_context(|| format!("module {}: reading {}", module.name, file.display()));
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.status
                        .record(&module.name, None, Outcome::Refused(format!("{e:#}")));
                    continue;
                }
            };
            let digest = digest_of(&bytes);
            if self.sent.get(&module.name) == Some(&digest) {
                tracing::debug!(module = %module.name, "file event, but the same version: nothing to do");
                continue;
            }
            let generation = self
                .in_flight
                .get(&module.name)
                .copied()
                .max(self.generations.get(&module.name).copied())
                .unwrap_or(0)
                + 1;
            self.in_flight.insert(module.name.clone(), generation);
            tracing::info!(module = %module.name, digest = crate::engine::short_digest(&digest), generation, "change detected; loading");
            let (engine, config) = (self.engine.clone(), self.config.clone());
            let (done, wake) = (self.loaded_tx.clone(), self.control.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("waystream-load-{}", module.name))
                .spawn(move || {
                    let result = module.config_json(&config.base).and_then(|json| {
                        load(&engine, &module, &config, &bytes, &digest, json, generation)
                    });
                    let _ = done.send((module.name.clone(), generation, digest, result, detected));
                    let _ = wake.send(Event::Other(Change::Loaded));
                });
            if let Err(e) = spawned {
                tracing::error!("could not start a load thread: {e}");
            }
        }
    }

    /// Sends on the versions whose loads finished (newest per module only).
    fn finish_loads(&mut self) {
        while let Ok((name, generation, digest, result, detected)) = self.loaded.try_recv() {
            if self.in_flight.get(&name) != Some(&generation) {
                tracing::info!(module = %name, generation, "a newer version of the file is loading: this one is dropped");
                continue;
            }
            self.in_flight.remove(&name);
            match result {
                Ok(version) => {
                    tracing::info!(
                        module = %name,
                        digest = version.short_digest(),
                        generation,
                        load_ms = version.load_time.as_millis() as u64,
                        compiled = if version.cached { "from the cache" } else { "now" },
                        since_change_ms = detected.elapsed().as_millis() as u64,
                        "loaded; waiting for the batch boundary"
                    );
                    self.generations.insert(name.clone(), generation);
                    self.sent.insert(name, digest);
                    let _ = self.updates.send(Update::Module(version, detected));
                }
                Err(e) => {
                    self.status
                        .record(&name, Some(&digest), Outcome::Refused(format!("{e:#}")))
                }
            }
        }
    }

    /// Re-reads the pipeline config and sends the new chain, or refuses it as a whole.
    fn reload_config(&mut self, watcher: &mut FileWatcher) {
        let Some(path) = self.config_path.clone() else {
            return;
        };
        // Generations handed out while planning are taken back if the plan fails.
        let generations_before = self.generations.clone();
        match self.plan_chain(&path) {
            Ok((config, entries)) => {
                for (what, changed) in [
                    ("[source]", config.source != self.config.source),
                    ("[sink]", config.sink != self.config.sink),
                    (
                        "[dead_letter]",
                        config.dead_letter != self.config.dead_letter,
                    ),
                    ("batch_size", config.batch_size != self.config.batch_size),
                    ("[limits]", config.limits != self.config.limits),
                    ("[state]", config.state != self.config.state),
                    ("[http]", config.http != self.config.http),
                ] {
                    if changed {
                        tracing::warn!(
                            "config reload: the change to {what} takes effect at the next start"
                        );
                    }
                }
                self.config = config;
                for entry in &entries {
                    if let ChainEntry::Load(version) = entry {
                        self.sent
                            .insert(version.name.clone(), version.digest.clone());
                    }
                }
                if let Err(e) = watcher.watch_files(&self.watched_files()) {
                    tracing::warn!("config reload: {e:#}");
                }
                let _ = self.updates.send(Update::Chain(entries));
            }
            Err(e) => {
                self.generations = generations_before;
                self.status
                    .record("config", None, Outcome::Refused(format!("{e:#}")));
            }
        }
    }

    /// The new config and its chain: a running stage is kept where the chain runs exactly
    /// this file's version with this config, a new version is loaded and validated otherwise.
    /// (Deciding by what the chain runs, not by what was sent, can only cost a redundant
    /// swap, never leave a stale version running.)
    fn plan_chain(&mut self, path: &Path) -> Result<(PipelineConfig, Vec<ChainEntry>)> {
        let config = PipelineConfig::load(path)?;
        let mut entries = Vec::new();
        for module in &config.transforms {
            let bytes = std::fs::read(config.base.join(&module.path)).with_context(|| {
                format!("module {}: reading {}", module.name, module.path.display())
            })?;
            let digest = digest_of(&bytes);
            // Pinning applies to the versions kept running too, in case it was just turned on.
            module.check_pinned(&digest, config.require_pinned_digests)?;
            let json = module.config_json(&config.base)?;
            let running = self.status.active(&module.name);
            entries.push(match running {
                Some(a) if a.digest == digest && a.config == json => {
                    ChainEntry::Keep(module.name.clone())
                }
                _ => ChainEntry::Load(self.load(module, &config, &bytes, &digest, json)?),
            });
        }
        Ok((config, entries))
    }

    /// Checks pinning, compiles and validates `bytes` as the next generation of `module`,
    /// on this thread (a config reload loads its modules in one go).
    fn load(
        &mut self,
        module: &ModuleConfig,
        config: &PipelineConfig,
        bytes: &[u8],
        digest: &str,
        init_config: String,
    ) -> Result<Arc<Module>> {
        let generation = self.generations.get(&module.name).copied().unwrap_or(0) + 1;
        let version = load(
            &self.engine,
            module,
            config,
            bytes,
            digest,
            init_config,
            generation,
        )?;
        self.generations.insert(module.name.clone(), generation);
        Ok(version)
    }
}

/// Checks pinning, compiles and validates `bytes` (sha256 `digest`) as generation
/// `generation` of `module`. `init_config` is the module's config JSON.
fn load(
    engine: &Arc<Engine>,
    module: &ModuleConfig,
    config: &PipelineConfig,
    bytes: &[u8],
    digest: &str,
    init_config: String,
    generation: u64,
) -> Result<Arc<Module>> {
    module.check_pinned(digest, config.require_pinned_digests)?;
    let path = config.base.join(&module.path);
    Module::from_bytes(engine, &module.name, &path, bytes, init_config, generation)
}
