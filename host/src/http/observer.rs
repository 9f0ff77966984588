//! What a running pipeline shows its HTTP server: metrics, readiness, the chain's versions
//! and counters, and a sample of recent points and dead letters for the live page.
//!
//! The pipeline writes here once per batch (never per record), from the chain's thread
//! and the output thread; the server reads when asked. Each write is a few atomic stores
//! and a short lock; the points for the page are a bounded sample of each batch, so a fast
//! stream costs the same as a slow one. Nothing is kept without bound.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge, Histogram};
use serde::Serialize;

use super::metrics::{Metrics, ModuleMetrics};
use crate::chain::{Chain, ChainOutput, StageStats};
use crate::dead_letter::DeadLetter;
use crate::sinks::SinkStats;
use crate::sources::SourceStats;
use crate::status::{Outcome, ReloadEvent, ReloadStatus};

/// Points kept for a page that opens (the newest).
const RECENT_POINTS: usize = 3000;
/// Points sampled from one batch for the page, at most.
const POINTS_PER_BATCH: usize = 64;
/// Batches are sampled for the page at most this often: a page draws a few hundred points
/// a second, and a fast stream must not pay for more.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Dead-letter groups kept for the page and `/status`.
const RECENT_DEAD: usize = 50;

/// A point as the live page draws it.
#[derive(Debug, Clone, Serialize)]
pub struct PagePoint {
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Speed from the previous point, when known.
    pub speed_mps: Option<f64>,
    /// The trajectory's user.
    pub user: String,
    /// The trajectory.
    pub trajectory: String,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// The zones the point is in.
    pub zones: Vec<String>,
}

/// Dead letters of one batch with the same module and cause.
#[derive(Debug, Clone, Serialize)]
pub struct DeadGroup {
    /// When they were written, ms since the Unix epoch.
    pub at_ms: u64,
    /// The module that refused or failed them (`sink`, `source` for the others).
    pub module: String,
    /// Why.
    pub cause: String,
    /// How many.
    pub count: u64,
}

/// One module as `/status` and the page show it.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleView {
    /// Its name in the chain.
    pub module: String,
    /// The digest of the version running.
    pub digest: String,
    /// That version's generation.
    pub generation: u64,
    /// Records handed to it.
    pub records_in: u64,
    /// Points it returned.
    pub points_out: u64,
    /// Records it rejected.
    pub rejected: u64,
    /// Records of batches that failed in it.
    pub failed_records: u64,
    /// Traps.
    pub traps: u64,
    /// Batches it ran.
    pub batches: u64,
    /// Time spent in it, ms.
    pub busy_ms: f64,
    /// Points per busy second.
    pub rate_pps: f64,
}

struct ModuleEntry {
    view: ModuleView,
    metrics: ModuleMetrics,
    info: Gauge,
}

/// The run-wide series.
struct RunMetrics {
    ready: Gauge,
    records_in: Counter,
    documents_written: Counter,
    documents_refused: Counter,
    sink_bytes: Counter,
    flushes: Counter,
    sink_calls: Counter,
    sink_retried: Counter,
    sink_throttled: Counter,
    sink_backpressure: Counter,
    dead_letters: BTreeMap<&'static str, Counter>,
    chain_batch: Histogram,
    output_wait: Histogram,
    leases_held: Gauge,
    takeovers: Counter,
    record_age: Histogram,
    output_queue: Gauge,
    reloads_activated: Counter,
    reloads_refused: Counter,
    reloads_rolled_back: Counter,
    snapshot_failures: Counter,
    config_reloads: Counter,
    state_trajectories: Gauge,
    state_dropped_idle: Counter,
    state_dropped_bound: Counter,
}

/// What the page has not been sent yet, and what a page that opens gets.
#[derive(Default)]
struct Live {
    recent_points: VecDeque<PagePoint>,
    fresh_points: Vec<PagePoint>,
    recent_dead: VecDeque<DeadGroup>,
    fresh_dead: Vec<DeadGroup>,
}

/// Shared between a pipeline and its HTTP server.
pub struct Observer {
    started: (Instant, SystemTime),
    ready: AtomicBool,
    /// When the page's next sample of points is due, ns since `started`.
    next_sample: AtomicU64,
    status: OnceLock<Arc<ReloadStatus>>,
    metrics: Metrics,
    run: RunMetrics,
    modules: Mutex<Vec<ModuleEntry>>,
    /// Per shard ever held: its lag and checkpoint-age gauges and whether it is held.
    shards: Mutex<BTreeMap<String, ShardGauges>>,
    /// What the source last reported, for `/status`.
    source: Mutex<Option<SourceStats>>,
    live: Mutex<Live>,
    zones: Option<serde_json::Value>,
}

