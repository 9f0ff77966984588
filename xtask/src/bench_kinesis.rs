//! `cargo xtask bench --kinesis`: what checkpointing transform state with the shard
//! (`[source] state_bucket`) costs end to end on the Kinesis path.
//!
//! Starts the local servers the tests use (kinesis-mock, moto server) and runs
//! `benches/src/bin/kinesis_state.rs` against them: one stream filled with synthetic
//! trajectories, read from `TRIM_HORIZON` to the last document by one host at a time, with
//! state checkpointing off and on at several intervals, runs alternating. The throughput is
//! kinesis-mock's as much as waystream's; the difference between the rows is the cost.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::local_aws::LocalAws;
use crate::output;

/// The report's section; `smoke`: a tiny stream, one run each (figures mean nothing).
pub fn measure(root: &Path, kinesis_state: &Path, smoke: bool) -> Result<String> {
    let servers = LocalAws::start(root)?;
    let mut command = Command::new(kinesis_state);
    servers.configure(&mut command);
    command.env("WAYSTREAM_MODULES", root.join("target/modules"));
    if smoke {
        command.args(["--trajectories", "8", "--points", "50", "--runs", "1"]);
    }
    let table = output(&mut command)?;
    Ok(format!(
        "\n## State checkpointed with the shard (`--kinesis`)\n\n\
         `benches/src/bin/kinesis_state.rs`, against the local servers of the tests: {table}"
    ))
}
