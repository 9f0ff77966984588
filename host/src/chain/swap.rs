//! Swapping module versions at a batch boundary, with state carried over.
//!
//! A new version arrives already compiled and validated, with the instance whose `init`
//! accepted the config (made on the reload thread), so what happens here is short: pass
//! the old instance's `snapshot` to the new one's `restore`, and put it in the old one's
//! place. If `restore` refuses the state (a layout the new version does not read), the new
//! version starts fresh and that is logged. If the old version's `snapshot` traps, loops
//! or runs out of memory, there is no state to hand over: the new version starts fresh all
//! the same (logged against the old version's digest, and counted), so a version with a
//! broken `snapshot` can always be replaced.
//!
//! A version can pass validation and still fail on real data, a module that traps on
//! every batch for instance. So the replaced version stays on probation beside its
//! successor until the successor has run one batch: if that batch fails as a whole, the
//! old version, whose state is exactly as it was at the swap, is put back and runs the
//! batch instead. Nothing is lost and no record is processed twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::{Chain, Stage, StageStats};
use crate::engine::{Engine, GuestError, Instance, Module};
use crate::status::{Outcome, ReloadStatus};

/// One module of a reloaded chain (see [`Chain::reconfigure`]).
pub enum ChainEntry {
    /// Keep the running stage of this name as it is (same file, same config).
    Keep(String),
    /// A new or changed module; it takes over the state of the stage of its name.
    Load(Arc<Module>),
}

/// A stage of a new chain, once its new instance (if any) has started.
enum Planned {
    Keep(String),
    Load(Arc<Module>, Instance),
}

/// The version a swap replaced, kept for one batch in case its successor fails.
pub(super) struct Previous {
    module: Arc<Module>,
    instance: Option<Instance>,
}

impl Chain {
    /// Replaces the module of the same name by `module`, carrying its state over;
    /// `detected` is when its file change was seen (for the log and the reload event).
    pub fn swap(&mut self, module: Arc<Module>, detected: Option<Instant>) {
        let started = Instant::now();
        let Some(index) = self
            .stages
            .iter()
            .position(|s| s.module.name == module.name)
        else {
            let reason = "the chain has no module of that name (any more)".to_string();
            self.status
                .record(&module.name, Some(&module.digest), Outcome::Refused(reason));
            return;
        };
        let running = &self.stages[index].module;
        if running.digest == module.digest && running.config == module.config {
            // The file went back to the version that runs (say, after a rollback).
            tracing::debug!(module = %module.name, "the new version is the running one: nothing to swap");
            return;
        }
        let fresh = match Instance::new(&self.engine, module.clone()) {
            Ok(fresh) => fresh,
            Err(e) => {
                self.status.record(
                    &module.name,
                    Some(&module.digest),
                    Outcome::Refused(format!("{e:#}")),
                );
                return;
            }
        };
        let stage = &mut self.stages[index];
        let (instance, fresh_because) =
            hand_over(&self.engine, &self.status, stage, fresh, &module);
        let previous = Previous {
            module: std::mem::replace(&mut stage.module, module),
            instance: std::mem::replace(&mut stage.instance, instance),
        };
        // Two swaps before a batch: keep the version that last ran, not the one in between.
        stage.previous.get_or_insert(previous);
        self.activated(index, started, fresh_because, detected);
    }

    /// Replaces the whole chain by `entries`, in order: stages named by
    /// [`ChainEntry::Keep`] stay as they are; a [`ChainEntry::Load`] takes over the state of
    /// the stage of the same name, if there was one. Either every new instance starts and
    /// the new chain runs from the next batch, or nothing changes.
    pub fn reconfigure(&mut self, entries: Vec<ChainEntry>) {
        let started = Instant::now();
        // Phase 1, fallible: instantiate every new version; the running chain is untouched.
        let mut planned = Vec::with_capacity(entries.len());
        for entry in entries {
            planned.push(match entry {
                ChainEntry::Keep(name) if self.stages.iter().any(|s| s.module.name == name) => {
                    Planned::Keep(name)
                }
                ChainEntry::Keep(name) => {
                    let reason = format!("module {name} was to be kept but is not in the chain");
                    return self.status.record("config", None, Outcome::Refused(reason));
                }
                ChainEntry::Load(module) => match Instance::new(&self.engine, module.clone()) {
                    Ok(instance) => Planned::Load(module, instance),
                    Err(e) => {
                        return self.status.record(
                            "config",
                            None,
                            Outcome::Refused(format!("{e:#}")),
                        );
                    }
                },
            });
        }
        // Phase 2, infallible: move stages over, hand state from old versions to new ones.
        let mut old: HashMap<String, Stage> = self
            .stages
            .drain(..)
            .map(|s| (s.module.name.clone(), s))
            .collect();
        let mut loaded = Vec::new();
        for plan in planned {
            match plan {
                Planned::Keep(name) => self.stages.extend(old.remove(&name)),
                Planned::Load(module, fresh) => {
                    let stage = match old.remove(&module.name) {
                        // A new version of a running module: state handed over, probation.
                        Some(mut stage) => {
                            let (instance, fresh_because) =
                                hand_over(&self.engine, &self.status, &mut stage, fresh, &module);
                            let previous = stage.previous.take().unwrap_or(Previous {
                                module: stage.module,
                                instance: stage.instance,
                            });
                            let stage = Stage {
                                module,
                                instance,
                                stats: stage.stats,
                                previous: Some(previous),
                            };
                            (stage, fresh_because)
                        }
                        None => {
                            let stage = Stage {
                                module,
                                instance: Some(fresh),
                                stats: StageStats::default(),
                                previous: None,
                            };
                            (stage, None)
                        }
                    };
                    let (stage, fresh_because) = stage;
                    loaded.push((self.stages.len(), fresh_because));
                    self.stages.push(stage);
                }
            }
        }
        self.status
            .retain_active(|name| self.stages.iter().any(|s| s.module.name == name));
        for (index, fresh_because) in loaded {
            self.activated(index, started, fresh_because, None);
        }
        self.status.record("config", None, Outcome::ConfigApplied);
    }