impl Observer {
    /// An observer for a pipeline whose geofence zones (GeoJSON, for the page's map) are
    /// `zones`, when it has some.
    pub fn new(zones: Option<serde_json::Value>) -> Arc<Self> {
        let metrics = Metrics::default();
        let class = |c: &'static str| {
            (
                c,
                metrics.counter("waystream_dead_letters_total", &[("class", c)]),
            )
        };
        let run = RunMetrics {
            ready: metrics.gauge("waystream_ready", &[]),
            records_in: metrics.counter("waystream_records_in_total", &[]),
            documents_written: metrics.counter("waystream_documents_written_total", &[]),
            documents_refused: metrics.counter("waystream_documents_refused_total", &[]),
            sink_bytes: metrics.counter("waystream_sink_bytes_total", &[]),
            flushes: metrics.counter("waystream_sink_flushes_total", &[]),
            sink_calls: metrics.counter("waystream_sink_calls_total", &[]),
            sink_retried: metrics.counter("waystream_sink_retried_records_total", &[]),
            sink_throttled: metrics.counter("waystream_sink_throttled_calls_total", &[]),
            sink_backpressure: metrics.counter("waystream_sink_backpressure_attempts_total", &[]),
            dead_letters: [
                class("rejected"),
                class("batch_failed"),
                class("sink"),
                class("source"),
            ]
            .into_iter()
            .collect(),
            chain_batch: metrics.histogram("waystream_chain_batch_seconds", &[]),
            output_wait: metrics.histogram("waystream_output_wait_seconds", &[]),
            leases_held: metrics.gauge("waystream_leases_held", &[]),
            takeovers: metrics.counter("waystream_lease_takeovers_total", &[]),
            record_age: metrics.histogram("waystream_record_age_seconds", &[]),
            output_queue: metrics.gauge("waystream_output_queue_batches", &[]),
            reloads_activated: metrics
                .counter("waystream_reloads_total", &[("outcome", "activated")]),
            reloads_refused: metrics.counter("waystream_reloads_total", &[("outcome", "refused")]),
            reloads_rolled_back: metrics
                .counter("waystream_reloads_total", &[("outcome", "rolled_back")]),
            snapshot_failures: metrics.counter("waystream_snapshot_failures_total", &[]),
            config_reloads: metrics.counter("waystream_config_reloads_total", &[]),
            state_trajectories: metrics.gauge("waystream_state_trajectories", &[]),
            state_dropped_idle: metrics
                .counter("waystream_state_dropped_total", &[("reason", "idle")]),
            state_dropped_bound: metrics
                .counter("waystream_state_dropped_total", &[("reason", "bound")]),
        };
        run.ready.set(0.0);
        Arc::new(Observer {
            started: (Instant::now(), SystemTime::now()),
            ready: AtomicBool::new(false),
            next_sample: AtomicU64::new(0),
            status: OnceLock::new(),
            metrics,
            run,
            modules: Mutex::default(),
            shards: Mutex::default(),
            source: Mutex::default(),
            live: Mutex::default(),
            zones,
        })
    }

    /// Whether the pipeline can do its work: modules loaded, the source open and, as far
    /// as it reports, able to read (see [`Observer::source_problem`]).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.source_problem().is_none()
    }

    /// Why the source cannot do its work now (for Kinesis: its last lease round failed),
    /// as it last reported.
    pub fn source_problem(&self) -> Option<String> {
        let source = self.source.lock().unwrap_or_else(|e| e.into_inner());
        source.as_ref().and_then(|stats| stats.problem.clone())
    }

    /// Marks the pipeline running (or finished).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        self.run.ready.set(if ready { 1.0 } else { 0.0 });
    }

    /// The pipeline's chain, once it is built: its modules and reload status.
    pub fn attach(&self, chain: &Chain) {
        let _ = self.status.set(chain.reload_status().clone());
        self.after_batch(chain, 0, Duration::ZERO, Duration::ZERO, 0);
    }

    /// Sets the number of batches the output thread has still to take (0 once it has
    /// written everything).
    pub fn output_queue(&self, queued: usize) {
        self.run.output_queue.set(queued as f64);
    }

    /// After the chain ran a source batch of `records` records in `elapsed`, having
    /// waited `waited` for the output thread, which has `queued` batches still to take.
    pub fn after_batch(
        &self,
        chain: &Chain,
        records: u64,
        elapsed: Duration,
        waited: Duration,
        queued: usize,
    ) {
        self.output_queue(queued);
        if records > 0 {
            self.run.records_in.increment(records);
            self.run.chain_batch.record(elapsed.as_secs_f64());
            self.run.output_wait.record(waited.as_secs_f64());
        }
        if let Some(state) = chain.retention_stats() {
            self.run.state_trajectories.set(state.tracked as f64);
            self.run.state_dropped_idle.absolute(state.dropped_idle);
            self.run.state_dropped_bound.absolute(state.dropped_bound);
        }
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        for (module, stats) in chain.stats() {
            let index = match modules.iter().position(|m| m.view.module == module.name) {
                Some(index) => index,
                None => {
                    modules.push(ModuleEntry {
                        view: view(&module.name, &module.digest, module.generation, stats),
                        metrics: ModuleMetrics::new(&self.metrics, &module.name),
                        info: self.info_gauge(&module.name, &module.digest, module.generation),
                    });
                    modules.len() - 1
                }
            };
            let entry = &mut modules[index];
            // Strings only when the version changed: this runs once per batch.
            if entry.view.generation != module.generation || entry.view.digest != module.digest {
                entry.info.set(0.0);
                entry.info = self.info_gauge(&module.name, &module.digest, module.generation);
                entry.view = view(&module.name, &module.digest, module.generation, stats);
            }
            entry.metrics.update(stats);
            entry.view.count(stats);
        }
    }

    fn info_gauge(&self, module: &str, digest: &str, generation: u64) -> Gauge {
        let generation = generation.to_string();
        let gauge = self.metrics.gauge(
            "waystream_module_info",
            &[
                ("module", module),
                ("digest", digest),
                ("generation", &generation),
            ],
        );
        gauge.set(1.0);
        gauge
    }

    /// What a streaming source reported (see [`SourceStats`]).
    pub fn source_stats(&self, mut stats: SourceStats) {
        self.run.leases_held.set(stats.leases_held as f64);
        self.run.takeovers.absolute(stats.takeovers);
        for age in &stats.ack_ages {
            self.run.record_age.record(age.as_secs_f64());
        }
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        for gauges in shards.values() {
            gauges.held.set(0.0);
        }
        for (shard, behind, checkpoint_age) in &stats.shards {
            let gauges = shards
                .entry(shard.clone())
                .or_insert_with(|| ShardGauges::new(&self.metrics, shard));
            gauges.held.set(1.0);
            if let Some(behind) = behind {
                gauges.millis_behind.set(*behind as f64);
            }
            if let Some(age) = checkpoint_age {
                gauges.checkpoint_age.set(age.as_secs_f64());
            }
        }
        drop(shards);
        stats.ack_ages.clear();
        let ready = self.ready.load(Ordering::Relaxed) && stats.problem.is_none();
        self.run.ready.set(if ready { 1.0 } else { 0.0 });
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }

    /// The leases the source holds, with each shard's lag and checkpoint age, as JSON
    /// (none for a source without leases).
    pub fn leases(&self) -> Option<serde_json::Value> {
        let source = self.source.lock().unwrap_or_else(|e| e.into_inner());
        source.as_ref().map(|stats| {
            let shards: Vec<serde_json::Value> = stats
                .shards
                .iter()
                .map(|(shard, behind, checkpoint_age)| {
                    serde_json::json!({
                        "shard": shard,
                        "millis_behind_latest": behind,
                        "checkpoint_age_s": checkpoint_age.map(|a| a.as_secs_f64()),
                    })
                })
                .collect();
            serde_json::json!({
                "leases_held": stats.leases_held,
                "takeovers": stats.takeovers,
                "shards": shards,
            })
        })
    }

    /// After the output thread wrote a batch: `documents` documents of `bytes` bytes from
    /// `out` (when the batch had points), and `dead`.
    pub fn wrote(
        &self,
        out: Option<&ChainOutput>,
        documents: u64,
        bytes: u64,
        dead: &[DeadLetter],
    ) {
        self.run.documents_written.increment(documents);
        self.run.sink_bytes.increment(bytes);
        for letter in dead {
            // The host's own letters (sink, source) name no module version.
            let class = match letter.module.as_str() {
                "sink" => "sink",
                _ if letter.digest.is_empty() => "source",
                _ if letter.batch_failed => "batch_failed",
                _ => "rejected",
            };
            self.run.dead_letters[class].increment(1);
        }
        let groups = group_dead(dead, self.now_ms());
        let points = match out {
            Some(out) if self.sample_due() => sample_points(out),
            _ => Vec::new(),
        };
        if groups.is_empty() && points.is_empty() {
            return;
        }
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for group in groups {
            push_bounded(&mut live.recent_dead, group.clone(), RECENT_DEAD);
            if live.fresh_dead.len() < RECENT_DEAD {
                live.fresh_dead.push(group);
            }
        }
        for point in points {
            push_bounded(&mut live.recent_points, point.clone(), RECENT_POINTS);
            if live.fresh_points.len() < RECENT_POINTS {
                live.fresh_points.push(point);
            }
        }
    }

    /// Whether the page's next sample is due (and if so, it is taken now).
    fn sample_due(&self) -> bool {
        let now = self.started.0.elapsed().as_nanos() as u64;
        let next = self.next_sample.load(Ordering::Relaxed);
        let then = now + SAMPLE_EVERY.as_nanos() as u64;
        now >= next
            && self
                .next_sample
                .compare_exchange(next, then, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// After a flush, in which the sink refused `refused` documents for good; `stats`
    /// from a sink behind a service.
    pub fn flushed(&self, refused: u64, stats: Option<SinkStats>) {
        self.run.flushes.increment(1);
        self.run.documents_refused.increment(refused);
        if let Some(stats) = stats {
            self.run.sink_calls.absolute(stats.calls);
            self.run.sink_retried.absolute(stats.retried_records);
            self.run.sink_throttled.absolute(stats.throttled_calls);
            self.run
                .sink_backpressure
                .absolute(stats.backpressure_attempts);
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        if let Some(status) = self.status.get() {
            self.run.reloads_activated.absolute(status.swaps());
            self.run.reloads_refused.absolute(status.refusals());
            self.run.reloads_rolled_back.absolute(status.rollbacks());
            self.run
                .snapshot_failures
                .absolute(status.snapshot_failures());
            self.run.config_reloads.absolute(status.config_reloads());
        }
        self.metrics.render()
    }

    /// The modules, in chain order.
    pub fn modules(&self) -> Vec<ModuleView> {
        let modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        modules.iter().map(|m| m.view.clone()).collect()
    }

    /// Recent reload events (oldest first), as JSON.
    pub fn reload_events(&self) -> Vec<serde_json::Value> {
        self.status
            .get()
            .map(|s| s.events().iter().map(|e| self.event_json(e)).collect())
            .unwrap_or_default()
    }

    /// Reload events after `after` (when the last one sent happened).
    pub fn reload_events_since(
        &self,
        after: Option<Instant>,
    ) -> (Vec<serde_json::Value>, Option<Instant>) {
        let events = self.status.get().map(|s| s.events()).unwrap_or_default();
        let newest = events.last().map(|e| e.at).or(after);
        let fresh = events
            .iter()
            .filter(|e| after.is_none_or(|a| e.at > a))
            .map(|e| self.event_json(e))
            .collect();
        (fresh, newest)
    }

    /// Recent dead-letter groups (oldest first).
    pub fn dead_letters(&self) -> Vec<DeadGroup> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.recent_dead.iter().cloned().collect()
    }

    /// Recent points (oldest first).
    pub fn recent_points(&self) -> Vec<PagePoint> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.recent_points.iter().cloned().collect()
    }

    /// The points and dead-letter groups written since the last call.
    pub fn take_fresh(&self) -> (Vec<PagePoint>, Vec<DeadGroup>) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        (
            std::mem::take(&mut live.fresh_points),
            std::mem::take(&mut live.fresh_dead),
        )
    }

    /// The zones the page draws.
    pub fn zones(&self) -> Option<&serde_json::Value> {
        self.zones.as_ref()
    }

    /// Seconds since the observer was made.
    pub fn uptime(&self) -> Duration {
        self.started.0.elapsed()
    }

    fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    fn ms_at(&self, at: Instant) -> u64 {
        let (instant, system) = self.started;
        let wall = if at >= instant {
            system + (at - instant)
        } else {
            system - (instant - at)
        };
        wall.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn event_json(&self, event: &ReloadEvent) -> serde_json::Value {
        let (outcome, detail, generation) = match &event.outcome {
            Outcome::Activated {
                generation,
                fresh_because,
                ..
            } => (
                "activated",
                fresh_because
                    .as_ref()
                    .map(|r| format!("started fresh: {r}")),
                Some(*generation),
            ),
            Outcome::Refused(reason) => ("refused", Some(reason.clone()), None),
            Outcome::RolledBack(reason) => ("rolled_back", Some(reason.clone()), None),
            Outcome::SnapshotFailed(reason) => ("snapshot_failed", Some(reason.clone()), None),
            Outcome::ConfigApplied => ("config_applied", None, None),
        };
        serde_json::json!({
            "at_ms": self.ms_at(event.at),
            "module": event.module,
            "digest": event.digest,
            "outcome": outcome,
            "detail": detail,
            "generation": generation,
        })
    }
}

