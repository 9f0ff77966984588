//! The run loop: source → chain → sinks, one batch at a time.
//!
//! Every record read is accounted for: it leaves as an output document or as a dead
//! letter; the [`Summary`] checks and prints that balance. Between batches, the loop
//! applies what hot reload validated (see [`crate::reload`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use waystream_contract::document::{DocumentEncoder, Encoded};

use crate::cause::Cause;
use crate::chain::{Chain, ChainOutput};
use crate::config::{ModuleConfig, PipelineConfig};
use crate::dead_letter::DeadLetter;
use crate::engine::{Engine, Module, digest_of};
use crate::http::Observer;
use crate::reload::{Reloader, Update};
use crate::sinks::Sink;
use crate::sources::{Acknowledgement, Source};
use crate::status::ReloadStatus;
use crate::summary::Summary;

/// A pipeline built from a config, ready to run.
pub struct Pipeline {
    engine: Arc<Engine>,
    config: PipelineConfig,
    reloader: Option<Reloader>,
    source: Box<dyn Source>,
    chain: Chain,
    sink: Box<dyn Sink>,
    dead_letter: Box<dyn Sink>,
    show_progress: bool,
    stop: Arc<AtomicBool>,
    /// How long loading the modules took.
    load: Duration,
    /// Where the run is published for the HTTP server, when there is one.
    observer: Option<Arc<Observer>>,
}

impl Pipeline {
    /// Loads every module (compiling and validating it), opens the source and the sinks.
    pub fn build(config: &PipelineConfig) -> Result<Self> {
        let started = Instant::now();
        let engine = Engine::with_cache(config.limits.clone(), &config.cache)?;
        let modules = load_modules(
            &engine,
            &config.transforms,
            &config.base,
            config.require_pinned_digests,
        )?;
        let stop = Arc::default();
        let mut chain = Chain::new(engine.clone(), modules)?;
        chain.bound_state(&config.state);
        Ok(Pipeline {
            engine: engine.clone(),
            config: config.clone(),
            reloader: None,
            source: config.source.open(&config.base, config.batch_size)?,
            chain,
            sink: config.sink.open(&config.base, &stop)?,
            dead_letter: config.dead_letter.open(&config.base, &stop)?,
            show_progress: true,
            stop,
            load: started.elapsed(),
            observer: None,
        })
    }

    /// Publishes the run to `observer` (metrics, readiness, the live page's data), once
    /// per batch.
    pub fn observe(mut self, observer: Arc<Observer>) -> Self {
        observer.attach(&self.chain);
        self.observer = Some(observer);
        self
    }

    /// Reads from `source` instead of the configured source (for embedding and tests).
    pub fn with_source(mut self, source: Box<dyn Source>) -> Self {
        self.source = source;
        self
    }

