//! The Prometheus metrics of one pipeline: names, help texts and the registry they live in.
//!
//! Each pipeline owns its registry (a `metrics-exporter-prometheus` recorder used directly,
//! not installed as the process's global recorder), so two pipelines in one process (tests,
//! embedders) never mix their series. The counters that the closing summary also reports
//! are set from the same numbers ([`Counter::absolute`]), so a scrape at the end of a run
//! matches the summary exactly.
//!
//! Names follow the Prometheus conventions: the `waystream_` prefix, `_total` for
//! counters, base units (`_seconds`, `_bytes`), a `module` label on per-module series;
//! `process_*` are the standard process metrics.

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::chain::StageStats;

const METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

/// Buckets of the batch-time histograms, in seconds: 100 µs to 10 s.
const BATCH_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// Every metric: name, unit and help text (the `# HELP` line).
const DESCRIPTIONS: &[(&str, Option<Unit>, &str)] = &[
    (
        "waystream_ready",
        None,
        "1 while the pipeline runs (modules loaded, source open and able to read), else 0.",
    ),
    (
        "waystream_records_in_total",
        None,
        "Records (lines) read from the source.",
    ),
    (
        "waystream_documents_written_total",
        None,
        "Documents written to the sink.",
    ),
    (
        "waystream_documents_refused_total",
        None,
        "Documents the sink refused for good after they were written (they became dead letters).",
    ),
    (
        "waystream_dead_letters_total",
        None,
        "Records written to the dead-letter sink, by class: rejected (by a module), batch_failed (their batch failed), sink (the sink refused the document), source (unreadable input).",
    ),
    (
        "waystream_sink_bytes_total",
        Some(Unit::Bytes),
        "Bytes of documents written to the sink.",
    ),
    (
        "waystream_sink_flushes_total",
        None,
        "Flushes of the sink (each makes what it holds durable and acknowledges it to the source).",
    ),
    (
        "waystream_output_wait_seconds",
        Some(Unit::Seconds),
        "Time the chain waited per batch for the output thread (encoding and sinks): back-pressure.",
    ),
    (
        "waystream_sink_calls_total",
        None,
        "Calls the sink made to its service (Firehose PutRecordBatch).",
    ),
    (
        "waystream_sink_retried_records_total",
        None,
        "Records the sink's service refused within an accepted call (each was sent again).",
    ),
    (
        "waystream_sink_throttled_calls_total",
        None,
        "Calls the sink's service refused as throttled.",
    ),
    (
        "waystream_sink_backpressure_attempts_total",
        None,
        "Sink attempts made while pushing back on the pipeline (retrying past backpressure_after).",
    ),
    (
        "waystream_chain_batch_seconds",
        Some(Unit::Seconds),
        "Time of one batch through the whole chain.",
    ),
    (
        "waystream_module_records_in_total",
        None,
        "Records handed to the module.",
    ),
    (
        "waystream_module_points_out_total",
        None,
        "Points the module returned.",
    ),
    (
        "waystream_module_rejected_total",
        None,
        "Records the module rejected one by one.",
    ),
    (
        "waystream_module_failed_batches_total",
        None,
        "Batches that failed in the module as a whole (error, trap, broken accounting).",
    ),
    (
        "waystream_module_failed_records_total",
        None,
        "Records dead-lettered because their batch failed in the module.",
    ),
    (
        "waystream_module_traps_total",
        None,
        "Traps in the module, time and memory limits included.",
    ),
    (
        "waystream_module_batch_seconds",
        Some(Unit::Seconds),
        "Time of one batch in the module, the Wasm boundary included (its _sum is the module's busy time).",
    ),
    (
        "waystream_module_info",
        None,
        "1 for the version each module runs: its digest and generation.",
    ),
    (
        "waystream_leases_held",
        None,
        "Kinesis leases this host holds.",
    ),
    (
        "waystream_lease_takeovers_total",
        None,
        "Kinesis leases this host took over from other hosts.",
    ),
    (
        "waystream_lease_held",
        None,
        "1 while this host holds the shard's lease, 0 after it lost or gave it up.",
    ),
    (
        "waystream_kinesis_millis_behind_latest",
        None,
        "MillisBehindLatest of the shard's last GetRecords: how far its reader is behind the tip, ms (last value while held).",
    ),
    (
        "waystream_checkpoint_age_seconds",
        Some(Unit::Seconds),
        "Time since this host last wrote the shard's checkpoint.",
    ),
    (
        "waystream_record_age_seconds",
        Some(Unit::Seconds),
        "Age of each acknowledged batch's oldest record when the sinks had made it durable: now minus its ApproximateArrivalTimestamp (end-to-end latency).",
    ),
    (
        "waystream_reloads_total",
        None,
        "Hot reloads by outcome: activated (a version swapped in), refused (before it ran), rolled_back (it failed its first batch).",
    ),
    (
        "waystream_snapshot_failures_total",
        None,
        "Replaced versions whose snapshot failed (their successors started fresh).",
    ),
    (
        "waystream_config_reloads_total",
        None,
        "Pipeline configs reloaded.",
    ),
    (
        "waystream_state_trajectories",
        None,
        "Trajectories the chain's modules may hold state for (tracked when [state] bounds it).",
    ),
    (
        "waystream_state_dropped_total",
        None,
        "Trajectories whose state the modules dropped, by reason: idle (not seen for idle_secs), bound (beyond max_trajectories).",
    ),
];

