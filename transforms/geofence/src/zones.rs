//! The zones and their spatial index.

use geo::coordinate_position::{CoordPos, CoordinatePosition};
use geo::{Coord, MultiPolygon};
use geojson::GeoJson;
use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};
use waystream_guest::flags;

/// A sorted set of zone ids. Ids are assigned in name order, so a sorted id list is also a
/// name-sorted list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ZoneSet(Vec<u32>);

impl ZoneSet {
    /// The set of no zones.
    pub fn empty() -> Self {
        ZoneSet(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The enter/exit flags for a point in `self` after a point in `previous` (none for the
    /// first point of a trajectory).
    pub fn transition_flags(&self, previous: Option<&ZoneSet>) -> u32 {
        let empty = ZoneSet::empty();
        let previous = previous.unwrap_or(&empty);
        let mut out = 0;
        if self.0.iter().any(|z| previous.0.binary_search(z).is_err()) {
            out |= flags::ZONE_ENTER;
        }
        if previous.0.iter().any(|z| self.0.binary_search(z).is_err()) {
            out |= flags::ZONE_EXIT;
        }
        out
    }
}

struct Zone {
    name: String,
    shape: MultiPolygon<f64>,
}

/// The zones of a config, with an R-tree over their bounding boxes.
pub struct ZoneIndex {
    /// Sorted by name: a zone's id is its position here.
    zones: Vec<Zone>,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
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
        let boxes = zones
            .iter()
            .enumerate()
            .filter_map(|(id, zone)| {
                let rect = geo::BoundingRect::bounding_rect(&zone.shape)?;
                let aabb =
                    Rectangle::from_corners(rect.min().x_y().into(), rect.max().x_y().into());
                Some(GeomWithData::new(aabb, id as u32))
            })
            .collect();
        Ok(ZoneIndex {
            zones,
            tree: RTree::bulk_load(boxes),
        })
    }

    /// Number of zones.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Fills `out` with the zones containing (lon, lat), edges included.
    pub fn zones_at(&self, lon: f64, lat: f64, out: &mut ZoneSet) {
        out.0.clear();
        let coord = Coord { x: lon, y: lat };
        let envelope = AABB::from_point([lon, lat]);
        for candidate in self.tree.locate_in_envelope_intersecting(&envelope) {
            let id = candidate.data;
            // Not `MultiPolygon::intersects`: it first computes the zone's bounding box, a
            // walk over every vertex per query, which the R-tree has already checked.
            let inside = self.zones[id as usize]
                .shape
                .iter()
                .any(|polygon| polygon.coordinate_position(&coord) != CoordPos::Outside);
            if inside {
                out.0.push(id);
            }
        }
        out.0.sort_unstable();
    }

    /// The names of a set's zones, sorted.
    pub fn names_of(&self, set: &ZoneSet) -> Vec<String> {
        set.0
            .iter()
            .map(|&id| self.zones[id as usize].name.clone())
            .collect()
    }

    /// The set of the named zones that this index knows (others are dropped).
    pub fn set_of_names(&self, names: &[String]) -> ZoneSet {
        let mut ids: Vec<u32> = names
            .iter()
            .filter_map(|n| self.zones.binary_search_by(|z| z.name.as_str().cmp(n)).ok())
            .map(|id| id as u32)
            .collect();
        ids.sort_unstable();
        ZoneSet(ids)
    }
}