    /// Writes to `sink` instead of the configured sink (for embedding and tests).
    pub fn with_sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.sink = sink;
        self
    }

    /// Whether to draw a progress bar (it is drawn only on a terminal in any case).
    pub fn show_progress(mut self, show: bool) -> Self {
        self.show_progress = show;
        self
    }

    /// Turns on hot reload: module files (and `config_path`, the file the config came
    /// from, with the files it names) are watched, and changes apply between batches.
    pub fn hot_reload(mut self, config_path: Option<&Path>) -> Result<Self> {
        let status = self.chain.reload_status().clone();
        self.reloader = Some(Reloader::start(
            self.engine.clone(),
            self.config.clone(),
            config_path,
            status,
        )?);
        Ok(self)
    }

    /// Reload counters, active module versions and recent reload events.
    pub fn reload_status(&self) -> Arc<ReloadStatus> {
        self.chain.reload_status().clone()
    }

    /// Set it (from a signal handler, say) to stop the run gracefully: the batch in flight
    /// finishes, the sinks flush, what they hold is acknowledged to the source, and the
    /// source finishes (a Kinesis source checkpoints and releases its leases).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs until the source is exhausted or [`Pipeline::stop_flag`] is set; flushes the
    /// sinks, finishes the source and returns the summary.
    pub fn run(mut self) -> Result<Summary> {
        let started = Instant::now();
        let cpu_before = crate::summary::CpuTime::now();
        let progress = self.progress_bar();
        let mut summary = Summary::default();
        // Encoding and writing run on their own thread, one batch behind the chain, so
        // the Wasm work and the output overlap; the bounded queue is the back-pressure.
        let (outputs, queue) = mpsc::sync_channel::<Output>(OUTPUT_QUEUE);
        let Pipeline {
            source,
            chain,
            sink,
            dead_letter,
            reloader,
            stop,
            observer,
            ..
        } = &mut self;
        let observer = observer.as_deref();
        if let Some(observer) = observer {
            observer.set_ready(true);
        }
        // Batches sent to the output thread and not taken by it yet (a metric).
        let queued = &std::sync::atomic::AtomicUsize::new(0);
        let ran = std::thread::scope(|scope| -> Result<_> {
            let writer = std::thread::Builder::new()
                .name("waystream-output".into())
                .spawn_scoped(scope, move || {
                    write_outputs(queue, queued, sink.as_mut(), dead_letter.as_mut(), observer)
                })?;
            let mut records_in = 0u64;
            let read = (|| -> Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    let Some(next) = source.next_batch()? else {
                        break;
                    };
                    if let Some(reloader) = reloader {
                        apply_reloads(reloader, chain);
                    }
                    let records = (next.batch.len() + next.rejected.len()) as u64;
                    records_in += records;
                    let mut dead = next.rejected;
                    let started = Instant::now();
                    chain.replace_state(&next.state.restore);
                    let chain_output =
                        (!next.batch.is_empty()).then(|| chain.run(next.batch, &mut dead));
                    if !next.state.capture.is_empty() {
                        let (sets, receivers): (Vec<_>, Vec<_>) =
                            next.state.capture.into_iter().unzip();
                        for (deliver, state) in
                            receivers.into_iter().zip(chain.capture_state(&sets))
                        {
                            deliver(state);
                        }
                    }
                    let ran = started.elapsed();
                    let output = Output {
                        chain: chain_output,
                        dead,
                        ack: next.ack,
                    };
                    queued.fetch_add(1, Ordering::Relaxed);
                    if outputs.send(output).is_err() {
                        break; // the writer failed; its error is reported below
                    }
                    if let Some(observer) = observer {
                        let waiting = queued.load(Ordering::Relaxed);
                        observer.after_batch(chain, records, ran, started.elapsed() - ran, waiting);
                        if let Some(stats) = source.stats() {
                            observer.source_stats(stats);
                        }
                    }
                    progress.set_position(source.bytes_read());
                }
                Ok(())
            })();
            drop(outputs);
            let written = writer
                .join()
                .map_err(|_| anyhow::anyhow!("the output thread panicked"))??;
            if let Some(observer) = observer {
                // The writer took every batch; the last sample may predate that.
                observer.output_queue(0);
            }
            read?;
            Ok((records_in, written))
        });
        // Finished even when the sinks failed: the source then checkpoints only what was
        // acknowledged (what the sinks made durable) and gives back what it holds.
        let finished = self.source.finish().context("source");
        if let Some(observer) = &self.observer {
            observer.set_ready(false);
        }
        let (records_in, written) = ran?;
        finished?;
        progress.finish_and_clear();
        summary.records_in = records_in;
        summary.documents_out = written.documents;
        summary.dead_letters = written.letters;
        summary.first_point = written.first_document.map(|t| t.duration_since(started));
        summary.wall = started.elapsed();
        summary.load = self.load;
        summary.source = self.source.counters();
        summary.modules = self
            .chain
            .stats()
            .map(|(module, stats)| (module.clone(), stats.clone()))
            .collect();
        let status = self.chain.reload_status();
        summary.swaps = status.swaps();
        summary.reload_failures = status.failures();
        summary.snapshot_failures = status.snapshot_failures();
        summary.config_reloads = status.config_reloads();
        summary.peak_rss_bytes = crate::summary::peak_rss_bytes();
        summary.state = self.chain.retention_stats();
        summary.cpu = crate::summary::CpuTime::now()
            .zip(cpu_before)
            .map(|(now, before)| now.since(before));
        Ok(summary)
    }

    fn progress_bar(&self) -> ProgressBar {
        let Some(total) = self.source.total_bytes().filter(|_| self.show_progress) else {
            return ProgressBar::hidden();
        };
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    }
}

/// Batches waiting for the output thread, at most.
const OUTPUT_QUEUE: usize = 4;

/// Hands every validated update waiting from the reload thread to the chain.
fn apply_reloads(reloader: &Reloader, chain: &mut Chain) {
    while let Some(update) = reloader.try_next() {
        match update {
            Update::Module(module, detected) => chain.swap(module, Some(detected)),
            Update::Chain(entries) => chain.reconfigure(entries),
        }
    }
}