/// The name of every metric the host exports (a histogram's series add `_bucket`,
/// `_sum` and `_count`).
pub fn names() -> impl Iterator<Item = &'static str> {
    DESCRIPTIONS
        .iter()
        .map(|(name, _, _)| *name)
        .chain(["process_resident_memory_bytes", "process_cpu_seconds_total"])
}

/// One pipeline's registry.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BATCH_SECONDS)
            .expect("the bucket list is not empty")
            .build_recorder();
        for (name, unit, help) in DESCRIPTIONS {
            recorder.describe_counter((*name).into(), *unit, (*help).into());
        }
        let handle = recorder.handle();
        Metrics { recorder, handle }
    }
}

impl Metrics {
    /// The counter `name` with `labels`.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    /// The gauge `name` with `labels`.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    /// The histogram `name` with `labels`.
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder
            .register_histogram(&key(name, labels), &METADATA)
    }

    /// Everything, in the Prometheus text format, with the standard process metrics
    /// (`process_resident_memory_bytes`, `process_cpu_seconds_total`) where the OS tells.
    pub fn render(&self) -> String {
        let mut text = self.handle.render();
        if let Some(rss) = crate::summary::resident_bytes() {
            text.push_str(
                "# HELP process_resident_memory_bytes Resident memory size of the process.\n",
            );
            text.push_str(&format!(
                "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n"
            ));
        }
        if let Some(cpu) = crate::summary::CpuTime::now() {
            let seconds = (cpu.user + cpu.system).as_secs_f64();
            text.push_str(
                "# HELP process_cpu_seconds_total CPU time of the process, user and system.\n",
            );
            text.push_str(&format!(
                "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {seconds}\n"
            ));
        }
        text
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.to_string()))
        .collect();
    Key::from_parts(name, labels)
}

/// The handles of one module's series, registered once per module name.
pub struct ModuleMetrics {
    records_in: Counter,
    points_out: Counter,
    rejected: Counter,
    failed_batches: Counter,
    failed_records: Counter,
    traps: Counter,
    batch_seconds: Histogram,
    /// The stats last published, to tell a batch's share.
    last: StageStats,
}

impl ModuleMetrics {
    /// Registers the series of `module`.
    pub fn new(metrics: &Metrics, module: &str) -> Self {
        let labels = [("module", module)];
        ModuleMetrics {
            records_in: metrics.counter("waystream_module_records_in_total", &labels),
            points_out: metrics.counter("waystream_module_points_out_total", &labels),
            rejected: metrics.counter("waystream_module_rejected_total", &labels),
            failed_batches: metrics.counter("waystream_module_failed_batches_total", &labels),
            failed_records: metrics.counter("waystream_module_failed_records_total", &labels),
            traps: metrics.counter("waystream_module_traps_total", &labels),
            batch_seconds: metrics.histogram("waystream_module_batch_seconds", &labels),
            last: StageStats::default(),
        }
    }

    /// Sets the counters to `stats` and, when the module ran a batch since the last call,
    /// records that batch's time.
    pub fn update(&mut self, stats: &StageStats) {
        if stats.batches > self.last.batches {
            let busy = stats.busy.saturating_sub(self.last.busy);
            self.batch_seconds.record(busy.as_secs_f64());
        }
        self.records_in.absolute(stats.records_in);
        self.points_out.absolute(stats.points_out);
        self.rejected.absolute(stats.rejected);
        self.failed_batches.absolute(stats.failed_batches);
        self.failed_records.absolute(stats.failed_records);
        self.traps.absolute(stats.traps);
        self.last.clone_from(stats);
    }
}
