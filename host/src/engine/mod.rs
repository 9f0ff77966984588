//! The Wasm engine: compiles transform components and runs them under limits.
//!
//! * [`Engine`] owns the wasmtime engine, the linker (the `log` import plus an empty WASI
//!   context: no files, no environment, no network) and the epoch ticker that enforces
//!   per-call deadlines.
//! * [`Module`] is one compiled, validated module version, identified by its sha256 digest.
//!   Compiling costs tens to hundreds of milliseconds, so it happens once per version, off
//!   the hot path, with unchanged functions taken from a shared compile cache. The instance
//!   that validated it (its `init` ran) is kept for the module's first use, so a transform
//!   with an expensive `init` (geofence builds its grid) pays for it once, off the hot path.
//! * [`Instance`] is a module version running in its own `Store`, reused for every batch.
//!   A trap or a timeout makes it unusable; the chain replaces it with a fresh one.

pub mod bindings;
mod compile_cache;
mod disk_cache;
mod error;
mod guest_log;
mod instance;
mod limits;
mod module;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use wasmtime::component::Linker;

pub use disk_cache::{CacheConfig, Compiled, DiskCache};
pub use error::{BlockingCall, GuestError, TrapKind};
pub use instance::{GuestState, Instance};
pub use limits::{GuestLimiter, Limit, LimitExceeded, Limits};
pub use module::{Module, digest_of, short_digest};

/// How often the epoch advances; call deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

impl Limits {
    fn deadline_ticks(&self) -> u64 {
        (self.call_timeout_ms / EPOCH_TICK.as_millis() as u64).max(1)
    }
}

/// The wasmtime engine and linker shared by every module and instance.
pub struct Engine {
    wasmtime: wasmtime::Engine,
    linker: Linker<GuestState>,
    limits: Limits,
    ticker: Option<EpochTicker>,
    /// Compiled components kept on disk, when on.
    disk_cache: Option<DiskCache>,
}

impl Engine {
    /// Creates the engine with the given limits and, when calls have a deadline, starts
    /// its epoch ticker. Every module is compiled when loaded (see [`Engine::with_cache`]).
    pub fn new(limits: Limits) -> Result<Arc<Self>> {
        Self::with_cache(
            limits,
            &CacheConfig {
                enabled: false,
                ..CacheConfig::default()
            },
        )
    }

    /// Like [`Engine::new`], keeping compiled modules on disk as `cache` says, so a module
    /// seen before loads in milliseconds.
    pub fn with_cache(limits: Limits, cache: &CacheConfig) -> Result<Arc<Self>> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(limits.has_deadline());
        // Each module compiles on the thread that loads it, not in wasmtime's shared rayon
        // pool: in the pool, a small module's functions queue behind the thousands of a
        // Python or JavaScript module compiling at the same time, so its swap would wait for
        // the other's compile. Loads run on threads of their own (at start and on reload).
        config.parallel_compilation(false);
        config.enable_incremental_compilation(Arc::new(compile_cache::CompileCache::default()))?;
        if std::env::var_os("WAYSTREAM_PERFMAP").is_some() {
            // Names the guests' compiled functions for `perf report` (/tmp/perf-<pid>.map).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let wasmtime = wasmtime::Engine::new(&config)?;
        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        refuse_timers(&mut linker)?;
        bindings::KeyedTransformModule::add_to_linker::<_, wasmtime::component::HasSelf<GuestState>>(
            &mut linker,
            |state| state,
        )?;
        let ticker = limits
            .has_deadline()
            .then(|| EpochTicker::start(wasmtime.clone()));
        let disk_cache = DiskCache::open(&wasmtime, cache);
        Ok(Arc::new(Engine {
            wasmtime,
            linker,
            limits,
            ticker,
            disk_cache,
        }))
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether compiled modules are kept on disk.
    pub fn has_disk_cache(&self) -> bool {
        self.disk_cache.is_some()
    }

    /// The component of `bytes` (sha256 `digest`): from the disk cache when it has it,
    /// compiled otherwise.
    pub fn compile(
        &self,
        digest: &str,
        bytes: &[u8],
    ) -> Result<(wasmtime::component::Component, Compiled)> {
        match &self.disk_cache {
            Some(cache) => cache.load(&self.wasmtime, digest, bytes),
            None => Ok((
                wasmtime::component::Component::new(&self.wasmtime, bytes)
                    .map_err(anyhow::Error::from)?,
                Compiled::Fresh,
            )),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// Replaces WASI's timers with functions that trap with [`BlockingCall`]. A guest waiting
/// on a timer (`sleep`, a `poll` with a timeout) waits inside the host, where no epoch
/// deadline reaches it: the call could outlast its time limit and hold off a shutdown. A
/// timer is the only thing a guest here can wait for (it has no files, sockets or input),
/// so without timers every wait ends at once. The clocks themselves (`now`) stay.
fn refuse_timers(linker: &mut Linker<GuestState>) -> Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    for (name, what) in [
        ("subscribe-duration", "a sleep or a timeout"),
        ("subscribe-instant", "a wait until an instant"),
    ] {
        clock.func_new(name, move |_, _, _, _| {
            Err(wasmtime::Error::new(BlockingCall(what)))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// Advances the engine's epoch every [`EPOCH_TICK`], so a call past its deadline traps.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl EpochTicker {
    fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("waystream-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch ticker thread");
        EpochTicker { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_call_timeout_runs_no_epoch_ticker() {
        let timed = Engine::new(Limits::default()).unwrap();
        assert!(timed.ticker.is_some());
        let untimed = Engine::new(Limits {
            call_timeout_ms: 0,
            ..Limits::default()
        })
        .unwrap();
        assert!(untimed.ticker.is_none(), "no epochs to advance");
    }
}
