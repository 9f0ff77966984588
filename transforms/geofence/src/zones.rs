//! The zones, the sets of them a point can be in, and the index that finds a point's set.
//!
//! Zone sets are interned: the index keeps each distinct set once and hands out a
//! [`SetId`], so what happens per point (comparing a point's set with the previous point's,
//! putting it in the batch's table) compares and copies a `u32`, not a list.

use std::collections::HashMap;

use geo::MultiPolygon;
use geojson::GeoJson;
use waystream_guest::flags;

use crate::grid::{Cell, Grid};

/// A sorted set of zone ids. Ids are assigned in name order, so a sorted id list is also a
/// name-sorted list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ZoneSet(Vec<u32>);

impl ZoneSet {
    /// The set of no zones.
    pub fn empty() -> Self {
        ZoneSet(Vec::new())
    }

    /// The set of `ids`, which must be sorted and distinct.
    pub fn from_sorted(ids: Vec<u32>) -> Self {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        ZoneSet(ids)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this set holds exactly `ids`. Written out: slice equality on `u32`s becomes
    /// a byte-by-byte `memcmp` call in Wasm.
    fn is(&self, ids: &[u32]) -> bool {
        self.0.len() == ids.len() && self.0.iter().zip(ids).all(|(a, b)| a == b)
    }

    /// Whether some zone of `self` is not in `other` (both sorted).
    fn has_any_outside(&self, other: &ZoneSet) -> bool {
        self.0.iter().any(|z| other.0.binary_search(z).is_err())
    }
}

/// An interned [`ZoneSet`]: its index in the [`ZoneIndex`]'s table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SetId(pub u32);

impl SetId {
    /// The empty set, interned first.
    pub const EMPTY: SetId = SetId(0);
}

/// Every distinct zone set met so far, each once.
pub struct SetTable {
    sets: Vec<ZoneSet>,
    ids: HashMap<ZoneSet, SetId>,
}

impl Default for SetTable {
    fn default() -> Self {
        let mut table = SetTable {
            sets: Vec::new(),
            ids: HashMap::new(),
        };
        table.intern(&ZoneSet::empty());
        table
    }
}

impl SetTable {
    /// The id of `set`, adding it when it is new.
    pub fn intern(&mut self, set: &ZoneSet) -> SetId {
        if let Some(&id) = self.ids.get(set) {
            return id;
        }
        let id = SetId(self.sets.len() as u32);
        self.sets.push(set.clone());
        self.ids.insert(set.clone(), id);
        id
    }

    pub fn get(&self, id: SetId) -> &ZoneSet {
        &self.sets[id.0 as usize]
    }
}

struct Zone {
    name: String,
    shape: MultiPolygon<f64>,
}

/// The zones of a config, with a grid that finds a point's zones (see [`crate::grid`]).
pub struct ZoneIndex {
    /// Sorted by name: a zone's id is its position here.
    zones: Vec<Zone>,
    grid: Grid,
    sets: SetTable,
    /// Reused by lookups in mixed cells.
    scratch: Vec<u32>,
}

impl ZoneIndex {
    /// Builds the index from a GeoJSON document (a FeatureCollection or a single Feature).
    pub fn from_geojson(value: serde_json::Value, name_property: &str) -> Result<Self, String> {
        let features = match GeoJson::from_json_value(value).map_err(|e| format!("zones: {e}"))? {
            GeoJson::FeatureCollection(fc) => fc.features,
            GeoJson::Feature(f) => vec![f],
            GeoJson::Geometry(_) => {
                return Err("zones: a bare geometry has no name; use Features".into());
            }
        };
        let mut zones = Vec::with_capacity(features.len());
        for (i, feature) in features.into_iter().enumerate() {
            let name = feature
                .property(name_property)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("zone {i} has no string property {name_property:?}"))?
                .to_string();
            let geometry = feature
                .geometry
                .ok_or_else(|| format!("zone {name:?} has no geometry"))?;
            let shape = match geo::Geometry::<f64>::try_from(geometry)
                .map_err(|e| format!("zone {name:?}: {e}"))?
            {
                geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
                geo::Geometry::MultiPolygon(mp) => mp,
                _ => {
                    return Err(format!(
                        "zone {name:?}: only Polygon and MultiPolygon are zones"
                    ));
                }
            };
            zones.push(Zone { name, shape });
        }
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = zones.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(format!("zone name {:?} is used twice", w[0].name));
        }
        let mut sets = SetTable::default();
        let shapes: Vec<&MultiPolygon<f64>> = zones.iter().map(|z| &z.shape).collect();
        let grid = Grid::build(&shapes, &mut sets);
        Ok(ZoneIndex {
            zones,
            grid,
            sets,
            scratch: Vec::new(),
        })
    }

    /// Number of zones.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The set of zones containing (lon, lat), edges included. `likely` is a guess (the
    /// previous point's set): when it is right, a point in a mixed cell needs no table
    /// lookup.
    #[inline]
    pub fn set_at(&mut self, lon: f64, lat: f64, likely: SetId) -> SetId {
        let (settled, candidates) = match self.grid.cell(lon, lat) {
            Cell::Settled(id) => return id,
            Cell::Mixed {
                settled,
                candidates,
            } => (settled, candidates),
        };
        let zones = &self.zones;
        let inside = candidates
            .iter()
            .copied()
            .filter(|&id| Grid::contains(&zones[id as usize].shape, lon, lat));
        self.scratch.clear();
        self.scratch.extend_from_slice(settled);
        self.scratch.extend(inside);
        // Two sorted runs: sort only when the second one starts below the first's end.
        if settled
            .last()
            .zip(self.scratch.get(settled.len()))
            .is_some_and(|(a, b)| a > b)
        {
            self.scratch.sort_unstable();
        }
        if self.sets.get(likely).is(&self.scratch) {
            return likely;
        }
        self.sets
            .intern(&ZoneSet(std::mem::take(&mut self.scratch)))
    }

    /// The enter/exit flags for a point in `set` after a point in `previous` (none for the
    /// first point of a trajectory: it enters the zones it is in).
    #[inline]
    pub fn transition_flags(&self, set: SetId, previous: Option<SetId>) -> u32 {
        let previous = previous.unwrap_or(SetId::EMPTY);
        if set == previous {
            return 0;
        }
        let (now, before) = (self.sets.get(set), self.sets.get(previous));
        let mut out = 0;
        if now.has_any_outside(before) {
            out |= flags::ZONE_ENTER;
        }
        if before.has_any_outside(now) {
            out |= flags::ZONE_EXIT;
        }
        out
    }

    /// The names of a set's zones, sorted.
    pub fn names_of(&self, set: SetId) -> Vec<String> {
        self.sets
            .get(set)
            .0
            .iter()
            .map(|&id| self.zones[id as usize].name.clone())
            .collect()
    }

    /// The set of the named zones that this index knows (others are dropped).
    pub fn set_of_names(&mut self, names: &[String]) -> SetId {
        let mut ids: Vec<u32> = names
            .iter()
            .filter_map(|n| self.zones.binary_search_by(|z| z.name.as_str().cmp(n)).ok())
            .map(|id| id as u32)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        self.sets.intern(&ZoneSet(ids))
    }
}
