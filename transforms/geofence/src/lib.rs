//! `geofence`: which zones each point is in, and when a trajectory enters or leaves one.
//!
//! Zones are GeoJSON `Polygon` or `MultiPolygon` features given in the config; each needs a
//! name in `properties.name` (or the property named by `name_property`). Holes are
//! respected, and a point exactly on a zone's edge counts as inside. An R-tree over the
//! zones' bounding boxes keeps the cost per point nearly independent of the number of
//! zones, so thousands of zones stay fast.
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

mod zones;

use std::collections::HashMap;

use serde::Deserialize;
use waystream_guest::{Batch, Output, Records, Transform, flags, state};

pub use zones::{ZoneIndex, ZoneSet};

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
    last: HashMap<(String, String), ZoneSet>,
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
        })
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        let Records::Points(mut points) = batch.records else {
            return Err("geofence needs points; put a parser such as parse-plt before it".into());
        };
        // Resolve each trajectory's state once per batch, not once per point.
        let mut states: Vec<Option<ZoneSet>> = batch
            .trajectories
            .iter()
            .map(|t| self.last.remove(&(t.user.clone(), t.id.clone())))
            .collect();

        let mut table = SetTable::default();
        let mut scratch = ZoneSet::empty();
        points.try_update(|point| {
            let Some(state) = states.get_mut(point.trajectory as usize) else {
                return Err(format!(
                    "point refers to trajectory {} not in the batch",
                    point.trajectory
                ));
            };
            self.index.zones_at(point.lon, point.lat, &mut scratch);
            point.flags &= !(flags::ZONE_ENTER | flags::ZONE_EXIT);
            point.flags |= scratch.transition_flags(state.as_ref());
            point.zones = table.intern(&scratch);
            match state {
                Some(previous) => std::mem::swap(previous, &mut scratch),
                None => *state = Some(scratch.clone()),
            }
            Ok(())
        })?;

        for (t, state) in batch.trajectories.into_iter().zip(states) {
            if let Some(state) = state {
                self.last.insert((t.user, t.id), state);
            }
        }
        Ok(Output {
            points,
            zone_sets: Some(table.into_names(&self.index)),
            rejected: Vec::new(),
        })
    }

    fn snapshot(&self) -> Vec<u8> {
        let last: Snapshot = self
            .last
            .iter()
            .map(|((user, id), set)| (user.clone(), id.clone(), self.index.names_of(set)))
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

/// The batch's zone-set table under construction: each distinct set once.
#[derive(Default)]
struct SetTable {
    sets: Vec<ZoneSet>,
    lookup: HashMap<ZoneSet, u32>,
    last_used: Option<u32>,
}

impl SetTable {
    /// The table index of `set`, or none for the empty set.
    fn intern(&mut self, set: &ZoneSet) -> Option<u32> {
        if set.is_empty() {
            return None;
        }
        // Consecutive points are usually in the same zones: check the last entry first.
        if let Some(last) = self.last_used
            && self.sets[last as usize] == *set
        {
            return Some(last);
        }
        let index = match self.lookup.get(set) {
            Some(&index) => index,
            None => {
                let index = self.sets.len() as u32;
                self.sets.push(set.clone());
                self.lookup.insert(set.clone(), index);
                index
            }
        };
        self.last_used = Some(index);
        Some(index)
    }

    fn into_names(self, index: &ZoneIndex) -> Vec<Vec<String>> {
        self.sets.iter().map(|set| index.names_of(set)).collect()
    }
}

#[cfg(test)]
mod tests;
