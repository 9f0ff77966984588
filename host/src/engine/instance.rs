//! A module version running in its own `Store`.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Batch, KeyState, KeyedExports, Output, Trajectory, TransformExports};
use super::error::GuestError;
use super::guest_log::LogBudget;
use super::limits::GuestLimiter;
use super::{Engine, Module};
use crate::cause::Cause;

/// What a guest's `Store` holds: its limiter, its log budget and an empty WASI context.
pub struct GuestState {
    pub(super) module: String,
    pub(super) generation: u64,
    pub(super) log_budget: LogBudget,
    /// What the guest logged of a panic during the current call (the guest SDKs log
    /// `panic: <message> at <file:line>` from their panic hook, just before the trap).
    pub(super) panic: Option<String>,
    limiter: GuestLimiter,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A module instance, reused for every batch until it traps.
pub struct Instance {
    module: Arc<Module>,
    store: Store<GuestState>,
    bindings: Exports,
}

/// The functions a module exports: the transform, and its keyed state when it has one.
struct Exports {
    transform: TransformExports,
    keyed: Option<KeyedExports>,
}

/// An instance that has run `init`, kept by its [`Module`] until the module's first user
/// takes it (it does not hold the module, which would make a cycle).
pub(super) struct Started {
    store: Store<GuestState>,
    bindings: Exports,
}

impl Instance {
    /// An instance of `module` that has run its `init`: the one made when the module was
    /// loaded, if nobody has taken it yet (so loading, reloading and swapping pay for
    /// `init` once, off the hot path), otherwise a new one.
    pub fn new(engine: &Arc<Engine>, module: Arc<Module>) -> Result<Self> {
        match module.take_started() {
            Some(Started { store, bindings }) => Ok(Instance {
                module,
                store,
                bindings,
            }),
            None => Self::start(engine, module),
        }
    }

    /// Instantiates `module` in a fresh store and calls its `init` with the module's config.
    pub(super) fn start(engine: &Arc<Engine>, module: Arc<Module>) -> Result<Self> {
        let state = GuestState {
            module: module.name.clone(),
            generation: module.generation,
            log_budget: LogBudget::new(&engine.limits),
            panic: None,
            limiter: GuestLimiter::new(&engine.limits),
            // No preopened directories, no environment, no network: guests see nothing.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&engine.wasmtime, state);
        store.limiter(|state| &mut state.limiter);
        // What the host copies out of one call (an output, a string) is at most what the
        // instance may hold: a guest cannot make the host allocate more by pointing many
        // strings at the same bytes of its memory.
        store.set_hostcall_fuel(engine.limits.memory_bytes());
        if engine.limits.has_deadline() {
            store.epoch_deadline_trap();
            store.set_epoch_deadline(engine.limits.deadline_ticks());
        }
        let instantiated = module.pre.instantiate(&mut store).and_then(|instance| {
            let transform = module.transform.load(&mut store, &instance)?;
            let keyed = match &module.keyed {
                Some(keyed) => Some(keyed.load(&mut store, &instance)?),
                None => None,
            };
            Ok(Exports { transform, keyed })
        });
        let bindings = instantiated
            .map_err(|e| anyhow!("module {}: instantiation failed: {e:#}", module.name))?;
        let mut instance = Instance {
            module,
            store,
            bindings,
        };
        let config = instance.module.config.clone();
        instance
            .call(engine, |b, s| b.transform.call_init(s, &config))
            .map_err(|e| match e {
                GuestError::Refused(cause) => anyhow!(
                    "module {}: init refused its config: {cause}",
                    instance.module.name
                ),
                GuestError::Trapped(_, cause) => {
                    anyhow!("module {}: init failed: {cause}", instance.module.name)
                }
            })?;
        Ok(instance)
    }

    /// The module version this instance runs.
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// The started instance without its module, for the module to keep.
    pub(super) fn into_started(self) -> Started {
        Started {
            store: self.store,
            bindings: self.bindings,
        }
    }

    /// Runs one batch through the module.
    pub fn process(&mut self, engine: &Engine, batch: &Batch) -> Result<Output, GuestError> {
        self.call(engine, |b, s| b.transform.call_process(s, batch))
    }

    /// The module's state, for the next version's [`Instance::restore`].
    pub fn snapshot(&mut self, engine: &Engine) -> Result<Vec<u8>, GuestError> {
        self.call(engine, |b, s| b.transform.call_snapshot(s).map(Ok))
    }

    /// Hands a previous version's state to this instance.
    pub fn restore(&mut self, engine: &Engine, state: &[u8]) -> Result<(), GuestError> {
        self.call(engine, |b, s| b.transform.call_restore(s, state))
    }

    /// The state of each of `keys` the module holds any for (none when the module keeps
    /// no per-trajectory state, or predates contract 0.3.1).
    pub fn export_keys(
        &mut self,
        engine: &Engine,
        keys: &[Trajectory],
    ) -> Result<Vec<KeyState>, GuestError> {
        self.call(engine, |b, s| match &b.keyed {
            Some(keyed) => keyed.call_export_keys(s, keys).map(Ok),
            None => Ok(Ok(Vec::new())),
        })
    }

    /// Hands the module the state of some trajectories (from [`Instance::export_keys`]).
    /// A module without keyed state refuses any.
    pub fn import_keys(&mut self, engine: &Engine, states: &[KeyState]) -> Result<(), GuestError> {
        self.call(engine, |b, s| match &b.keyed {
            Some(keyed) => keyed.call_import_keys(s, states),
            None if states.is_empty() => Ok(Ok(())),
            None => Ok(Err("the module keeps no per-trajectory state".into())),
        })
    }

    /// Makes the module forget the state of `keys`.
    pub fn drop_keys(&mut self, engine: &Engine, keys: &[Trajectory]) -> Result<(), GuestError> {
        self.call(engine, |b, s| match &b.keyed {
            Some(keyed) => keyed.call_drop_keys(s, keys).map(Ok),
            None => Ok(Ok(())),
        })
    }

    /// Every trajectory the module holds state for.
    pub fn keys(&mut self, engine: &Engine) -> Result<Vec<Trajectory>, GuestError> {
        self.call(engine, |b, s| match &b.keyed {
            Some(keyed) => keyed.call_keys(s).map(Ok),
            None => Ok(Ok(Vec::new())),
        })
    }

    /// Calls into the guest with a fresh deadline and log budget, and sorts the outcome
    /// into a result, a refusal or a trap.
    fn call<R>(
        &mut self,
        engine: &Engine,
        f: impl FnOnce(&Exports, &mut Store<GuestState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, GuestError> {
        let state = self.store.data_mut();
        state
            .log_budget
            .reset(&self.module.name, self.module.generation);
        state.panic = None;
        if engine.limits.has_deadline() {
            self.store
                .set_epoch_deadline(engine.limits.deadline_ticks());
        }
        match f(&self.bindings, &mut self.store) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(reason)) => Err(GuestError::Refused(Cause::capped(
                &reason,
                engine.limits.cause_bytes,
            ))),
            Err(trap) => Err(GuestError::from_trap(
                &trap,
                &engine.limits,
                self.store.data().panic.as_deref(),
            )),
        }
    }
}
