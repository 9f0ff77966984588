//! The closing summary of a run: counts, time per module, throughput, and the accounting
//! balance (every record in is a document out or a dead letter).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::chain::{RetentionStats, StageStats};
use crate::engine::Module;

/// What a run did.
#[derive(Clone, Default)]
pub struct Summary {
    /// Records (lines) read from the source.
    pub records_in: u64,
    /// Output documents written to the sink.
    pub documents_out: u64,
    /// Records written to the dead-letter sink.
    pub dead_letters: u64,
    /// Wall time of the run (source, chain and sinks), module loading excluded.
    pub wall: Duration,
    /// Time spent loading (compiling, validating, initialising) the modules before the run.
    pub load: Duration,
    /// From the start of the run to the first document written to the sink, if any was.
    pub first_point: Option<Duration>,
    /// The whole process's wall time, when the caller knows it (the `waystream` command
    /// does): start-up, loading and the run.
    pub process_wall: Option<Duration>,
    /// The source's own counts (files read, say), in display order.
    pub source: Vec<(&'static str, u64)>,
    /// Per module of the chain at the end of the run: the version running and its stage's
    /// counters (over every version the stage ran).
    pub modules: Vec<(Arc<Module>, StageStats)>,
    /// Module versions swapped in by hot reload.
    pub swaps: u64,
    /// Reloads refused or rolled back (the old version kept running).
    pub reload_failures: u64,
    /// Replaced versions whose `snapshot` failed (their successors started fresh).
    pub snapshot_failures: u64,
    /// Pipeline configs reloaded (file changes and SIGHUP).
    pub config_reloads: u64,
    /// The process's peak resident set size, where the OS tells (Linux).
    pub peak_rss_bytes: Option<u64>,
    /// CPU time the process spent during the run (all threads), where the OS tells
    /// (Linux): with `wall`, how many cores the run kept busy and on what.
    pub cpu: Option<CpuTime>,
    /// Trajectories the modules hold state for, and how many were dropped (see
    /// `[state]`), when the state is bounded.
    pub state: Option<RetentionStats>,
}

/// CPU time of the whole process: in its own code, and in the kernel on its behalf
/// (reading and writing files, mostly).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    /// In the process's own code.
    pub user: Duration,
    /// In the kernel on its behalf.
    pub system: Duration,
}

impl CpuTime {
    /// The process's CPU time so far (`utime` and `stime` of /proc/self/stat), on Linux.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces:
        // state is field 3, utime 14 and stime 15, in USER_HZ ticks (100 per second).
        let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ').skip(11);
        let mut ticks = || -> Option<Duration> {
            let n: u64 = fields.next()?.parse().ok()?;
            Some(Duration::from_millis(n * 10))
        };
        Some(CpuTime {
            user: ticks()?,
            system: ticks()?,
        })
    }

    /// The CPU time spent since `earlier`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

