//! A module version running in its own `Store`.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Batch, Output, TransformModule};
use super::guest_log::LogBudget;
use super::{Engine, Module};

/// What a guest's `Store` holds: its limits, its log budget and an empty WASI context.
pub struct GuestState {
    pub(super) module: String,
    pub(super) generation: u64,
    pub(super) log_budget: LogBudget,
    limits: StoreLimits,
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

/// Why a call into a module failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The module returned an error: the instance is still usable.
    #[error("{0}")]
    Refused(String),
    /// The module trapped, ran out of time or memory: the instance is unusable.
    #[error("trap: {0}")]
    Trap(String),
}

/// A module instance, reused for every batch until it traps.
pub struct Instance {
    module: Arc<Module>,
    store: Store<GuestState>,
    bindings: TransformModule,
}

/// An instance that has run `init`, kept by its [`Module`] until the module's first user
/// takes it (it does not hold the module, which would make a cycle).
pub(super) struct Started {
    store: Store<GuestState>,
    bindings: TransformModule,
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
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(engine.limits.memory_mib << 20).unwrap_or(usize::MAX))
            .trap_on_grow_failure(true)
            .build();
        let state = GuestState {
            module: module.name.clone(),
            generation: module.generation,
            log_budget: LogBudget::default(),
            limits,
            // No preopened directories, no environment, no network: guests see nothing.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&engine.wasmtime, state);
        store.limiter(|state| &mut state.limits);
        if engine.limits.has_deadline() {
            store.epoch_deadline_trap();
            store.set_epoch_deadline(engine.limits.deadline_ticks());
        }
        let bindings = module
            .pre
            .instantiate(&mut store)
            .map_err(|e| anyhow!("module {}: instantiation failed: {e:#}", module.name))?;
        let mut instance = Instance {
            module,
            store,
            bindings,
        };
        let config = instance.module.config.clone();
        instance
            .call(engine, |b, s| {
                b.waystream_transform_transform().call_init(s, &config)
            })
            .map_err(|e| {
                anyhow!(
                    "module {}: init refused its config: {e}",
                    instance.module.name
                )
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
    pub fn process(&mut self, engine: &Engine, batch: &Batch) -> Result<Output, CallError> {
        self.call(engine, |b, s| {
            b.waystream_transform_transform().call_process(s, batch)
        })
    }

    /// The module's state, for the next version's [`Instance::restore`].
    pub fn snapshot(&mut self, engine: &Engine) -> Result<Vec<u8>, CallError> {
        self.call(engine, |b, s| {
            b.waystream_transform_transform().call_snapshot(s).map(Ok)
        })
    }

    /// Hands a previous version's state to this instance.
    pub fn restore(&mut self, engine: &Engine, state: &[u8]) -> Result<(), CallError> {
        self.call(engine, |b, s| {
            b.waystream_transform_transform().call_restore(s, state)
        })
    }

    /// Calls into the guest with a fresh deadline and log budget, and sorts the outcome
    /// into a result, a refusal or a trap.
    fn call<R>(
        &mut self,
        engine: &Engine,
        f: impl FnOnce(&TransformModule, &mut Store<GuestState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallError> {
        self.store
            .data_mut()
            .log_budget
            .reset(&self.module.name, self.module.generation);
        if engine.limits.has_deadline() {
            self.store
                .set_epoch_deadline(engine.limits.deadline_ticks());
        }
        match f(&self.bindings, &mut self.store) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(reason)) => Err(CallError::Refused(reason)),
            Err(trap) => Err(CallError::Trap(describe_trap(&trap, &engine.limits))),
        }
    }
}

/// A one-line description of a trap that names the limit when one was hit.
fn describe_trap(error: &wasmtime::Error, limits: &super::Limits) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            format!(
                "time limit: the call ran longer than {} ms",
                limits.call_timeout_ms
            )
        }
        Some(trap) => format!("{trap}"),
        None => {
            let text = format!("{error:#}");
            if text.contains("forcing trap when growing memory") {
                format!(
                    "memory limit: the instance tried to grow past {} MiB",
                    limits.memory_mib
                )
            } else {
                text.lines().next().unwrap_or("unknown trap").to_string()
            }
        }
    }
}
