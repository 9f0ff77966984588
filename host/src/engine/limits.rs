//! What a module instance may use, and the limiter that holds it to that.
//!
//! wasmtime's own `StoreLimits` caps each linear memory on its own, and tables not at
//! all: a component may declare several memories and tables, so one instance could hold
//! many times its memory budget. [`GuestLimiter`] counts every memory and table of the
//! instance together, and a growth past the budget fails the call with a
//! [`LimitExceeded`] that names the limit (the chain dead-letters the batch with it).

use serde::Deserialize;
use wasmtime::ResourceLimiter;

/// Limits for every module instance, and the budget for the texts guests hand the host.
/// The `[limits]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory one instance may hold, in MiB, all its memories together. It is also
    /// the most a module may hand the host in one call (its output is copied out of that
    /// memory).
    pub memory_mib: u64,
    /// Longest one call into a module may run, in milliseconds; a call past it traps and
    /// the chain replaces the instance. `0` turns the limit off: compiled Wasm code then
    /// no longer checks the deadline at every function entry and loop, which makes the
    /// chain about a tenth faster (see BENCHMARKS.md), but a module stuck in a loop stalls
    /// the pipeline instead of failing one batch. Only for modules you trust.
    pub call_timeout_ms: u64,
    /// Table elements one instance may hold, all its tables together.
    pub table_elements: u64,
    /// Core instances, tables and memories one component may create.
    pub instances: usize,
    /// Tables one component may create.
    pub tables: usize,
    /// Linear memories one component may create.
    pub memories: usize,
    /// Longest error message, rejection reason or `init`/`restore` refusal kept from a
    /// guest, in bytes; longer ones are cut and marked.
    pub cause_bytes: usize,
    /// Longest guest log line, in bytes, and most lines per call into a guest.
    pub log_line_bytes: usize,
    /// Most guest log lines per call into a guest; more are dropped and counted.
    pub log_lines_per_call: u32,
    /// Longest zone name kept from a module's zone table, in bytes (cut and marked past
    /// it), and most names in one zone set (a module's batch fails past it).
    pub zone_name_bytes: usize,
    /// Most zone names in one zone set.
    pub zones_per_point: usize,
    /// Years a point's timestamp may fall in (inclusive); a module's point outside them is
    /// rejected, not encoded.
    pub min_year: i32,
    /// The last year a timestamp may fall in.
    pub max_year: i32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 256,
            call_timeout_ms: 5_000,
            table_elements: 1_000_000,
            instances: 64,
            tables: 64,
            memories: 8,
            cause_bytes: 4096,
            log_line_bytes: 1024,
            log_lines_per_call: 64,
            zone_name_bytes: 256,
            zones_per_point: 32,
            min_year: 1970,
            max_year: 2100,
        }
    }
}

impl Limits {
    /// Whether calls have a deadline (`call_timeout_ms` is not 0).
    pub fn has_deadline(&self) -> bool {
        self.call_timeout_ms > 0
    }

    /// The memory budget in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// The range of `ts_ms` a point may have: from the start of `min_year` to the end of
    /// `max_year`, UTC.
    pub fn ts_range_ms(&self) -> std::ops::RangeInclusive<i64> {
        let start = |year: i32| days_from_civil(i64::from(year), 1, 1) * 86_400_000;
        start(self.min_year)..=start(self.max_year.saturating_add(1)) - 1
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Which limit a guest ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Linear memory, all memories together (`memory_mib`).
    Memory,
    /// Table elements, all tables together (`table_elements`).
    TableElements,
}

/// A growth the limiter refused: the error a trapped call carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct LimitExceeded {
    /// Which limit.
    pub limit: Limit,
    /// What the instance would have held.
    pub wanted: u64,
    /// What it may hold.
    pub allowed: u64,
}

impl LimitExceeded {
    fn describe(&self) -> String {
        match self.limit {
            Limit::Memory => format!(
                "memory limit: the instance's memories would hold {} MiB together, over its {} MiB",
                self.wanted.div_ceil(1 << 20),
                self.allowed >> 20
            ),
            Limit::TableElements => format!(
                "table limit: the instance's tables would hold {} elements together, over its {}",
                self.wanted, self.allowed
            ),
        }
    }
}

/// Holds one instance to its [`Limits`]: memory and table elements summed over all its
/// memories and tables, and counts of instances, tables and memories.
#[derive(Debug)]
pub struct GuestLimiter {
    memory_allowed: usize,
    table_elements_allowed: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    /// What the instance holds now, over all its memories and tables. A growth that
    /// fails after the limiter allowed it stays counted: the count errs on the safe side.
    memory_held: usize,
    table_elements_held: usize,
}

impl GuestLimiter {
    /// A limiter for a fresh instance.
    pub fn new(limits: &Limits) -> Self {
        GuestLimiter {
            memory_allowed: limits.memory_bytes(),
            table_elements_allowed: usize::try_from(limits.table_elements).unwrap_or(usize::MAX),
            instances: limits.instances,
            tables: limits.tables,
            memories: limits.memories,
            memory_held: 0,
            table_elements_held: 0,
        }
    }
}

/// `held` after one of its parts grows from `current` to `desired`, if within `allowed`.
fn grown(held: usize, current: usize, desired: usize, allowed: usize) -> Result<usize, u64> {
    let wanted = held.saturating_sub(current).saturating_add(desired);
    if wanted > allowed {
        Err(wanted as u64)
    } else {
        Ok(wanted)
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match grown(self.memory_held, current, desired, self.memory_allowed) {
            Ok(held) => {
                self.memory_held = held;
                Ok(true)
            }
            Err(wanted) => Err(wasmtime::Error::new(LimitExceeded {
                limit: Limit::Memory,
                wanted,
                allowed: self.memory_allowed as u64,
            })),
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match grown(
            self.table_elements_held,
            current,
            desired,
            self.table_elements_allowed,
        ) {
            Ok(held) => {
                self.table_elements_held = held;
                Ok(true)
            }
            Err(wanted) => Err(wasmtime::Error::new(LimitExceeded {
                limit: Limit::TableElements,
                wanted,
                allowed: self.table_elements_allowed as u64,
            })),
        }
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_are_counted_together() {
        let mut limiter = GuestLimiter::new(&Limits {
            memory_mib: 32,
            ..Limits::default()
        });
        let mib = 1 << 20;
        assert!(limiter.memory_growing(0, 20 * mib, None).unwrap());
        assert!(limiter.memory_growing(0, 10 * mib, None).unwrap());
        let err = limiter.memory_growing(0, 10 * mib, None).unwrap_err();
        let exceeded = err.downcast_ref::<LimitExceeded>().unwrap();
        assert_eq!(exceeded.limit, Limit::Memory);
        assert!(
            exceeded
                .to_string()
                .contains("40 MiB together, over its 32 MiB")
        );
        // The first memory growing within the budget still works.
        assert!(limiter.memory_growing(20 * mib, 22 * mib, None).unwrap());
    }

    #[test]
    fn table_elements_are_counted_together() {
        let mut limiter = GuestLimiter::new(&Limits {
            table_elements: 100,
            ..Limits::default()
        });
        assert!(limiter.table_growing(0, 60, None).unwrap());
        let err = limiter.table_growing(0, 60, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("120 elements together, over its 100")
        );
    }

    #[test]
    fn the_timestamp_range_covers_whole_years() {
        let range = Limits::default().ts_range_ms();
        assert_eq!(*range.start(), 0);
        // 2101-01-01T00:00:00Z minus one millisecond.
        assert_eq!(*range.end(), 4_133_980_800_000 - 1);
    }
}
