//! Per-trajectory state in and out of the chain, module by module.
//!
//! Modules that keep their state per trajectory (contract 0.3.1's `keyed-state`, which the
//! Rust guest SDK's `waystream_guest::keyed::Keyed` map provides) can hand over the state of given trajectories,
//! take it back, and forget it. The chain does it for every module at once, between
//! batches: [`Chain::export_state`] before a shard's trajectories move to another host (or
//! before idle trajectories are dropped), [`Chain::import_state`] on the host that takes
//! them, [`Chain::drop_keys`] to free them. Modules without keyed state (built against
//! 0.3.0) export nothing and keep their state whole; a trajectory they carry starts fresh
//! where it moves to.
//!
//! State is matched by module name: a module that is not in this chain, or refuses the
//! state (another layout, another transform), is logged and those trajectories start fresh
//! in it, as the contract says; the other modules still take theirs.

use std::collections::BTreeSet;

use super::Chain;
use crate::engine::bindings::{KeyState, Trajectory};

/// One module's state of some trajectories.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleState {
    /// The module's name in the pipeline config.
    pub module: String,
    /// One entry per trajectory the module had state for.
    pub states: Vec<KeyState>,
}

impl Chain {
    /// The state every module holds for `keys`; the modules keep it. A module that fails
    /// (a trap drops its instance, and so its state) is logged and left out.
    pub fn export_state(&mut self, keys: &[Trajectory]) -> Vec<ModuleState> {
        let engine = self.engine.clone();
        let mut out = Vec::new();
        for stage in &mut self.stages {
            match stage.guest_call(&engine, |i| i.export_keys(&engine, keys)) {
                Ok(states) if states.is_empty() => {}
                Ok(states) => out.push(ModuleState {
                    module: stage.module.name.clone(),
                    states,
                }),
                Err(e) => {
                    tracing::warn!(module = %stage.module.name, "exporting the state of {} trajectories failed: {e}", keys.len())
                }
            }
        }
        out
    }

    /// Hands each module its part of `state` (from [`Chain::export_state`], here or on
    /// another host). Returns what was not taken, as (module, why), after logging it.
    pub fn import_state(&mut self, state: &[ModuleState]) -> Vec<(String, String)> {
        let engine = self.engine.clone();
        let mut refused = Vec::new();
        for part in state {
            let why = match self
                .stages
                .iter_mut()
                .find(|s| s.module.name == part.module)
            {
                None => "no module of that name in the chain".to_string(),
                Some(stage) => {
                    match stage.guest_call(&engine, |i| i.import_keys(&engine, &part.states)) {
                        Ok(()) => continue,
                        Err(e) => e.to_string(),
                    }
                }
            };
            tracing::warn!(module = %part.module, trajectories = part.states.len(), "state not taken, those trajectories start fresh: {why}");
            refused.push((part.module.clone(), why));
        }
        refused
    }

    /// Makes every module forget the state of `keys`.
    pub fn drop_keys(&mut self, keys: &[Trajectory]) {
        let engine = self.engine.clone();
        for stage in &mut self.stages {
            if let Err(e) = stage.guest_call(&engine, |i| i.drop_keys(&engine, keys)) {
                tracing::warn!(module = %stage.module.name, "dropping the state of {} trajectories failed: {e}", keys.len());
            }
        }
    }

    /// Every trajectory some module holds state for, each once.
    pub fn keys(&mut self) -> Vec<Trajectory> {
        let engine = self.engine.clone();
        let mut all = BTreeSet::new();
        for stage in &mut self.stages {
            match stage.guest_call(&engine, |i| i.keys(&engine)) {
                Ok(keys) => all.extend(keys.into_iter().map(|t| (t.user, t.id))),
                Err(e) => {
                    tracing::warn!(module = %stage.module.name, "listing its trajectories failed: {e}")
                }
            }
        }
        all.into_iter()
            .map(|(user, id)| Trajectory { user, id })
            .collect()
    }
}