/// What the chain made of one source batch, on its way to the output thread.
struct Output {
    /// None when the source batch had no lines.
    chain: Option<ChainOutput>,
    dead: Vec<DeadLetter>,
    ack: Option<Acknowledgement>,
}

/// How long an acknowledgement may wait for the sinks to flush: bounds how far a source's
/// checkpoint lags behind what was written (and so the duplicates after a crash).
const ACK_INTERVAL: Duration = Duration::from_millis(500);

/// What the output thread wrote.
#[derive(Default)]
struct Written {
    documents: u64,
    letters: u64,
    /// When the first document went to the sink.
    first_document: Option<Instant>,
}

/// The output thread: encodes each batch's points and dead letters, writes them in batch
/// order, and flushes at the end. Batches that carry an acknowledgement are acknowledged,
/// in order, after a flush that makes them durable: at most [`ACK_INTERVAL`] after they
/// were written.
fn write_outputs(
    queue: mpsc::Receiver<Output>,
    queued: &std::sync::atomic::AtomicUsize,
    sink: &mut dyn Sink,
    dead_letter: &mut dyn Sink,
    observer: Option<&Observer>,
) -> Result<Written> {
    let mut encoder = DocumentEncoder::default();
    let mut encoded = Encoded::default();
    let mut letters = Encoded::default();
    let mut written = Written::default();
    let mut unacknowledged: Vec<Acknowledgement> = Vec::new();
    // When the oldest unacknowledged batch must be flushed; none while nothing waits.
    let mut flush_by: Option<Instant> = None;
    loop {
        let wait = flush_by.map_or(ACK_INTERVAL, |t| {
            t.saturating_duration_since(Instant::now())
        });
        let output = match queue.recv_timeout(wait) {
            Ok(output) => {
                queued.fetch_sub(1, Ordering::Relaxed);
                Some(output)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if let Some(Output {
            chain,
            mut dead,
            ack,
        }) = output
        {
            let documents_before = written.documents;
            if let Some(out) = &chain {
                encoder.encode(
                    &out.batch.trajectories,
                    &out.zone_sets,
                    out.points.iter(),
                    &mut encoded,
                );
                // Documents the sink cannot take become dead letters (a rare, slow path).
                if let Some(limit) = sink.max_record_bytes()
                    && encoded.iter().any(|d| d.len() > limit)
                {
                    dead.extend(take_oversize(&mut encoded, out, limit));
                }
                sink.write(&encoded).context("sink")?;
                if !encoded.is_empty() {
                    written.first_document.get_or_insert_with(Instant::now);
                }
                written.documents += encoded.len() as u64;
            }
            encode_letters(&dead, dead_letter.max_record_bytes(), &mut letters);
            dead_letter.write(&letters).context("dead-letter sink")?;
            written.letters += dead.len() as u64;
            if let Some(observer) = observer {
                let documents = written.documents - documents_before;
                let bytes = if chain.is_some() {
                    encoded.bytes.len()
                } else {
                    0
                };
                observer.wrote(chain.as_ref(), documents, bytes as u64, &dead);
            }
            if let Some(ack) = ack {
                flush_by.get_or_insert_with(|| Instant::now() + ACK_INTERVAL);
                unacknowledged.push(ack);
            }
        }
        if flush_by.is_some_and(|t| Instant::now() >= t) {
            flush_and_acknowledge(
                &mut unacknowledged,
                sink,
                dead_letter,
                &mut written,
                observer,
            )?;
            flush_by = None;
        }
    }
    flush_and_acknowledge(
        &mut unacknowledged,
        sink,
        dead_letter,
        &mut written,
        observer,
    )?;
    Ok(written)
}

/// Takes the documents over `limit` bytes out of `documents`, as dead letters holding the
/// document (`documents[i]` is the document of `out.points` row `i`).
fn take_oversize(documents: &mut Encoded, out: &ChainOutput, limit: usize) -> Vec<DeadLetter> {
    let mut kept = Encoded::default();
    let mut letters = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        if document.len() <= limit {
            kept.push(document);
            continue;
        }
        let cause = Cause::host(format!(
            "a document of {} bytes is over the sink's limit of {limit}",
            document.len()
        ));
        let point = out.points.get(i).unwrap_or_default();
        let trajectory = out.batch.trajectories.get(point.trajectory as usize);
        let who = trajectory.map_or(("", ""), |t| (t.user.as_str(), t.id.as_str()));
        letters.push(DeadLetter::from_sink(
            "sink",
            cause,
            document,
            (who.0, who.1, point.seq),
        ));
    }
    *documents = kept;
    letters
}

/// Replaces `out` with `letters`, one NDJSON line each; a letter over `limit` (the
/// dead-letter sink's record limit) has its line cut to fit.
fn encode_letters(letters: &[DeadLetter], limit: Option<usize>, out: &mut Encoded) {
    out.clear();
    let mut line = Vec::new();
    for letter in letters {
        line.clear();
        letter.encode(&mut line);
        if let Some(limit) = limit
            && line.len() > limit
        {
            line.clear();
            // The line is the letter's only unbounded part: half the limit leaves room
            // for the rest (a capped cause, the point's document).
            letter.truncated(limit / 2).encode(&mut line);
        }
        out.push(&line);
    }
}

/// Flushes the sink, writes what it refused for good to the dead-letter sink, flushes
/// that, then calls the acknowledgements of what they now hold, in order.
fn flush_and_acknowledge(
    unacknowledged: &mut Vec<Acknowledgement>,
    sink: &mut dyn Sink,
    dead_letter: &mut dyn Sink,
    written: &mut Written,
    observer: Option<&Observer>,
) -> Result<()> {
    sink.flush().context("sink")?;
    let refused = sink.take_refused();
    if let Some(observer) = observer {
        observer.flushed(refused.len() as u64, sink.stats());
    }
    if !refused.is_empty() {
        let letters: Vec<DeadLetter> = refused
            .iter()
            .map(|(document, reason)| refused_letter(document, reason))
            .collect();
        if let Some(observer) = observer {
            observer.wrote(None, 0, 0, &letters);
        }
        let mut encoded = Encoded::default();
        encode_letters(&letters, dead_letter.max_record_bytes(), &mut encoded);
        dead_letter.write(&encoded).context("dead-letter sink")?;
        // They were counted as documents when written.
        written.documents -= letters.len() as u64;
        written.letters += letters.len() as u64;
    }
    dead_letter.flush().context("dead-letter sink")?;
    unacknowledged.drain(..).for_each(|ack| ack());
    Ok(())
}

/// The dead letter of a document the sink refused: the document (one of ours, so its
/// user, trajectory and `seq` are read back from it) and the sink's reason.
fn refused_letter(document: &[u8], reason: &str) -> DeadLetter {
    let value: serde_json::Value = serde_json::from_slice(document).unwrap_or_default();
    let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
    let (user, trajectory) = (text("user"), text("trajectory"));
    let seq = value["seq"].as_u64().unwrap_or_default() as u32;
    DeadLetter::from_sink(
        "sink",
        Cause::capped(reason, 4096),
        document,
        (&user, &trajectory, seq),
    )
}

/// Compiles and validates a chain's modules, in order, as their first generation. Paths
/// and config files are relative to `base`; with `require_pinned`, only versions listed in
/// a module's `allowed_digests` load.
pub fn load_modules(
    engine: &Arc<Engine>,
    modules: &[ModuleConfig],
    base: &Path,
    require_pinned: bool,
) -> Result<Vec<Arc<Module>>> {
    // One thread per module: compiling is single-threaded per module (see `Engine`).
    std::thread::scope(|scope| {
        let loads: Vec<_> = modules
            .iter()
            .map(|m| scope.spawn(|| load_module(engine, m, base, require_pinned)))
            .collect();
        loads
            .into_iter()
            .map(|load| {
                load.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Reads, checks the pinning of, compiles and validates one module of the config.
fn load_module(
    engine: &Arc<Engine>,
    m: &ModuleConfig,
    base: &Path,
    require_pinned: bool,
) -> Result<Arc<Module>> {
    let started = Instant::now();
    let path = base.join(&m.path);
    let bytes = std::fs::read(&path)
        .with_context(|| format!("module {}: reading {}", m.name, path.display()))?;
    m.check_pinned(&digest_of(&bytes), require_pinned)?;
    let module = Module::from_bytes(engine, &m.name, &path, &bytes, m.config_json(base)?, 1)?;
    tracing::info!(
        module = %m.name,
        digest = module.short_digest(),
        ms = started.elapsed().as_millis() as u64,
        compiled = if module.cached { "from the cache" } else { "now" },
        "module loaded"
    );
    Ok(module)
}
