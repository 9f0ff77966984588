//! What versions run and what reloads happened: the active version of each module,
//! counters, recent events.
//!
//! Written by the reload thread (which validates new versions) and the chain (which swaps
//! them in), read by whoever watches the pipeline: the closing summary, tests, metrics.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cause::Cause;

/// Events kept for inspection; older ones are dropped.
const EVENTS_KEPT: usize = 256;
/// Longest reason an event keeps, in bytes.
const REASON_BYTES: usize = 4096;

/// Reload counters and history of one pipeline.
#[derive(Debug, Default)]
pub struct ReloadStatus {
    swaps: AtomicU64,
    refusals: AtomicU64,
    rollbacks: AtomicU64,
    snapshot_failures: AtomicU64,
    config_reloads: AtomicU64,
    active: Mutex<HashMap<String, ActiveVersion>>,
    events: Mutex<VecDeque<ReloadEvent>>,
}

/// The module version a stage runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveVersion {
    /// `sha256:<hex>` of the component file.
    pub digest: String,
    /// Counts the versions loaded under this name, from 1.
    pub generation: u64,
    /// The config (JSON) its `init` was given.
    pub config: String,
}

/// One reload outcome.
#[derive(Debug, Clone)]
pub struct ReloadEvent {
    /// When it happened.
    pub at: Instant,
    /// The module's name (or `config` for a pipeline config reload).
    pub module: String,
    /// The digest of the version concerned, when there is one.
    pub digest: Option<String>,
    /// What happened.
    pub outcome: Outcome,
}

/// How a reload ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The version runs now; processing paused for `pause` while it was swapped in.
    Activated {
        /// The version's generation.
        generation: u64,
        /// Time spent swapping at the batch boundary (snapshot, instantiate, restore).
        pause: Duration,
        /// Why the version started without its predecessor's state, when it did (its
        /// `restore` refused or trapped, or the old version's `snapshot` failed).
        fresh_because: Option<String>,
        /// From the file change being detected to this activation (none for a version a
        /// config reload brought).
        since_change: Option<Duration>,
    },
    /// The version was refused before it ran; the old one keeps running.
    Refused(String),
    /// The version failed its first batch and the old one was put back.
    RolledBack(String),
    /// The version being replaced could not give its state (its `snapshot` trapped, ran
    /// out of time or memory); its successor starts fresh. The event's digest is the
    /// replaced version's.
    SnapshotFailed(String),
    /// The pipeline config was reloaded.
    ConfigApplied,
}

impl ReloadStatus {
    /// Versions swapped in (config reloads that changed a module included).
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }

    /// Versions or configs refused or rolled back: the old one kept running.
    pub fn failures(&self) -> u64 {
        self.refusals() + self.rollbacks()
    }

    /// Versions or configs refused before they ran.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Versions that failed their first batch and were rolled back.
    pub fn rollbacks(&self) -> u64 {
        self.rollbacks.load(Ordering::Relaxed)
    }

    /// Versions replaced whose `snapshot` failed (their successors started fresh).
    pub fn snapshot_failures(&self) -> u64 {
        self.snapshot_failures.load(Ordering::Relaxed)
    }

    /// Pipeline configs applied.
    pub fn config_reloads(&self) -> u64 {
        self.config_reloads.load(Ordering::Relaxed)
    }

    /// The version running under `module`, if that module is in the chain.
    pub fn active(&self, module: &str) -> Option<ActiveVersion> {
        lock(&self.active).get(module).cloned()
    }

    /// The events kept so far, oldest first.
    pub fn events(&self) -> Vec<ReloadEvent> {
        lock(&self.events).iter().cloned().collect()
    }

    /// Records that `module` now runs `version`.
    pub(crate) fn set_active(&self, module: &str, version: ActiveVersion) {
        lock(&self.active).insert(module.to_string(), version);
    }

    /// Forgets modules no longer in the chain.
    pub(crate) fn retain_active(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.active).retain(|name, _| keep(name));
    }

    /// Records an outcome, logs it and moves the matching counter.
    pub(crate) fn record(&self, module: &str, digest: Option<&str>, outcome: Outcome) {
        // Reasons may quote a guest (an `init` refusal, a trap): one line, capped.
        let line = |reason: String| Cause::capped(&reason, REASON_BYTES).to_string();
        let outcome = match outcome {
            Outcome::Refused(reason) => Outcome::Refused(line(reason)),
            Outcome::RolledBack(reason) => Outcome::RolledBack(line(reason)),
            Outcome::SnapshotFailed(reason) => Outcome::SnapshotFailed(line(reason)),
            Outcome::Activated {
                generation,
                pause,
                fresh_because,
                since_change,
            } => Outcome::Activated {
                generation,
                pause,
                fresh_because: fresh_because.map(line),
                since_change,
            },
            other => other,
        };
        let short = digest.map_or("-", crate::engine::short_digest);
        match &outcome {
            Outcome::Activated {
                generation,
                pause,
                since_change,
                ..
            } => {
                self.swaps.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    module,
                    digest = short,
                    generation,
                    pause_us = pause.as_micros() as u64,
                    active_after_ms = since_change.map(|d| d.as_millis() as u64),
                    "module version active"
                );
            }
            Outcome::Refused(reason) => {
                self.refusals.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    module,
                    digest = short,
                    "reload refused, the old version keeps running: {reason}"
                );
            }
            Outcome::RolledBack(reason) => {
                self.rollbacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    module,
                    digest = short,
                    "new version failed its first batch and was rolled back: {reason}"
                );
            }
            Outcome::SnapshotFailed(reason) => {
                self.snapshot_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    module,
                    digest = short,
                    "the replaced version's snapshot failed; its successor starts fresh: {reason}"
                );
            }
            Outcome::ConfigApplied => {
                self.config_reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!("pipeline config reloaded");
            }
        }
        let mut events = lock(&self.events);
        if events.len() == EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(ReloadEvent {
            at: Instant::now(),
            module: module.to_string(),
            digest: digest.map(str::to_string),
            outcome,
        });
    }
}

/// Locks a mutex, ignoring poisoning: the data here stays consistent under any panic.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
