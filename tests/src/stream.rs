//! A paced, endless source of PLT lines, for tests that change a pipeline while it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use waystream::engine::bindings::{Batch, RawLines, Records, Trajectory};
use waystream::sources::{Source, SourceBatch};

/// Round-robin points of `trajectories` trajectories, each sweeping east and west across
/// Beijing (through the demo zones' edges) at about 40 m/s, one point per second.
pub struct StreamSource {
    trajectories: Vec<Trajectory>,
    next_seq: Vec<u32>,
    batch_lines: usize,
    pause: Duration,
    stop: Arc<AtomicBool>,
    emitted: Arc<AtomicU64>,
    /// The batch (counted from 0) whose trajectories are named `bad-…`, if any: the one a
    /// hostile guest misbehaves on.
    bad_batch: Option<u64>,
}

impl StreamSource {
    /// A source of `batch_lines`-line batches with `pause` between them.
    pub fn new(trajectories: usize, batch_lines: usize, pause: Duration) -> Self {
        StreamSource {
            trajectories: (0..trajectories)
                .map(|i| Trajectory {
                    user: format!("{:03}", i % 7),
                    id: format!("stream-{i}"),
                })
                .collect(),
            next_seq: vec![0; trajectories],
            batch_lines,
            pause,
            stop: Arc::default(),
            emitted: Arc::default(),
            bad_batch: None,
        }
    }

    /// Names the trajectories of batch `n` (from 0) `bad-…` (and only that batch's).
    pub fn with_bad_batch(mut self, n: u64) -> Self {
        self.bad_batch = Some(n);
        self
    }

    /// Set it to end the stream after the current batch.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Lines emitted so far.
    pub fn emitted(&self) -> Arc<AtomicU64> {
        self.emitted.clone()
    }
}

impl Source for StreamSource {
    fn next_batch(&mut self) -> anyhow::Result<Option<SourceBatch>> {
        if self.stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        std::thread::sleep(self.pause);
        let mut raw = RawLines::default();
        let start = self.emitted.load(Ordering::SeqCst) as usize;
        for k in 0..self.batch_lines {
            let t = (start + k) % self.trajectories.len();
            let seq = self.next_seq[t];
            self.next_seq[t] += 1;
            // A triangle wave in longitude, 400 points per sweep, offset per trajectory.
            let phase = (seq as usize + t * 37) % 800;
            let x = if phase < 400 { phase } else { 800 - phase } as f64;
            let lon = 116.30 + x * 0.0005;
            let lat = 39.88 + (t % 10) as f64 * 0.004;
            let secs = 7_200 + seq;
            let line = format!(
                "{lat:.6},{lon:.6},0,100,39744.0,2008-10-23,{:02}:{:02}:{:02}",
                secs / 3600 % 24,
                secs / 60 % 60,
                secs % 60
            );
            raw.push(line.as_bytes(), t as u32, seq);
        }
        let batch_number = start as u64 / self.batch_lines.max(1) as u64;
        let mut trajectories = self.trajectories.clone();
        if self.bad_batch == Some(batch_number) {
            for t in &mut trajectories {
                t.id = format!("bad-{}", t.id);
            }
        }
        self.emitted
            .fetch_add(self.batch_lines as u64, Ordering::SeqCst);
        Ok(Some(
            Batch {
                trajectories,
                zone_sets: Vec::new(),
                records: Records::Lines(raw),
            }
            .into(),
        ))
    }

    fn total_bytes(&self) -> Option<u64> {
        None
    }

    fn bytes_read(&self) -> u64 {
        0
    }
}
