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

use serde::Deserialize;
use waystream_guest::keyed::{KeyState, Keyed, KeyedState};
use waystream_guest::{
    Batch, NO_ZONES, Output, PointColumns, Records, Trajectory, Transform, flags,
};

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
    /// The zone set of the last point seen per trajectory. Stored (snapshots, exported
    /// keys) as the zone *names*, so a version with other zones can use it.
    last: Keyed<SetId>,
    /// The batch's zone-set table, reused from batch to batch.
    table: BatchTable,
}

/// The layout of a trajectory's state (and of the snapshot, the same as before keyed state).
const STATE_VERSION: u32 = 1;

impl Transform for Geofence {
    fn init(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config)
            .map_err(|e| format!("geofence config: {e} (expected {{\"zones\": <GeoJSON>}})"))?;
        let index = ZoneIndex::from_geojson(config.zones, &config.name_property)?;
        waystream_guest::info!("geofence: {} zones loaded", index.len());
        Ok(Geofence {
            index,
            last: Keyed::new("geofence", STATE_VERSION),
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
            .map(|t| self.last.take(t))
            .collect();
        self.fence(&mut points, &mut states);
        let zone_sets = self.table.finish(&self.index);
        for (t, state) in batch.trajectories.into_iter().zip(states) {
            if let Some(state) = state {
                self.last.insert_owned(t, state);
            }
        }
        Ok(Output {
            points,
            zone_sets: Some(zone_sets),
            rejected: Vec::new(),
        })
    }

    fn snapshot(&self) -> Vec<u8> {
        self.last.snapshot_with(|set| self.index.names_of(*set))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let index = &mut self.index;
        self.last
            .restore_with(bytes, |names: Vec<String>| index.set_of_names(&names))
    }

    fn keyed(&mut self) -> Option<&mut dyn KeyedState> {
        Some(self)
    }
}

/// Each trajectory's state leaves and enters as its zone names.
impl KeyedState for Geofence {
    fn export(&self, keys: &[Trajectory]) -> Vec<KeyState> {
        self.last.export_with(keys, |set| self.index.names_of(*set))
    }

    fn import(&mut self, states: Vec<KeyState>) -> Result<(), String> {
        let index = &mut self.index;
        self.last
            .import_with(states, |names: Vec<String>| index.set_of_names(&names))
    }

    fn drop_keys(&mut self, keys: &[Trajectory]) {
        self.last.drop_keys(keys)
    }

    fn keys(&self) -> Vec<Trajectory> {
        self.last.keys()
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
