//! The run loop: source → chain → sinks, one batch at a time.
//!
//! Every record read is accounted for: it leaves as an output document or as a dead
//! letter; the [`Summary`] checks and prints that balance.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::chain::Chain;
use crate::config::PipelineConfig;
use crate::dead_letter::DeadLetter;
use crate::document::{DocumentEncoder, Encoded};
use crate::engine::{Engine, Module};
use crate::sinks::{DeadLetterSink, Sink};
use crate::sources::Source;
use crate::summary::Summary;

/// A pipeline built from a config, ready to run.
pub struct Pipeline {
    source: Box<dyn Source>,
    chain: Chain,
    sink: Box<dyn Sink>,
    dead_letter: Box<dyn DeadLetterSink>,
    show_progress: bool,
}

impl Pipeline {
    /// Loads every module (compiling and validating it), opens the source and the sinks.
    pub fn build(config: &PipelineConfig) -> Result<Self> {
        let engine = Engine::new(config.limits.clone())?;
        let modules = load_modules(&engine, config)?;
        Ok(Pipeline {
            source: config.source.open(&config.base, config.batch_size)?,
            chain: Chain::new(engine, modules)?,
            sink: config.sink.open(&config.base)?,
            dead_letter: config.dead_letter.open(&config.base)?,
            show_progress: true,
        })
    }

    /// Whether to draw a progress bar (it is drawn only on a terminal in any case).
    pub fn show_progress(mut self, show: bool) -> Self {
        self.show_progress = show;
        self
    }

    /// Runs until the source is exhausted; flushes the sinks and returns the summary.
    pub fn run(mut self) -> Result<Summary> {
        let started = Instant::now();
        let progress = self.progress_bar();
        let mut encoder = DocumentEncoder::default();
        let mut encoded = Encoded::default();
        let mut dead: Vec<DeadLetter> = Vec::new();
        let mut summary = Summary::default();
        while let Some(batch) = self.source.next_batch()? {
            summary.records_in += batch.len() as u64;
            dead.clear();
            let out = self.chain.run(batch, &mut dead);
            encoder.encode(
                &out.batch.trajectories,
                &out.zone_sets,
                &out.points,
                &mut encoded,
            );
            self.sink.write(&encoded).context("sink")?;
            self.dead_letter.write(&dead).context("dead-letter sink")?;
            summary.documents_out += encoded.len() as u64;
            summary.dead_letters += dead.len() as u64;
            progress.set_position(self.source.bytes_read());
        }
        self.sink.flush().context("sink")?;
        self.dead_letter.flush().context("dead-letter sink")?;
        progress.finish_and_clear();
        summary.wall = started.elapsed();
        summary.modules = self
            .chain
            .stats()
            .map(|(module, stats)| {
                (
                    module.name.clone(),
                    module.short_digest().to_string(),
                    stats.clone(),
                )
            })
            .collect();
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

/// Compiles and validates the chain's modules, in order.
pub fn load_modules(engine: &Arc<Engine>, config: &PipelineConfig) -> Result<Vec<Arc<Module>>> {
    config
        .transforms
        .iter()
        .map(|m| {
            let started = Instant::now();
            let module = Module::load(engine, &m.name, &config.base.join(&m.path), m.config_json(&config.base)?)?;
            tracing::info!(module = %m.name, digest = module.short_digest(), ms = started.elapsed().as_millis() as u64, "module loaded");
            Ok(module)
        })
        .collect()
}