impl Summary {
    /// Whether every record read is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.records_in == self.documents_out + self.dead_letters
    }

    /// Records per second over the whole run.
    pub fn records_per_second(&self) -> f64 {
        self.records_in as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "waystream run summary")?;
        writeln!(f, "  points in      {:>12}", self.records_in)?;
        writeln!(f, "  points out     {:>12}", self.documents_out)?;
        writeln!(f, "  dead letters   {:>12}", self.dead_letters)?;
        let balance = if self.balanced() {
            "ok (in = out + dead letters)"
        } else {
            "MISMATCH"
        };
        writeln!(f, "  accounting     {balance}")?;
        for (name, count) in &self.source {
            writeln!(f, "  {name:<14} {count:>12}")?;
        }
        writeln!(f, "  load modules   {:>12.3} s", self.load.as_secs_f64())?;
        if let Some(first) = self.first_point {
            writeln!(f, "  first point    {:>12.3} s", first.as_secs_f64())?;
        }
        writeln!(
            f,
            "  wall time      {:>12.3} s (the run)",
            self.wall.as_secs_f64()
        )?;
        if let Some(process) = self.process_wall {
            writeln!(
                f,
                "  process        {:>12.3} s (start to end)",
                process.as_secs_f64()
            )?;
        }
        writeln!(
            f,
            "  throughput     {:>12.0} points/s",
            self.records_per_second()
        )?;
        if let Some(cpu) = self.cpu {
            writeln!(
                f,
                "  cpu time       {:>12.3} s user, {:.3} s system",
                cpu.user.as_secs_f64(),
                cpu.system.as_secs_f64()
            )?;
        }
        if let Some(bytes) = self.peak_rss_bytes {
            writeln!(f, "  peak RSS       {:>12.1} MB", bytes as f64 / 1e6)?;
        }
        if let Some(state) = self.state {
            writeln!(
                f,
                "  state          {:>12} trajectories held ({} dropped idle, {} over the bound)",
                state.tracked, state.dropped_idle, state.dropped_bound
            )?;
        }
        if self.swaps + self.reload_failures > 0 {
            writeln!(
                f,
                "  hot reload     {} swapped in, {} refused or rolled back, {} snapshots failed",
                self.swaps, self.reload_failures, self.snapshot_failures
            )?;
        }
        let (invalid, cut) = self.modules.iter().fold((0, 0), |(i, c), (_, s)| {
            (i + s.invalid_points, c + s.texts_cut)
        });
        if invalid + cut > 0 {
            writeln!(
                f,
                "  output checks  {invalid} invalid points refused, {cut} guest texts cut"
            )?;
        }
        writeln!(
            f,
            "  {:<12} {:<16} {:>10} {:>10} {:>9} {:>7} {:>6} {:>10} {:>12}",
            "module", "digest", "in", "out", "rejected", "failed", "traps", "time ms", "points/s"
        )?;
        for (module, s) in &self.modules {
            let version = format!("{} g{}", module.short_digest(), module.generation);
            let rate = s.records_in as f64 / s.busy.as_secs_f64().max(1e-9);
            writeln!(
                f,
                "  {:<12} {:<16} {:>10} {:>10} {:>9} {:>7} {:>6} {:>10.1} {:>12.0}",
                module.name,
                version,
                s.records_in,
                s.points_out,
                s.rejected,
                s.failed_records,
                s.traps,
                s.busy.as_secs_f64() * 1e3,
                rate
            )?;
        }
        Ok(())
    }
}

impl Summary {
    /// The summary as JSON, for scripts and tests (`waystream run --summary-json FILE`).
    pub fn to_json(&self) -> serde_json::Value {
        let seconds = |d: Duration| d.as_secs_f64();
        let modules: Vec<serde_json::Value> = self
            .modules
            .iter()
            .map(|(module, s)| {
                serde_json::json!({
                    "name": module.name,
                    "digest": module.digest,
                    "generation": module.generation,
                    "records_in": s.records_in,
                    "points_out": s.points_out,
                    "rejected": s.rejected,
                    "failed_batches": s.failed_batches,
                    "failed_records": s.failed_records,
                    "traps": s.traps,
                    "invalid_points": s.invalid_points,
                    "texts_cut": s.texts_cut,
                    "busy_s": seconds(s.busy),
                    "load_s": seconds(module.load_time),
                    "compiled_from_cache": module.cached,
                })
            })
            .collect();
        let source: serde_json::Map<String, serde_json::Value> = self
            .source
            .iter()
            .map(|(name, count)| (name.to_string(), (*count).into()))
            .collect();
        serde_json::json!({
            "records_in": self.records_in,
            "documents_out": self.documents_out,
            "dead_letters": self.dead_letters,
            "balanced": self.balanced(),
            "source": source,
            "load_s": seconds(self.load),
            "first_point_s": self.first_point.map(seconds),
            "wall_s": seconds(self.wall),
            "process_wall_s": self.process_wall.map(seconds),
            "swaps": self.swaps,
            "reload_failures": self.reload_failures,
            "snapshot_failures": self.snapshot_failures,
            "config_reloads": self.config_reloads,
            "peak_rss_bytes": self.peak_rss_bytes,
            "cpu_user_s": self.cpu.map(|c| seconds(c.user)),
            "cpu_system_s": self.cpu.map(|c| seconds(c.system)),
            "state": self.state.map(|s| serde_json::json!({
                "trajectories_held": s.tracked,
                "dropped_idle": s.dropped_idle,
                "dropped_bound": s.dropped_bound,
            })),
            "modules": modules,
        })
    }
}

/// Peak resident set size of this process (`VmHWM` in /proc/self/status), on Linux.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:")
}

/// The process's resident set size now, where the OS tells (Linux).
pub fn resident_bytes() -> Option<u64> {
    status_kib("VmRSS:")
}

/// A `kB` field of /proc/self/status, in bytes.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_work_done() {
        let before = CpuTime::now().expect("Linux has /proc/self/stat");
        let started = std::time::Instant::now();
        let mut x = 1u64;
        while started.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let spent = CpuTime::now().unwrap().since(before);
        assert!(
            spent.user + spent.system >= Duration::from_millis(50),
            "{spent:?}"
        );
    }
}