    /// Hands every stage's state to a fresh instance of its own version (`snapshot` →
    /// `restore`), as a hot swap to an identical build would: for testing offline that a
    /// transform's state survives a swap. Says which stages started fresh, and why.
    pub fn restart_with_state(&mut self) -> Vec<(String, String)> {
        let mut fresh = Vec::new();
        for index in 0..self.stages.len() {
            let module = self.stages[index].module.clone();
            let instance = match Instance::new(&self.engine, module.clone()) {
                Ok(instance) => instance,
                Err(e) => {
                    fresh.push((module.name.clone(), format!("{e:#}")));
                    continue;
                }
            };
            let stage = &mut self.stages[index];
            let (instance, why) = hand_over(&self.engine, &self.status, stage, instance, &module);
            stage.instance = instance;
            if let Some(why) = why {
                fresh.push((module.name.clone(), why));
            }
        }
        fresh
    }

    /// After a whole-batch failure of stage `index`: if its version was just swapped in,
    /// puts the previous version back and returns true.
    pub(super) fn roll_back(&mut self, index: usize, cause: &str) -> bool {
        let stage = &mut self.stages[index];
        let Some(previous) = stage.previous.take() else {
            return false;
        };
        let failed = std::mem::replace(&mut stage.module, previous.module);
        stage.instance = previous.instance;
        self.status
            .set_active(&stage.module.name, stage.active_version());
        self.status.record(
            &failed.name,
            Some(&failed.digest),
            Outcome::RolledBack(cause.to_string()),
        );
        true
    }

    fn activated(
        &self,
        index: usize,
        started: Instant,
        fresh_because: Option<String>,
        detected: Option<Instant>,
    ) {
        let stage = &self.stages[index];
        self.status
            .set_active(&stage.module.name, stage.active_version());
        let outcome = Outcome::Activated {
            generation: stage.module.generation,
            pause: started.elapsed(),
            fresh_because,
            since_change: detected.map(|t| t.elapsed()),
        };
        self.status
            .record(&stage.module.name, Some(&stage.module.digest), outcome);
    }
}

/// Moves the state of `stage`'s running instance (if any) into `fresh`, a new instance of
/// `module`. Returns the instance to run: `fresh`, or `None` (re-created on first use) if
/// `restore` trapped. A `snapshot` that fails leaves the running instance unusable (it is
/// dropped) and `fresh` starts without state.
fn hand_over(
    engine: &Arc<Engine>,
    status: &ReloadStatus,
    stage: &mut Stage,
    mut fresh: Instance,
    module: &Module,
) -> (Option<Instance>, Option<String>) {
    let Some(old_instance) = &mut stage.instance else {
        return (Some(fresh), None);
    };
    let state = match old_instance.snapshot(engine) {
        Ok(state) => state,
        Err(e) => {
            stage.instance = None;
            let old = &stage.module;
            let why = format!("the replaced version's snapshot failed: {}", e.cause());
            status.record(
                &old.name,
                Some(&old.digest),
                Outcome::SnapshotFailed(e.cause().to_string()),
            );
            return (Some(fresh), Some(why));
        }
    };
    if state.is_empty() {
        return (Some(fresh), None);
    }
    match fresh.restore(engine, &state) {
        Ok(()) => (Some(fresh), None),
        Err(GuestError::Refused(reason)) => {
            tracing::info!(module = %module.name, digest = module.short_digest(), generation = module.generation, "restore refused the old version's state; the new version starts fresh: {reason}");
            (
                Some(fresh),
                Some(format!("restore refused the state: {reason}")),
            )
        }
        Err(GuestError::Trapped(_, reason)) => {
            tracing::warn!(module = %module.name, digest = module.short_digest(), generation = module.generation, "restore trapped; the new version starts fresh: {reason}");
            (None, Some(format!("restore trapped: {reason}")))
        }
    }
}
