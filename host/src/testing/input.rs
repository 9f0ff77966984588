//! Points as test input: output documents read back into a batch of points.
//!
//! This lets a case test a module further down the chain (geofence, speed) on points
//! written by hand, in the same format the pipeline writes, without a parser in front.

use anyhow::Result;
use waystream_contract::document::read;

use crate::engine::bindings::{Batch, Records, Trajectory};

/// One batch of points from NDJSON output documents (blank lines skipped), in file order.
pub fn points_from_documents(text: &str) -> Result<Batch> {
    let read = read::points_from_documents(text).map_err(anyhow::Error::msg)?;
    Ok(Batch {
        trajectories: read
            .trajectories
            .into_iter()
            .map(|(user, id)| Trajectory { user, id })
            .collect(),
        zone_sets: read.zone_sets,
        records: Records::Points(read.points.into_iter().collect()),
    })
}
