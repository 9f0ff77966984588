//! `geofence`: which zones each point is in, and when a trajectory enters or leaves one.
//!
//! Zones are GeoJSON `Polygon` or `MultiPolygon` features given in the config; each needs a
//! name in `properties.name` (or the property named by `name_property`). Holes are
//! respected, and a point exactly on a zone's edge counts as inside. A grid over the zones
//! (see [`grid`]) answers most points with one lookup and tests the rest against the few
//! zones whose edges are near, so the cost per point barely depends on the number of zones
//! and thousands of zones stay fast.
//!
//! Each point gets the sorted names of its zones (through the batch's `zone-sets` table,
//! so the names cross the Wasm boundary once per batch, not once per point), plus the
//! `zone-enter` / `zone-exit` flags whenever its trajectory's zone set changes. The first
//! point of a trajectory "enters" the zones it is in.
//!
//! Config (JSON):
//!
//! ```json
//! { "zones": { "type": "FeatureCollection", "features": [ ... ] }, "name_property": "name" }
//! ```
//!
//! The host's pipeline config usually fills `zones` from a file with
//! `config_files = { zones = "zones.geojson" }`.

mod grid;
mod zones;

use std::collections::HashMap;

use serde::Deserialize;
use waystream_guest::{Batch, NO_ZONES, Output, PointColumns, Records, Transform, flags, state};

pub use zones::{SetId, ZoneIndex, ZoneSet};

#[derive(Deserialize)]
struct Config {
    zones: serde_json::Value,
    #[serde(default = "default_name_property")]
    name_property: String,
}

fn default_name_property() -> String {
    "name".into()
}

/// The geofence transform.
pub struct Geofence {
    index: ZoneIndex,
    /// The zone set of the last point seen per (user, trajectory).
    last: HashMap<(String, String), SetId>,
    /// The batch's zone-set table, reused from batch to batch.
    table: BatchTable,
}

/// State handed to the next version: the zone *names* of each trajectory's last point, so
/// a version with other zones can use it.
type Snapshot = Vec<(String, String, Vec<String>)>;

const SNAPSHOT_VERSION: u32 = 1;

impl Transform for Geofence {
    fn init(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config)
            .map_err(|e| format!("geofence config: {e} (expected {{\"zones\": <GeoJSON>}})"))?;
        let index = ZoneIndex::from_geojson(config.zones, &config.name_property)?;
        waystream_guest::info!("geofence: {} zones loaded", index.len());
        Ok(Geofence {
            index,
            last: HashMap::new(),
            table: BatchTable::default(),
        })
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        let Records::Points(mut points) = batch.records else {
            return Err("geofence needs points; put a parser such as parse-plt before it".into());
        };
        // Checked before any state is taken out, so a refused batch leaves the state (and
        // the batch zone table) as it was.
        points.check(batch.trajectories.len())?;
        // Resolve each trajectory's state once per batch, not once per point.
        let mut states: Vec<Option<SetId>> = batch
            .trajectories
            .iter()
            .map(|t| self.last.remove(&(t.user.clone(), t.id.clone())))
            .collect();
        self.fence(&mut points, &mut states);
        let zone_sets = self.table.finish(&self.index);
        for (t, state) in batch.trajectories.into_iter().zip(states) {
            if let Some(state) = state {
                self.last.insert((t.user, t.id), state);
            }
        }
        Ok(Output {
            points,
            zone_sets: Some(zone_sets),
            rejected: Vec::new(),
        })
    }

    fn snapshot(&self) -> Vec<u8> {
        let last: Snapshot = self
            .last
            .iter()
            .map(|((user, id), set)| (user.clone(), id.clone(), self.index.names_of(*set)))
            .collect();
        state::save(SNAPSHOT_VERSION, &last)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some(last) = state::load::<Snapshot>("geofence", SNAPSHOT_VERSION, bytes)? else {
            return Ok(());
        };
        self.last = last
            .into_iter()
            .map(|(user, id, names)| ((user, id), self.index.set_of_names(&names)))
            .collect();
        Ok(())
    }
}

waystream_guest::export_transform!(Geofence);

impl Geofence {
    /// Sets the zones and the enter/exit flags of every point, with `states` (per entry of
    /// the batch's trajectory table) as the previous point's zones, and fills the batch's
    /// zone-set table. The points have passed [`PointColumns::check`] against `states`.
    fn fence(&mut self, points: &mut PointColumns, states: &mut [Option<SetId>]) {
        // Straight on the columns this transform reads and writes (a row view would copy
        // all eleven fields in and out per point).
        let n = points.len();
        let (trajectory, lon, lat) = (&points.trajectory[..n], &points.lon[..n], &points.lat[..n]);
        let (zones, point_flags) = (&mut points.zones[..n], &mut points.flags[..n]);
        for i in 0..n {
            let state = &mut states[trajectory[i] as usize];
            let set = self
                .index
                .set_at(lon[i], lat[i], state.unwrap_or(SetId::EMPTY));
            point_flags[i] = (point_flags[i] & !(flags::ZONE_ENTER | flags::ZONE_EXIT))
                | self.index.transition_flags(set, *state);
            zones[i] = self.table.entry(set).unwrap_or(NO_ZONES);
            *state = Some(set);
        }
    }
}

/// The batch's zone-set table under construction: each set its points are in, once, in
/// the order they first appear.
#[derive(Default)]
struct BatchTable {
    /// Per interned set id: its entry in this batch's table, or `u32::MAX`.
    entries: Vec<u32>,
    /// The table: interned set ids.
    sets: Vec<SetId>,
}

impl BatchTable {
    /// The table entry of `set`, or none for the empty set.
    #[inline]
    fn entry(&mut self, set: SetId) -> Option<u32> {
        if set == SetId::EMPTY {
            return None;
        }
        let id = set.0 as usize;
        if id >= self.entries.len() {
            self.entries.resize(id + 1, u32::MAX);
        }
        if self.entries[id] == u32::MAX {
            self.entries[id] = self.sets.len() as u32;
            self.sets.push(set);
        }
        Some(self.entries[id])
    }

    /// The table's zone names, and an empty table for the next batch.
    fn finish(&mut self, index: &ZoneIndex) -> Vec<Vec<String>> {
        for set in &self.sets {
            self.entries[set.0 as usize] = u32::MAX;
        }
        self.sets.drain(..).map(|set| index.names_of(set)).collect()
    }
}

#[cfg(test)]
mod tests;
