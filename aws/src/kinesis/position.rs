//! Positions in a shard, and checkpoints as the lease table stores them.

use std::cmp::Ordering;
use std::sync::Arc;

use anyhow::Result;

/// Where a user record sits in its shard: KCL's "extended sequence number", the Kinesis
/// record's sequence number plus the user record's index in a KPL aggregate (0 for a
/// plain record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// A decimal string of up to 128 digits: compared by length, then digit by digit.
    pub sequence: Arc<str>,
    /// The sub-sequence number: the user record's index in a KPL aggregate (0 for a plain record).
    pub sub: u64,
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (
            self.sequence.trim_start_matches('0'),
            other.sequence.trim_start_matches('0'),
        );
        a.len()
            .cmp(&b.len())
            .then_with(|| a.cmp(b))
            .then(self.sub.cmp(&other.sub))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.sequence, self.sub)
    }
}

/// A lease's `checkpoint`: a position, or where to start / that the shard is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    /// From the oldest record in the shard.
    TrimHorizon,
    /// From records put after the iterator was made.
    Latest,
    /// From records put at or after the configured `starting_timestamp`.
    AtTimestamp,
    /// Every record of the (closed) shard was processed.
    ShardEnd,
    /// Every record up to and including this one was processed.
    At(Position),
}

impl Checkpoint {
    /// The `checkpoint` and `checkpointSubSequenceNumber` attributes.
    pub fn to_attributes(&self) -> (&str, u64) {
        match self {
            Checkpoint::TrimHorizon => ("TRIM_HORIZON", 0),
            Checkpoint::Latest => ("LATEST", 0),
            Checkpoint::AtTimestamp => ("AT_TIMESTAMP", 0),
            Checkpoint::ShardEnd => ("SHARD_END", 0),
            Checkpoint::At(p) => (&p.sequence, p.sub),
        }
    }

    /// Reads the attributes back.
    pub fn from_attributes(checkpoint: &str, sub: u64) -> Result<Self> {
        Ok(match checkpoint {
            "TRIM_HORIZON" => Checkpoint::TrimHorizon,
            "LATEST" => Checkpoint::Latest,
            "AT_TIMESTAMP" => Checkpoint::AtTimestamp,
            "SHARD_END" => Checkpoint::ShardEnd,
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Checkpoint::At(Position {
                    sequence: digits.into(),
                    sub,
                })
            }
            other => anyhow::bail!(
                "checkpoint {other:?} is neither a sequence number nor a KCL sentinel"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sequence: &str, sub: u64) -> Position {
        Position {
            sequence: sequence.into(),
            sub,
        }
    }

    #[test]
    fn positions_order_numerically_then_by_sub_sequence() {
        assert!(at("9", 5) < at("10", 0));
        assert!(
            at(
                "49590338271490256608559692538361571095921575989136588898",
                0
            ) < at(
                "49590338271490256608559692538361571095921575989136588899",
                0
            )
        );
        assert!(at("12", 1) < at("12", 2));
        assert_eq!(at("012", 3).cmp(&at("12", 3)), Ordering::Equal);
    }

    #[test]
    fn checkpoints_round_trip_through_the_attributes() {
        for checkpoint in [
            Checkpoint::TrimHorizon,
            Checkpoint::Latest,
            Checkpoint::AtTimestamp,
            Checkpoint::ShardEnd,
            Checkpoint::At(at("4959", 7)),
        ] {
            let (sequence, sub) = checkpoint.to_attributes();
            assert_eq!(
                Checkpoint::from_attributes(sequence, sub).unwrap(),
                checkpoint
            );
        }
        assert!(Checkpoint::from_attributes("12a", 0).is_err());
    }
}
