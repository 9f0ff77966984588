//! Why a call into a guest failed, sorted by what the host does next.
//!
//! A guest that returns an error is still usable ([`GuestError::Refused`]); one that
//! trapped, ran out of time or memory, called `exit` or broke the canonical ABI is not
//! ([`GuestError::Trapped`]), and the chain replaces its instance. The kind of a trap
//! comes from the error's type — wasmtime's [`Trap`] codes, this host's
//! [`LimitExceeded`] and [`BlockingCall`], WASI's `I32Exit` — never from its wording.

use std::fmt;

use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

use super::limits::{Limit, LimitExceeded, Limits};
use crate::cause::Cause;

/// Why a call into a module failed.
#[derive(Debug, Clone)]
pub enum GuestError {
    /// The module returned an error: the instance is still usable.
    Refused(Cause),
    /// The instance is unusable: it trapped, hit a limit, exited or broke the ABI.
    Trapped(TrapKind, Cause),
}

/// What kind of trap ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// The call ran past `call_timeout_ms`.
    TimeLimit,
    /// A memory or table growth past `[limits]`.
    Limit(Limit),
    /// The guest asked to wait (a WASI timer), which transforms may not.
    Blocking,
    /// The guest called WASI's `exit`.
    Exit(i32),
    /// A trap of the Wasm code itself (unreachable, out of bounds, stack overflow, …).
    Wasm(Trap),
    /// Anything else: output that breaks the canonical ABI (a string that is not UTF-8,
    /// more data than the host copies from one call), a failed host call.
    Other,
}

impl TrapKind {
    /// A short, stable name for counting (metrics, summaries).
    pub fn class(self) -> &'static str {
        match self {
            TrapKind::TimeLimit => "time_limit",
            TrapKind::Limit(Limit::Memory) => "memory_limit",
            TrapKind::Limit(Limit::TableElements) => "table_limit",
            TrapKind::Blocking => "blocking_call",
            TrapKind::Exit(_) => "exit",
            TrapKind::Wasm(_) => "trap",
            TrapKind::Other => "abi",
        }
    }
}

impl GuestError {
    /// Sorts a wasmtime error from a call into a trap kind with a one-line cause. `panic`
    /// is what the guest said of its panic just before the trap (the guest SDKs log it),
    /// which then leads the cause.
    pub fn from_trap(error: &wasmtime::Error, limits: &Limits, panic: Option<&str>) -> Self {
        let (kind, text) = if let Some(exceeded) = error.downcast_ref::<LimitExceeded>() {
            (TrapKind::Limit(exceeded.limit), exceeded.to_string())
        } else if let Some(blocking) = error.downcast_ref::<BlockingCall>() {
            (TrapKind::Blocking, blocking.to_string())
        } else if let Some(exit) = error.downcast_ref::<I32Exit>() {
            (
                TrapKind::Exit(exit.0),
                format!("the guest called exit({})", exit.0),
            )
        } else if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
            (
                TrapKind::TimeLimit,
                format!(
                    "time limit: the call ran longer than {} ms",
                    limits.call_timeout_ms
                ),
            )
        } else if let Some(&trap) = error.downcast_ref::<Trap>() {
            // wasmtime's own text already starts "wasm trap: …".
            (TrapKind::Wasm(trap), trap.to_string())
        } else {
            // The innermost error says what went wrong; the outer ones are wasmtime's
            // context ("error while executing at wasm backtrace: …").
            (TrapKind::Other, error.root_cause().to_string())
        };
        let text = match panic {
            Some(panic) => format!("the guest panicked: {panic} ({text})"),
            None => text,
        };
        GuestError::Trapped(kind, Cause::capped(&text, limits.cause_bytes))
    }

    /// The cause, as dead letters and logs give it.
    pub fn cause(&self) -> &Cause {
        match self {
            GuestError::Refused(cause) | GuestError::Trapped(_, cause) => cause,
        }
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestError::Refused(cause) => write!(f, "module error: {cause}"),
            GuestError::Trapped(_, cause) => write!(f, "{cause}"),
        }
    }
}

/// A guest asked to block on a WASI timer (`sleep`, a `poll` with a timeout). Transforms
/// may not wait: a wait inside a host call is where the time limit cannot reach.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "blocking call: the guest asked to wait ({0}), which transforms may not do; a transform computes and returns"
)]
pub struct BlockingCall(pub &'static str);
