//! The `log` import: guests write into the host's tracing, within caps.
//!
//! A chatty or hostile guest must not be able to flood the host's log or forge lines in
//! it, so each message becomes one line (control characters escaped, `\n` included: a
//! guest cannot start a line that looks like the host's own), cut at `log_line_bytes`, and
//! each call into the guest may write at most `log_lines_per_call` lines; the rest are
//! counted and reported once. A message that is not UTF-8 never arrives here: lifting it
//! fails the guest's call, and the cause says why.

use super::bindings::{Level, waystream::transform::log};
use super::instance::GuestState;
use super::limits::Limits;
use crate::cause::Cause;

/// Per-instance log accounting, reset at the start of every call into the guest.
#[derive(Debug)]
pub struct LogBudget {
    line_bytes: usize,
    lines_per_call: u32,
    written: u32,
    dropped: u32,
}

impl LogBudget {
    /// A budget with the caps of `limits`.
    pub fn new(limits: &Limits) -> Self {
        LogBudget {
            line_bytes: limits.log_line_bytes,
            lines_per_call: limits.log_lines_per_call,
            written: 0,
            dropped: 0,
        }
    }

    /// Starts a new call; reports lines dropped during the previous one.
    pub fn reset(&mut self, module: &str, generation: u64) {
        if self.dropped > 0 {
            tracing::warn!(
                module,
                generation,
                dropped = self.dropped,
                "guest log lines dropped (over {} per call)",
                self.lines_per_call
            );
        }
        self.written = 0;
        self.dropped = 0;
    }
}

impl log::Host for GuestState {
    fn log(&mut self, level: Level, message: String) {
        // A panic's message travels into the trap's cause, over the log budget if need be.
        if let (Level::Error, Some(panic)) = (level, message.strip_prefix("panic: ")) {
            self.panic = Some(Cause::capped(panic, self.log_budget.line_bytes).to_string());
        }
        let budget = &mut self.log_budget;
        if budget.written >= budget.lines_per_call {
            budget.dropped += 1;
            return;
        }
        budget.written += 1;
        let line = Cause::capped(&message, budget.line_bytes);
        let module = self.module.as_str();
        let generation = self.generation;
        match level {
            Level::Trace => tracing::trace!(target: "guest", module, generation, "{line}"),
            Level::Debug => tracing::debug!(target: "guest", module, generation, "{line}"),
            Level::Info => tracing::info!(target: "guest", module, generation, "{line}"),
            Level::Warn => tracing::warn!(target: "guest", module, generation, "{line}"),
            Level::Error => tracing::error!(target: "guest", module, generation, "{line}"),
        }
    }
}

impl super::bindings::waystream::transform::types::Host for GuestState {}
