//! The chain: a batch through every module in order, with nothing lost on the way.
//!
//! For each module the chain checks the output before trusting it (see [`checks`]): its
//! accounting (every input record comes out as exactly one point, in order, or as one
//! rejection), its zone table, and its values. A module that breaks the accounting,
//! returns an error, traps, runs out of time or memory fails the whole batch: each of the
//! batch's records goes to the dead-letter sink with the cause (one shared, capped text),
//! and the next batch runs as usual. A trap also drops the instance; the next batch gets a
//! fresh one. A point with a value no downstream accepts is rejected alone.
//!
//! Between batches the chain can take new module versions or a new module list (see
//! [`swap`] and the [`crate::reload`] module): that is where hot reload lands. It can also
//! hand out, take in and forget the state of given trajectories (see [`keyed`], and
//! [`saved`] for the bytes a source keeps with its checkpoints): that is how state moves
//! with a Kinesis shard, and how memory stays bounded (see [`retention`]:
//! idle trajectories and those beyond a bound are dropped after a batch).

mod checks;
mod keyed;
pub mod retention;
mod saved;
mod swap;

pub use keyed::ModuleState;
pub use retention::{RetentionStats, StateConfig};
pub use saved::{decode_state, encode_state};
pub use swap::ChainEntry;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cause::Cause;
use crate::dead_letter::DeadLetter;
use crate::engine::bindings::{Batch, Output, PointColumns, Records};
use crate::engine::{Engine, GuestError, Instance, Module};
use crate::status::{ActiveVersion, ReloadStatus};
use retention::Retention;

/// Counters for one module of the chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageStats {
    /// Batches handed to the module.
    pub batches: u64,
    /// Records handed to the module.
    pub records_in: u64,
    /// Points it returned.
    pub points_out: u64,
    /// Records it rejected one by one.
    pub rejected: u64,
    /// Batches that failed as a whole (error, trap, broken accounting).
    pub failed_batches: u64,
    /// Records dead-lettered because their batch failed.
    pub failed_records: u64,
    /// Traps, including time and memory limits.
    pub traps: u64,
    /// Points the host refused for a value no downstream accepts (counted in `rejected`).
    pub invalid_points: u64,
    /// Guest texts (causes, reasons, zone names) cut to their budget.
    pub texts_cut: u64,
    /// Time spent in the module, boundary crossing included.
    pub busy: Duration,
}

struct Stage {
    module: Arc<Module>,
    instance: Option<Instance>,
    stats: StageStats,
    /// The version a hot swap replaced, kept until the new one has run a batch.
    previous: Option<swap::Previous>,
}

impl Stage {
    fn new(engine: &Arc<Engine>, module: Arc<Module>) -> anyhow::Result<Self> {
        Ok(Stage {
            instance: Some(Instance::new(engine, module.clone())?),
            module,
            stats: StageStats::default(),
            previous: None,
        })
    }

    fn active_version(&self) -> ActiveVersion {
        ActiveVersion {
            digest: self.module.digest.clone(),
            generation: self.module.generation,
            config: self.module.config.clone(),
        }
    }
}

/// What came out of the chain for one batch.
pub struct ChainOutput {
    /// The batch's trajectory table (as the source made it).
    pub batch: Batch,
    /// The points that made it through every module.
    pub points: PointColumns,
    /// The zone-set table the points refer to.
    pub zone_sets: Vec<Vec<String>>,
}

/// An ordered chain of module instances.
pub struct Chain {
    engine: Arc<Engine>,
    stages: Vec<Stage>,
    status: Arc<ReloadStatus>,
    /// Reused per batch: which input records a module rejected.
    rejected_mask: Vec<bool>,
    /// Which trajectories to forget, when the state is bounded.
    retention: Option<Retention>,
}

