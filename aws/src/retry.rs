//! One retry policy for every AWS call waystream makes.
//!
//! Every retry waits per [`Backoff`]: exponential, with jitter (half to all of
//! `base × 2^(attempt-1)`, at most `max`), so hosts that failed together do not retry
//! together. When each kind of call gives up is stated once, here, as a [`Policy`]:
//!
//! | kind of call | policy | gives up |
//! |---|---|---|
//! | a sink's put (Firehose records, S3 dead letters) | [`SINK_PUT`] | never while the pipeline runs: the sink holds the pipeline back (its records are not acknowledged, so checkpoints wait); once the pipeline is stopping, [`STOP_GRACE`] after the stop |
//! | polling a shard (GetRecords) and a worker's round (list shards, renew and take leases) | [`SHARD_POLL`] | never: throttling is expected, and a lease that cannot be renewed is lost by its own rules |
//! | getting a shard iterator | [`SHARD_ITERATOR`] | after 8 failures in a row: the shard's reader ends and the lease is taken again on a later round |
//! | writing a checkpoint (DynamoDB) | [`CHECKPOINT`] | a running source never (it retries the newest checkpoint of each shard); a closing one after 8 failures in a row (those shards are read again from their previous checkpoint) |
//! | putting records into a stream (ingest, replay) | [`STREAM_PUT`] | after 20 calls in a row that put nothing |
//!
//! A [`Retrier`] counts the attempts of one operation and says how long to wait before
//! the next one, or that it is time to give up; it works for blocking and async loops
//! alike (the caller sleeps).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait; each further one doubles it.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `attempt` (from 1): half to all of
    /// `base × 2^(attempt-1)`, at most `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        ceiling.mul_f64(rand::random_range(0.5..=1.0))
    }
}

/// When a kind of call stops retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Never while the process runs (the caller holds back what depends on it).
    Never,
    /// After this many failed attempts in a row.
    After(u32),
}

/// How one kind of call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long to wait between attempts.
    pub backoff: Backoff,
    /// When to stop.
    pub give_up: GiveUp,
}

/// How long a retry loop goes on once the process is stopping: long enough for a call
/// that was about to succeed, short enough that a stop never waits on an outage.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// A sink's put: never given up while the pipeline runs (back-pressure).
pub const SINK_PUT: Policy = Policy {
    backoff: Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(10),
    },
    give_up: GiveUp::Never,
};

/// Polling a shard, and a Kinesis worker's rounds.
pub const SHARD_POLL: Policy = Policy {
    backoff: Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    },
    give_up: GiveUp::Never,
};

/// Getting a shard iterator.
pub const SHARD_ITERATOR: Policy = Policy {
    backoff: Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    },
    give_up: GiveUp::After(8),
};

/// Writing a checkpoint (the give-up applies to a closing source; see the table above).
pub const CHECKPOINT: Policy = Policy {
    backoff: Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    },
    give_up: GiveUp::After(8),
};

/// Putting records into a stream (ingest Lambda, replay).
pub const STREAM_PUT: Policy = Policy {
    backoff: Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    },
    give_up: GiveUp::After(20),
};

/// The process-wide "stop" a retry loop listens to: set by SIGTERM/SIGINT through the
/// pipeline's stop flag.
pub type StopFlag = Arc<AtomicBool>;

/// The attempts of one operation under a [`Policy`].
#[derive(Debug)]
pub struct Retrier {
    policy: Policy,
    stop: Option<StopFlag>,
    failures: u32,
    /// When the retrier first saw the stop flag set.
    stopping_since: Option<Instant>,
}

impl Retrier {
    /// A retrier for one operation; `stop`, when given, ends retrying [`STOP_GRACE`]
    /// after it is set.
    pub fn new(policy: Policy, stop: Option<StopFlag>) -> Self {
        Retrier {
            policy,
            stop,
            failures: 0,
            stopping_since: None,
        }
    }

    /// Failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts a failure: the wait before the next attempt, or `None` to give up.
    pub fn failed(&mut self) -> Option<Duration> {
        self.failures += 1;
        if let GiveUp::After(limit) = self.policy.give_up
            && self.failures >= limit
        {
            return None;
        }
        let wait = self.policy.backoff.delay(self.failures);
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            let since = *self.stopping_since.get_or_insert_with(Instant::now);
            let left = STOP_GRACE.saturating_sub(since.elapsed());
            if left.is_zero() {
                return None;
            }
            return Some(wait.min(left));
        }
        Some(wait)
    }

    /// Starts counting again after a success (for a loop that goes on, like a reader).
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_with_jitter_up_to_the_maximum() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..=10 {
            let ceiling = Duration::from_millis(100 << (attempt - 1)).min(Duration::from_secs(1));
            for _ in 0..20 {
                let wait = backoff.delay(attempt);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "{attempt}: {wait:?}"
                );
            }
        }
    }

    #[test]
    fn a_limited_policy_gives_up_after_its_attempts() {
        let mut retrier = Retrier::new(CHECKPOINT, None);
        let waits = (0..10).map_while(|_| retrier.failed()).count();
        assert_eq!(waits, 7, "the 8th failure gives up");
    }

    #[test]
    fn a_sink_retries_forever_until_the_process_stops() {
        let stop = StopFlag::default();
        let mut retrier = Retrier::new(SINK_PUT, Some(stop.clone()));
        assert!((0..100).all(|_| retrier.failed().is_some()));
        stop.store(true, Ordering::Relaxed);
        // Within the grace the waits are cut to what is left of it, then it gives up.
        let started = Instant::now();
        while let Some(wait) = retrier.failed() {
            assert!(wait <= STOP_GRACE);
            std::thread::sleep(wait);
        }
        let took = started.elapsed();
        assert!(
            took >= STOP_GRACE && took < STOP_GRACE + Duration::from_secs(1),
            "{took:?}"
        );
    }
}
