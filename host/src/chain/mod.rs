//! The chain: a batch through every module in order, with nothing lost on the way.
//!
//! For each module the chain checks the output's accounting before trusting it: every input
//! record must come out as exactly one point (same trajectory and `seq`, in input order) or
//! as one rejection with an in-range index. A module that breaks this, returns an error,
//! traps, runs out of time or memory fails the whole batch: each of the batch's records
//! goes to the dead-letter sink with the cause, and the next batch runs as usual. A trap
//! also drops the instance; the next batch gets a fresh one.
//!
//! Between batches the chain can take new module versions or a new module list (see
//! [`swap`] and the [`crate::reload`] module): that is where hot reload lands.

mod swap;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dead_letter::DeadLetter;
use crate::engine::bindings::{Batch, NO_ZONES, Output, PointColumns, Records};
use crate::engine::{CallError, Engine, Instance, Module};
use crate::reload::{ActiveVersion, ReloadStatus};

/// Counters for one module of the chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageStats {
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
        })
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
            let stage = &self.stages[index];
            match outcome {
                Ok(output) => {
                    if !output.rejected.is_empty() {
                        let rejected = output
                            .rejected
                            .iter()
                            .map(|r| (r.index as usize, r.reason.as_str()));
                        dead.extend(DeadLetter::for_records(
                            &stage.module,
                            &batch,
                            input,
                            false,
                            rejected,
                        ));
                    }
                    if let Some(zone_sets) = output.zone_sets {
                        work.zone_sets = zone_sets;
                    }
                    points = output.points;
                }
                Err(cause) => {
                    let all = (0..input.len()).map(|i| (i, cause.as_str()));
                    dead.extend(DeadLetter::for_records(
                        &stage.module,
                        &batch,
                        input,
                        true,
                        all,
                    ));
                    points = PointColumns::default();
                }
            }
            work.records = Records::Points(std::mem::take(&mut points));
        }
        if let Records::Points(p) = &mut work.records {
            points = std::mem::take(p);
        }
        ChainOutput {
            points,
            zone_sets: work.zone_sets,
            batch,
        }
    }

    /// One module on one batch: the checked output, or why the whole batch failed.
    fn run_stage(&mut self, index: usize, input: &Batch) -> Result<Output, String> {
        let records = input.len() as u64;
        let started = Instant::now();
        let mut checked = self.call_checked(index, input);
        if let Err(cause) = &checked
            && self.roll_back(index, cause)
        {
            // The old version takes the batch its successor failed, as if no swap happened.
            checked = self.call_checked(index, input);
        }
        let stage = &mut self.stages[index];
        stage.previous = None;
        stage.stats.records_in += records;
        stage.stats.busy += started.elapsed();
        match &checked {
            Ok(output) => {
                stage.stats.points_out += output.points.len() as u64;
                stage.stats.rejected += output.rejected.len() as u64;
            }
            Err(cause) => {
                stage.stats.failed_batches += 1;
                stage.stats.failed_records += records;
                tracing::warn!(
                    module = %stage.module.name,
                    digest = stage.module.short_digest(),
                    generation = stage.module.generation,
                    records,
                    "batch failed: {cause}"
                );
            }
        }
        checked
    }

    /// Calls the stage's module and checks the output's accounting.
    fn call_checked(&mut self, index: usize, input: &Batch) -> Result<Output, String> {
        let output = Self::call(&self.engine, &mut self.stages[index], input)?;
        check_accounting(input, &output, &mut self.rejected_mask)?;
        Ok(output)
    }

    /// Calls the stage's instance, re-creating it first if a trap dropped it.
    fn call(engine: &Arc<Engine>, stage: &mut Stage, input: &Batch) -> Result<Output, String> {
        let instance = match &mut stage.instance {
            Some(instance) => instance,
            None => {
                let fresh = Instance::new(engine, stage.module.clone())
                    .map_err(|e| format!("could not re-create the instance after a trap: {e:#}"))?;
                tracing::info!(module = %stage.module.name, "instance re-created after a trap; its state starts fresh");
                stage.instance.insert(fresh)
            }
        };
        match instance.process(engine, input) {
            Ok(output) => Ok(output),
            Err(CallError::Refused(reason)) => Err(format!("module error: {reason}")),
            Err(CallError::Trap(reason)) => {
                stage.stats.traps += 1;
                stage.instance = None;
                Err(reason)
            }
        }
    }
}

/// The identity (trajectory, seq) of record `index` of a batch.
pub fn record_identity(batch: &Batch, index: usize) -> Option<(u32, u32)> {
    match &batch.records {
        Records::Lines(raw) => Some((*raw.trajectory.get(index)?, *raw.seq.get(index)?)),
        Records::Points(points) => Some((*points.trajectory.get(index)?, *points.seq.get(index)?)),
    }
}