impl Chain {
    /// A chain of already loaded (and so validated) modules, each instantiated once.
    pub fn new(engine: Arc<Engine>, modules: Vec<Arc<Module>>) -> anyhow::Result<Self> {
        let stages: Vec<Stage> = modules
            .into_iter()
            .map(|module| Stage::new(&engine, module))
            .collect::<anyhow::Result<_>>()?;
        let status = Arc::new(ReloadStatus::default());
        for stage in &stages {
            status.set_active(&stage.module.name, stage.active_version());
        }
        Ok(Chain {
            engine,
            stages,
            status,
            rejected_mask: Vec::new(),
            retention: None,
        })
    }

    /// Bounds the modules' per-trajectory state as `config` says (by default the chain
    /// forgets nothing).
    pub fn bound_state(&mut self, config: &StateConfig) {
        self.retention = Retention::new(config, Instant::now());
    }

    /// Trajectories tracked and dropped, when the state is bounded.
    pub fn retention_stats(&self) -> Option<RetentionStats> {
        self.retention.as_ref().map(Retention::stats)
    }

    /// The engine the chain's modules run on (new versions must be loaded on it).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Reload counters, the active version of each module and recent reload events.
    pub fn reload_status(&self) -> &Arc<ReloadStatus> {
        &self.status
    }

    /// The modules, in order, with their counters.
    pub fn stats(&self) -> impl Iterator<Item = (&Arc<Module>, &StageStats)> {
        self.stages.iter().map(|s| (&s.module, &s.stats))
    }

    /// Runs `batch` (raw lines or points) through every module. Rejected and failed records
    /// are appended to `dead`.
    pub fn run(&mut self, batch: Batch, dead: &mut Vec<DeadLetter>) -> ChainOutput {
        let mut work = Batch {
            trajectories: batch.trajectories.clone(),
            zone_sets: batch.zone_sets.clone(),
            records: Records::Points(PointColumns::default()),
        };
        let mut points = PointColumns::default();
        for index in 0..self.stages.len() {
            let input = if index == 0 { &batch } else { &work };
            if input.is_empty() {
                break;
            }
            let outcome = self.run_stage(index, input);
            let module = &self.stages[index].module;
            match outcome {
                Ok(checked) => {
                    if !checked.rejected.is_empty() {
                        dead.extend(DeadLetter::for_records(
                            module,
                            &batch,
                            input,
                            false,
                            checked.rejected.into_iter(),
                        ));
                    }
                    if let Some(zone_sets) = checked.zone_sets {
                        work.zone_sets = zone_sets;
                    }
                    points = checked.points;
                }
                Err(error) => {
                    let cause = error.cause();
                    let all = (0..input.len()).map(|i| (i, cause.clone()));
                    dead.extend(DeadLetter::for_records(module, &batch, input, true, all));
                    points = PointColumns::default();
                }
            }
            work.records = Records::Points(std::mem::take(&mut points));
        }
        if let Records::Points(p) = &mut work.records {
            points = std::mem::take(p);
        }
        if let Some(retention) = &mut self.retention {
            let now = Instant::now();
            retention.saw(&batch.trajectories, now);
            let due = retention.due(now);
            if !due.is_empty() {
                self.drop_keys(&due);
            }
        }
        ChainOutput {
            points,
            zone_sets: work.zone_sets,
            batch,
        }
    }

    /// One module on one batch: the checked output, or why the whole batch failed.
    fn run_stage(&mut self, index: usize, input: &Batch) -> Result<Checked, StageError> {
        let records = input.len() as u64;
        let started = Instant::now();
        let mut checked = self.call_checked(index, input);
        if let Err(error) = &checked
            && self.roll_back(index, &error.cause())
        {
            // The old version takes the batch its successor failed, as if no swap happened.
            checked = self.call_checked(index, input);
        }
        let stage = &mut self.stages[index];
        stage.previous = None;
        stage.stats.batches += 1;
        stage.stats.records_in += records;
        stage.stats.busy += started.elapsed();
        match &checked {
            Ok(output) => {
                stage.stats.points_out += output.points.len() as u64;
                stage.stats.rejected += output.rejected.len() as u64;
            }
            Err(error) => {
                stage.stats.failed_batches += 1;
                stage.stats.failed_records += records;
                tracing::warn!(
                    module = %stage.module.name,
                    digest = stage.module.short_digest(),
                    generation = stage.module.generation,
                    records,
                    "batch failed: {error}"
                );
            }
        }
        checked
    }

