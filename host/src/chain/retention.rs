//! Bounded state: which trajectories the chain's modules may forget.
//!
//! A module that keeps state per trajectory (`speed`'s last point, `geofence`'s zones)
//! would otherwise grow with every trajectory it ever saw, and a host runs for weeks. The
//! chain remembers when it last handed each trajectory to its modules and, between batches,
//! makes every module drop the trajectories ([`Chain::drop_keys`](super::Chain::drop_keys))
//! that have been idle longer than `[state] idle_secs`, and the least recently seen ones
//! beyond `[state] max_trajectories`. A dropped trajectory that comes back starts fresh, as
//! on a new host: `speed` has no previous point for its first one again, `geofence` sees
//! it enter its zones again. So pick an idle time longer than the pauses within one trip.
//!
//! What it costs: one hash lookup per trajectory per batch (no allocation for a
//! trajectory already tracked) and, now and then, a sweep over the tracked trajectories:
//! every `idle_secs / 8` (at most every minute) for idle ones, and each time the count
//! passes the bound by 1/16 for the bound, which brings it back to the bound. So the count
//! of trajectories held stays under `max_trajectories × 17/16`.
//!
//! Only modules with keyed state (contract 0.3.1, e.g. the Rust SDK's `Keyed` map) can
//! forget single trajectories; a module built against 0.3.0 keeps what it has.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::bindings::Trajectory;

/// `[state]`: how much per-trajectory state the modules keep.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Drop a trajectory not seen for this many seconds; 0 = never.
    #[serde(default = "default_idle_secs")]
    pub idle_secs: u64,
    /// Drop the least recently seen trajectories beyond this many; 0 = no bound.
    #[serde(default = "default_max_trajectories")]
    pub max_trajectories: usize,
}

fn default_idle_secs() -> u64 {
    3600
}

fn default_max_trajectories() -> usize {
    100_000
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            idle_secs: default_idle_secs(),
            max_trajectories: default_max_trajectories(),
        }
    }
}

/// Counts of what [`Retention`] tracked and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionStats {
    /// Trajectories tracked now.
    pub tracked: usize,
    /// Dropped because they were idle.
    pub dropped_idle: u64,
    /// Dropped because of the bound.
    pub dropped_bound: u64,
}

/// When each trajectory was last seen, and which are due to be dropped.
pub struct Retention {
    idle: Option<Duration>,
    max: Option<usize>,
    /// When each trajectory was last seen, keyed by its user's bytes, 0xFF (a byte UTF-8
    /// never has), its id's bytes: one allocation per trajectory, and a lookup through
    /// `key` (reused) allocates nothing.
    seen: HashMap<Box<[u8]>, Instant>,
    key: Vec<u8>,
    next_idle_sweep: Instant,
    dropped_idle: u64,
    dropped_bound: u64,
}

impl Retention {
    /// A tracker for `config`, or `None` when it bounds nothing.
    pub fn new(config: &StateConfig, now: Instant) -> Option<Self> {
        let idle = (config.idle_secs > 0).then(|| Duration::from_secs(config.idle_secs));
        let max = (config.max_trajectories > 0).then_some(config.max_trajectories);
        (idle.is_some() || max.is_some()).then(|| Retention {
            idle,
            max,
            seen: HashMap::new(),
            key: Vec::new(),
            next_idle_sweep: now + sweep_every(idle),
            dropped_idle: 0,
            dropped_bound: 0,
        })
    }

    /// The chain handed `trajectories` (a batch's table) to its modules at `now`.
    pub fn saw(&mut self, trajectories: &[Trajectory], now: Instant) {
        for trajectory in trajectories {
            self.key.clear();
            self.key.extend_from_slice(trajectory.user.as_bytes());
            self.key.push(SEPARATOR);
            self.key.extend_from_slice(trajectory.id.as_bytes());
            match self.seen.get_mut(self.key.as_slice()) {
                Some(at) => *at = now,
                None => {
                    self.seen.insert(self.key.as_slice().into(), now);
                }
            }
        }
    }

    /// The trajectories to drop at `now`; they are no longer tracked.
    pub fn due(&mut self, now: Instant) -> Vec<Trajectory> {
        let mut due = Vec::new();
        if let Some(idle) = self.idle
            && now >= self.next_idle_sweep
        {
            self.next_idle_sweep = now + sweep_every(self.idle);
            self.seen.retain(|key, at| {
                let keep = now.saturating_duration_since(*at) < idle;
                if !keep {
                    due.push(trajectory_of(key));
                }
                keep
            });
            self.dropped_idle += due.len() as u64;
        }
        if let Some(max) = self.max
            && self.seen.len() > max + max / 16
        {
            // The oldest `len - max` go: find the cut in O(n), not a full sort.
            let mut ages: Vec<Instant> = self.seen.values().copied().collect();
            let excess = ages.len() - max;
            let (_, cut, _) = ages.select_nth_unstable(excess - 1);
            let cut = *cut;
            // Ties at the cut may leave a few more than `max`; never fewer.
            let mut left = excess;
            self.seen.retain(|key, at| {
                let drop = left > 0 && *at <= cut;
                if drop {
                    left -= 1;
                    due.push(trajectory_of(key));
                }
                !drop
            });
            self.dropped_bound += (excess - left) as u64;
        }
        due
    }

