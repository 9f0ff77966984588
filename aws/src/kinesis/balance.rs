//! Which leases a worker takes: KCL's rules, as pure functions of one round's view.
//!
//! * Only **eligible** leases count: the shard is not finished, and every parent shard
//!   is (its lease says `SHARD_END`, or it is gone from both the table and the shard
//!   list, trimmed away). A child thus starts after all of its parents' records were
//!   processed, which keeps each partition key in order across a split or a merge.
//! * The **workers** are the owners of unexpired eligible leases, plus this one; each
//!   should hold `ceil(leases / workers)`.
//! * Below that target, a worker takes **expired** leases first (the owner stopped
//!   renewing, or there is none); with none left it **steals one** lease per round from
//!   the most loaded worker, if that one holds more than the target. N workers on a
//!   stream thus converge on about shards/N leases each.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::leases::Lease;
use super::position::Checkpoint;

/// An eligible lease as this worker sees it this round.
pub struct Seen<'a> {
    pub lease: &'a Lease,
    /// Nobody renews it: unowned, or its counter has not moved for the failover time.
    pub expired: bool,
    /// This worker holds it.
    pub mine: bool,
}

/// The leases whose shards may be read now (see the module docs).
pub fn eligible<'a>(leases: &'a [Lease], known_shards: &HashSet<String>) -> Vec<&'a Lease> {
    let by_id: HashMap<&str, &Lease> = leases.iter().map(|l| (l.shard_id.as_str(), l)).collect();
    let finished = |shard: &String| match by_id.get(shard.as_str()) {
        Some(parent) => parent.checkpoint == Checkpoint::ShardEnd,
        None => !known_shards.contains(shard),
    };
    leases
        .iter()
        .filter(|l| l.checkpoint != Checkpoint::ShardEnd && l.parents.iter().all(finished))
        .collect()
}

/// The leases to take this round: expired ones up to the target, else at most one
/// stolen from the most loaded worker.
pub fn choose<'a>(seen: &[Seen<'a>]) -> Vec<&'a Lease> {
    let mine = seen.iter().filter(|s| s.mine).count();
    // Ordered, so that every worker breaks ties the same way.
    let mut load: BTreeMap<&str, Vec<&Lease>> = BTreeMap::new();
    for s in seen.iter().filter(|s| !s.mine && !s.expired) {
        if let Some(owner) = s.lease.owner.as_deref() {
            load.entry(owner).or_default().push(s.lease);
        }
    }
    let target = seen.len().div_ceil(load.len() + 1);
    if mine >= target {
        return Vec::new();
    }
    let expired: Vec<&Lease> = seen
        .iter()
        .filter(|s| !s.mine && s.expired)
        .map(|s| s.lease)
        .take(target - mine)
        .collect();
    if !expired.is_empty() {
        return expired;
    }
    let most_loaded = load.values().rev().max_by_key(|theirs| theirs.len());
    match most_loaded {
        Some(theirs) if theirs.len() > target => vec![theirs[0]],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(shard: &str, owner: Option<&str>, checkpoint: Checkpoint, parents: &[&str]) -> Lease {
        Lease {
            shard_id: shard.into(),
            owner: owner.map(str::to_string),
            counter: 1,
            checkpoint,
            owner_switches: 0,
            parents: parents.iter().map(|p| p.to_string()).collect(),
            state: None,
        }
    }

    /// `(shard, owner)` pairs seen by worker `me`; owners in `dead` have expired.
    fn choose_for(me: &str, owners: &[(&str, Option<&str>)], dead: &[&str]) -> Vec<String> {
        let leases: Vec<Lease> = owners
            .iter()
            .map(|(s, o)| lease(s, *o, Checkpoint::TrimHorizon, &[]))
            .collect();
        let seen: Vec<Seen> = leases
            .iter()
            .map(|l| Seen {
                lease: l,
                expired: l.owner.as_deref().is_none_or(|o| dead.contains(&o)),
                mine: l.owner.as_deref() == Some(me),
            })
            .collect();
        choose(&seen).iter().map(|l| l.shard_id.clone()).collect()
    }

    #[test]
    fn a_lone_worker_takes_every_free_lease() {
        let free = [("s0", None), ("s1", None), ("s2", None), ("s3", None)];
        assert_eq!(choose_for("a", &free, &[]).len(), 4);
    }

    #[test]
    fn a_new_worker_steals_one_lease_per_round_until_balanced() {
        let all_a = [
            ("s0", Some("a")),
            ("s1", Some("a")),
            ("s2", Some("a")),
            ("s3", Some("a")),
        ];
        assert_eq!(choose_for("b", &all_a, &[]), ["s0"]);
        let three_one = [
            ("s0", Some("b")),
            ("s1", Some("a")),
            ("s2", Some("a")),
            ("s3", Some("a")),
        ];
        assert_eq!(choose_for("b", &three_one, &[]), ["s1"]);
        let balanced = [
            ("s0", Some("b")),
            ("s1", Some("b")),
            ("s2", Some("a")),
            ("s3", Some("a")),
        ];
        assert!(choose_for("b", &balanced, &[]).is_empty());
        assert!(
            choose_for("a", &balanced, &[]).is_empty(),
            "an over-target worker does not give up leases itself"
        );
    }

    #[test]
    fn expired_leases_go_first_and_dead_workers_do_not_count() {
        let leases = [
            ("s0", Some("a")),
            ("s1", Some("a")),
            ("s2", Some("dead")),
            ("s3", Some("dead")),
        ];
        // Workers: a and b, target 2: b takes both of the dead worker's leases.
        assert_eq!(choose_for("b", &leases, &["dead"]), ["s2", "s3"]);
        // Odd counts: 5 leases over 2 workers, a (with 3) is at the target already.
        let five = [
            ("s0", Some("a")),
            ("s1", Some("a")),
            ("s2", Some("a")),
            ("s3", Some("b")),
            ("s4", Some("b")),
        ];
        assert!(choose_for("b", &five, &[]).is_empty());
    }

    #[test]
    fn children_wait_for_every_parent() {
        let known: HashSet<String> = ["p1", "p2", "c", "m"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let leases = vec![
            lease("p1", None, Checkpoint::ShardEnd, &[]),
            lease("p2", Some("a"), Checkpoint::TrimHorizon, &[]),
            lease("c", None, Checkpoint::TrimHorizon, &["p1"]),
            lease("m", None, Checkpoint::TrimHorizon, &["p1", "p2"]),
            lease("orphan", None, Checkpoint::TrimHorizon, &["trimmed-away"]),
        ];
        let ids: Vec<&str> = eligible(&leases, &known)
            .iter()
            .map(|l| l.shard_id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["p2", "c", "orphan"],
            "finished p1 and m (p2 still open) are not eligible"
        );
    }
}