    /// Calls the stage's module and checks its output (see [`checks`]).
    fn call_checked(&mut self, index: usize, input: &Batch) -> Result<Checked, StageError> {
        let limits = self.engine.limits();
        let stage = &mut self.stages[index];
        let mut output = Self::call(&self.engine, stage, input).map_err(StageError::Guest)?;
        checks::check_accounting(input, &output, &mut self.rejected_mask)
            .map_err(StageError::Output)?;
        checks::check_zone_table(&mut output, limits, &mut stage.stats.texts_cut)
            .map_err(StageError::Output)?;
        let mut rejected: Vec<(usize, Cause)> = output
            .rejected
            .iter()
            .map(|r| {
                let cause = Cause::capped(&r.reason, limits.cause_bytes);
                stage.stats.texts_cut += u64::from(cause.was_cut());
                (r.index as usize, cause)
            })
            .collect();
        let invalid = checks::take_invalid_points(&mut output.points, limits);
        if !invalid.is_empty() {
            stage.stats.invalid_points += invalid.len() as u64;
            // Output point k is the k-th input record the module did not reject.
            let kept: Vec<usize> = (0..input.len())
                .filter(|&i| !self.rejected_mask[i])
                .collect();
            rejected.extend(invalid.into_iter().map(|(k, cause)| (kept[k], cause)));
        }
        Ok(Checked {
            points: output.points,
            zone_sets: output.zone_sets,
            rejected,
        })
    }

    /// Calls the stage's instance with the batch.
    fn call(engine: &Arc<Engine>, stage: &mut Stage, input: &Batch) -> Result<Output, GuestError> {
        stage.guest_call(engine, |instance| instance.process(engine, input))
    }
}

impl Stage {
    /// Calls into the stage's instance, re-creating it first if a trap dropped it; a trap
    /// drops it again (the next call gets a fresh one).
    fn guest_call<R>(
        &mut self,
        engine: &Arc<Engine>,
        f: impl FnOnce(&mut Instance) -> Result<R, GuestError>,
    ) -> Result<R, GuestError> {
        let instance = match &mut self.instance {
            Some(instance) => instance,
            None => {
                let fresh = Instance::new(engine, self.module.clone()).map_err(|e| {
                    GuestError::Refused(Cause::host(format!(
                        "could not re-create the instance after a trap: {e:#}"
                    )))
                })?;
                tracing::info!(module = %self.module.name, "instance re-created after a trap; its state starts fresh");
                self.instance.insert(fresh)
            }
        };
        let result = f(instance);
        if let Err(GuestError::Trapped(..)) = &result {
            self.stats.traps += 1;
            self.instance = None;
        }
        if let Err(error) = &result {
            self.stats.texts_cut += u64::from(error.cause().was_cut());
        }
        result
    }
}

/// A module's output once checked: the points it kept, its zone table, and the input
/// records it (or the host's check of its values) turned away, by input index, with why.
struct Checked {
    points: PointColumns,
    zone_sets: Option<Vec<Vec<String>>>,
    rejected: Vec<(usize, Cause)>,
}

/// Why a module's batch failed as a whole.
#[derive(Debug, Clone)]
pub enum StageError {
    /// The call failed: the module refused the batch, or trapped.
    Guest(GuestError),
    /// The output breaks the accounting or a limit (see [`checks`]).
    Output(String),
}

impl StageError {
    /// The cause every record of the failed batch carries.
    pub fn cause(&self) -> Cause {
        match self {
            StageError::Guest(GuestError::Refused(cause)) => {
                Cause::host(format!("module error: {cause}"))
            }
            StageError::Guest(GuestError::Trapped(_, cause)) => cause.clone(),
            StageError::Output(text) => Cause::host(text.as_str()),
        }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cause())
    }
}