    /// What is tracked and what was dropped so far.
    pub fn stats(&self) -> RetentionStats {
        RetentionStats {
            tracked: self.seen.len(),
            dropped_idle: self.dropped_idle,
            dropped_bound: self.dropped_bound,
        }
    }
}

/// Between a trajectory's user and id in [`Retention`]'s keys.
const SEPARATOR: u8 = 0xFF;

/// The trajectory a key of [`Retention::seen`] was made from.
fn trajectory_of(key: &[u8]) -> Trajectory {
    let split = key
        .iter()
        .position(|&b| b == SEPARATOR)
        .unwrap_or(key.len());
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Trajectory {
        user: text(&key[..split]),
        id: text(key.get(split + 1..).unwrap_or_default()),
    }
}

/// How often idle trajectories are looked for: an eighth of the idle time, between 1 s
/// and a minute.
fn sweep_every(idle: Option<Duration>) -> Duration {
    idle.map_or(Duration::MAX / 4, |idle| {
        (idle / 8).clamp(Duration::from_secs(1), Duration::from_secs(60))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trajectory(n: usize) -> Trajectory {
        Trajectory {
            user: format!("u{}", n % 7),
            id: format!("t{n}"),
        }
    }

    fn config(idle_secs: u64, max_trajectories: usize) -> StateConfig {
        StateConfig {
            idle_secs,
            max_trajectories,
        }
    }

    #[test]
    fn nothing_bounded_is_no_tracker() {
        assert!(Retention::new(&config(0, 0), Instant::now()).is_none());
        assert!(Retention::new(&config(1, 0), Instant::now()).is_some());
        assert!(Retention::new(&config(0, 1), Instant::now()).is_some());
    }

    #[test]
    fn idle_trajectories_go_after_the_idle_time_and_seen_ones_stay() {
        let start = Instant::now();
        let mut retention = Retention::new(&config(80, 0), start).unwrap();
        retention.saw(&[trajectory(1), trajectory(2)], start);
        let later = start + Duration::from_secs(50);
        retention.saw(&[trajectory(2)], later);
        assert!(retention.due(later).is_empty(), "nothing idle for 80 s yet");
        let due = retention.due(start + Duration::from_secs(81));
        assert_eq!(due, vec![trajectory(1)]);
        assert_eq!(retention.stats().tracked, 1);
        let due = retention.due(later + Duration::from_secs(81));
        assert_eq!(due, vec![trajectory(2)]);
        assert_eq!(
            retention.stats(),
            RetentionStats {
                tracked: 0,
                dropped_idle: 2,
                dropped_bound: 0
            }
        );
    }

    #[test]
    fn the_bound_drops_the_least_recently_seen_down_to_the_bound() {
        let start = Instant::now();
        let mut retention = Retention::new(&config(0, 32), start).unwrap();
        let mut dropped = Vec::new();
        for n in 0..1000 {
            let now = start + Duration::from_millis(n as u64);
            retention.saw(&[trajectory(n)], now);
            // Trajectory 0 is seen again and again: it is never the least recent.
            retention.saw(&[trajectory(0)], now);
            dropped.extend(retention.due(now));
            assert!(retention.stats().tracked <= 32 + 2, "{n}");
        }
        assert!(!dropped.contains(&trajectory(0)));
        // The least recently seen went, each once: every dropped one is older than every
        // one still held (but 0, seen all along).
        let id = |t: &Trajectory| t.id[1..].parse::<usize>().unwrap();
        let ids: Vec<usize> = dropped.iter().map(id).collect();
        let held: Vec<usize> = retention
            .seen
            .keys()
            .map(|key| id(&trajectory_of(key)))
            .collect();
        let oldest_held = held.iter().filter(|&&n| n != 0).min().unwrap();
        assert!(ids.iter().all(|n| n < oldest_held), "{ids:?} {held:?}");
        assert_eq!(ids.len() + held.len(), 1000);
        assert_eq!(retention.stats().dropped_bound, ids.len() as u64);
    }

    #[test]
    fn a_key_gives_back_its_trajectory_whatever_the_names_hold() {
        for (user, id) in [("007", "2008"), ("", ""), ("a\0b", "ü/x"), ("x", "")] {
            let start = Instant::now();
            let mut retention = Retention::new(&config(0, 1), start).unwrap();
            let trajectory = Trajectory {
                user: user.into(),
                id: id.into(),
            };
            retention.saw(std::slice::from_ref(&trajectory), start);
            let key = retention.seen.keys().next().unwrap();
            assert_eq!(trajectory_of(key), trajectory);
        }
    }

    #[test]
    fn the_same_trajectory_twice_in_a_table_is_tracked_once() {
        let start = Instant::now();
        let mut retention = Retention::new(&config(10, 0), start).unwrap();
        retention.saw(&[trajectory(3), trajectory(3)], start);
        assert_eq!(retention.stats().tracked, 1);
    }
}