/// Checks that `output` accounts for every input record exactly once.
fn check_accounting(input: &Batch, output: &Output, mask: &mut Vec<bool>) -> Result<(), String> {
    let n = input.len();
    if output.points.len() + output.rejected.len() != n {
        return Err(format!(
            "broken accounting: the module returned {} points and {} rejections for {n} records",
            output.points.len(),
            output.rejected.len()
        ));
    }
    mask.clear();
    mask.resize(n, false);
    for r in &output.rejected {
        match mask.get_mut(r.index as usize) {
            None => {
                return Err(format!(
                    "broken accounting: rejection index {} is out of range (batch of {n})",
                    r.index
                ));
            }
            Some(true) => {
                return Err(format!(
                    "broken accounting: record {} rejected twice",
                    r.index
                ));
            }
            Some(seen) => *seen = true,
        }
    }
    if !output.points.is_rectangular() {
        return Err(format!(
            "broken accounting: the module's point columns differ in length ({} points by `seq`)",
            output.points.len()
        ));
    }
    let zone_sets = output.zone_sets.as_ref().unwrap_or(&input.zone_sets).len();
    let points = &output.points;
    let (trajectories, seqs) = match &input.records {
        Records::Lines(raw) => (&raw.trajectory, &raw.seq),
        Records::Points(points) => (&points.trajectory, &points.seq),
    };
    // Nothing rejected (nearly every batch): the identities must be the input's, which
    // two slice comparisons check; otherwise point by point, to say where they differ.
    let same =
        output.rejected.is_empty() && points.trajectory == *trajectories && points.seq == *seqs;
    if !same {
        let kept = (0..n).filter(|&i| !mask[i]);
        let identities = points.trajectory.iter().zip(&points.seq);
        for ((&trajectory, &seq), index) in identities.zip(kept) {
            let expected = record_identity(input, index);
            if expected != Some((trajectory, seq)) {
                return Err(format!(
                    "broken accounting: output point (trajectory {trajectory}, seq {seq}) does not match input record {index}"
                ));
            }
        }
    }
    if let Some(zones) = points
        .zones
        .iter()
        .find(|&&z| z != NO_ZONES && z as usize >= zone_sets)
    {
        return Err(format!("point refers to zone set {zones} of {zone_sets}"));
    }
    Ok(())
}

/// Looks up the original raw line of a (trajectory, seq) in the source batch. Used on the
/// error path only.
pub fn original_lines(batch: &Batch) -> HashMap<(u32, u32), &[u8]> {
    match &batch.records {
        Records::Lines(raw) => raw
            .iter()
            .map(|(bytes, trajectory, seq)| ((trajectory, seq), bytes))
            .collect(),
        Records::Points(_) => HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::bindings::{Point, Trajectory};

    fn points_batch(points: PointColumns) -> Batch {
        Batch {
            trajectories: vec![Trajectory {
                user: "u".into(),
                id: "t".into(),
            }],
            zone_sets: Vec::new(),
            records: Records::Points(points),
        }
    }

    fn point(seq: u32) -> Point {
        waystream_guest::testing::point(0, seq, 0, 39.9, 116.4)
    }

    fn output(points: PointColumns) -> Output {
        Output {
            points,
            zone_sets: None,
            rejected: Vec::new(),
        }
    }

    #[test]
    fn columns_of_different_lengths_fail_the_batch() {
        let input = points_batch((0..3).map(point).collect());
        let mut ragged: PointColumns = (0..3).map(point).collect();
        assert_eq!(
            check_accounting(&input, &output(ragged.clone()), &mut Vec::new()),
            Ok(())
        );
        ragged.lat.pop();
        let error = check_accounting(&input, &output(ragged), &mut Vec::new()).unwrap_err();
        assert!(error.contains("columns differ in length"), "{error}");
    }

    #[test]
    fn a_zone_set_index_past_the_table_fails_the_batch_and_no_zones_does_not() {
        let input = points_batch((0..2).map(point).collect());
        let mut points: PointColumns = (0..2).map(point).collect();
        assert_eq!(points.zones, vec![NO_ZONES, NO_ZONES]);
        assert_eq!(
            check_accounting(&input, &output(points.clone()), &mut Vec::new()),
            Ok(())
        );
        points.zones[1] = 0;
        let error = check_accounting(&input, &output(points), &mut Vec::new()).unwrap_err();
        assert!(error.contains("zone set 0 of 0"), "{error}");
    }
}