/// The series of one shard.
struct ShardGauges {
    held: Gauge,
    millis_behind: Gauge,
    checkpoint_age: Gauge,
}

impl ShardGauges {
    fn new(metrics: &Metrics, shard: &str) -> Self {
        let labels = [("shard", shard)];
        ShardGauges {
            held: metrics.gauge("waystream_lease_held", &labels),
            millis_behind: metrics.gauge("waystream_kinesis_millis_behind_latest", &labels),
            checkpoint_age: metrics.gauge("waystream_checkpoint_age_seconds", &labels),
        }
    }
}

fn view(module: &str, digest: &str, generation: u64, stats: &StageStats) -> ModuleView {
    let mut view = ModuleView {
        module: module.to_string(),
        digest: digest.to_string(),
        generation,
        records_in: 0,
        points_out: 0,
        rejected: 0,
        failed_records: 0,
        traps: 0,
        batches: 0,
        busy_ms: 0.0,
        rate_pps: 0.0,
    };
    view.count(stats);
    view
}

impl ModuleView {
    /// Takes the counters of `stats`.
    fn count(&mut self, stats: &StageStats) {
        let busy = stats.busy.as_secs_f64();
        self.records_in = stats.records_in;
        self.points_out = stats.points_out;
        self.rejected = stats.rejected;
        self.failed_records = stats.failed_records;
        self.traps = stats.traps;
        self.batches = stats.batches;
        self.busy_ms = busy * 1000.0;
        self.rate_pps = if busy > 0.0 {
            stats.points_out as f64 / busy
        } else {
            0.0
        };
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, bound: usize) {
    if queue.len() == bound {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// Up to [`POINTS_PER_BATCH`] points of `out`, evenly spread.
fn sample_points(out: &ChainOutput) -> Vec<PagePoint> {
    let points = &out.points;
    let n = points.lat.len();
    let step = n.div_ceil(POINTS_PER_BATCH).max(1);
    (0..n)
        .step_by(step)
        .map(|i| {
            let trajectory = out.batch.trajectories.get(points.trajectory[i] as usize);
            let zones = out
                .zone_sets
                .get(points.zones[i] as usize)
                .cloned()
                .unwrap_or_default();
            let speed = points.speed_mps[i];
            PagePoint {
                lat: points.lat[i],
                lon: points.lon[i],
                speed_mps: speed.is_finite().then_some(speed),
                user: trajectory.map(|t| t.user.clone()).unwrap_or_default(),
                trajectory: trajectory.map(|t| t.id.clone()).unwrap_or_default(),
                ts_ms: points.ts_ms[i],
                zones,
            }
        })
        .collect()
}

/// `dead` grouped by module and cause, in order of first appearance.
fn group_dead(dead: &[DeadLetter], at_ms: u64) -> Vec<DeadGroup> {
    let mut groups: Vec<DeadGroup> = Vec::new();
    for letter in dead {
        let cause = letter.cause.as_str();
        match groups
            .iter_mut()
            .find(|g| g.module == letter.module && g.cause == cause)
        {
            Some(group) => group.count += 1,
            None => groups.push(DeadGroup {
                at_ms,
                module: letter.module.clone(),
                cause: cause.to_string(),
                count: 1,
            }),
        }
    }
    groups
}
