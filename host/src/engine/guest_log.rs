//! The `log` import: guests write into the host's tracing, within caps.
//!
//! A chatty or hostile guest must not be able to flood the host's log, so each line is cut
//! at [`MAX_LINE_BYTES`] and each call into the guest may write at most
//! [`MAX_LINES_PER_CALL`] lines; the rest are counted and reported once.

use super::bindings::{Level, waystream::transform::log};
use super::instance::GuestState;

/// Longest guest log line kept, in bytes; longer ones are cut (on a char boundary).
pub const MAX_LINE_BYTES: usize = 1024;
/// Most guest log lines per call into the guest.
pub const MAX_LINES_PER_CALL: u32 = 64;

/// Per-instance log accounting, reset at the start of every call into the guest.
#[derive(Debug, Default)]
pub struct LogBudget {
    written: u32,
    dropped: u32,
}

impl LogBudget {
    /// Starts a new call; reports lines dropped during the previous one.
    pub fn reset(&mut self, module: &str, generation: u64) {
        if self.dropped > 0 {
            tracing::warn!(
                module,
                generation,
                dropped = self.dropped,
                "guest log lines dropped (over {MAX_LINES_PER_CALL} per call)"
            );
        }
        *self = LogBudget::default();
    }
}

impl log::Host for GuestState {
    fn log(&mut self, level: Level, message: String) {
        if self.log_budget.written >= MAX_LINES_PER_CALL {
            self.log_budget.dropped += 1;
            return;
        }
        self.log_budget.written += 1;
        let mut end = message.len().min(MAX_LINE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        let module = self.module.as_str();
        let generation = self.generation;
        match level {
            Level::Trace => tracing::trace!(target: "guest", module, generation, "{message}"),
            Level::Debug => tracing::debug!(target: "guest", module, generation, "{message}"),
            Level::Info => tracing::info!(target: "guest", module, generation, "{message}"),
            Level::Warn => tracing::warn!(target: "guest", module, generation, "{message}"),
            Level::Error => tracing::error!(target: "guest", module, generation, "{message}"),
        }
    }
}

impl super::bindings::waystream::transform::types::Host for GuestState {}
