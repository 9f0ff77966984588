//! Output documents read back into points: for tests, and for `waystream test` cases
//! that feed a module further down the chain points written by hand, in the format the
//! pipeline writes.

use std::collections::HashMap;

use serde::Deserialize;

use super::time::parse_rfc3339;
use crate::flags;
use crate::point::Point;

/// Points read from documents, with the tables their indices refer to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadPoints {
    /// (user, trajectory) of each trajectory, in order of first appearance.
    pub trajectories: Vec<(String, String)>,
    /// Each distinct zone set, in order of first appearance.
    pub zone_sets: Vec<Vec<String>>,
    /// The points, in document order.
    pub points: Vec<Point>,
}

/// The fields of an output document that make a point (`point_id` and the rest ignored).
#[derive(Deserialize)]
struct PointDocument {
    user: String,
    trajectory: String,
    seq: u32,
    ts: String,
    location: Location,
    #[serde(default)]
    alt_m: Option<f64>,
    #[serde(default)]
    zones: Vec<String>,
    #[serde(default)]
    dist_m: Option<f64>,
    #[serde(default)]
    speed_mps: Option<f64>,
    #[serde(default)]
    heading_deg: Option<f64>,
    #[serde(default)]
    flags: Vec<String>,
}

#[derive(Deserialize)]
struct Location {
    lat: f64,
    lon: f64,
}

/// Points from NDJSON output documents (blank lines skipped), in file order. The error
/// names the line and what is wrong with it.
pub fn points_from_documents(text: &str) -> Result<ReadPoints, String> {
    let mut read = ReadPoints::default();
    let mut trajectory_index: HashMap<(String, String), u32> = HashMap::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = |why: String| format!("line {}: {why}", number + 1);
        let doc: PointDocument =
            serde_json::from_str(line).map_err(|e| at(format!("not a point document: {e}")))?;
        let ts_ms =
            parse_rfc3339(&doc.ts).ok_or_else(|| at(format!("ts {:?} is not RFC 3339", doc.ts)))?;
        let mut bits = 0;
        for name in &doc.flags {
            bits |= flags::bit(name).ok_or_else(|| at(format!("unknown flag {name:?}")))?;
        }
        let key = (doc.user, doc.trajectory);
        let trajectories = &mut read.trajectories;
        let trajectory = *trajectory_index.entry(key.clone()).or_insert_with(|| {
            trajectories.push(key);
            trajectories.len() as u32 - 1
        });
        let zones = (!doc.zones.is_empty()).then(|| {
            let sets = &mut read.zone_sets;
            let index = sets
                .iter()
                .position(|z| *z == doc.zones)
                .unwrap_or_else(|| {
                    sets.push(doc.zones);
                    sets.len() - 1
                });
            index as u32
        });
        read.points.push(Point {
            trajectory,
            seq: doc.seq,
            ts_ms,
            lat: doc.location.lat,
            lon: doc.location.lon,
            alt_m: doc.alt_m,
            zones,
            dist_m: doc.dist_m,
            speed_mps: doc.speed_mps,
            heading_deg: doc.heading_deg,
            flags: bits,
        });
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{DocumentEncoder, Encoded};

    #[test]
    fn documents_read_back_into_the_same_points() {
        let text = concat!(
            r#"{"user":"021","trajectory":"a","seq":0,"ts":"2008-10-23T02:53:04Z","location":{"lat":39.9,"lon":116.4},"alt_m":null,"zones":["x","y"],"dist_m":null,"speed_mps":null,"heading_deg":null,"flags":["zone_enter","altitude_missing"],"point_id":"ignored"}"#,
            "\n\n",
            r#"{"user":"021","trajectory":"a","seq":1,"ts":"2008-10-23T02:53:05.250Z","location":{"lat":39.91,"lon":116.41},"alt_m":12.5,"zones":[],"dist_m":3.5,"speed_mps":1.5,"heading_deg":90.0,"flags":[]}"#,
            "\n"
        );
        let read = points_from_documents(text).unwrap();
        assert_eq!(read.points.len(), 2);
        assert_eq!(read.points[1].ts_ms - read.points[0].ts_ms, 1_250);
        assert_eq!(read.zone_sets, vec![vec!["x".to_string(), "y".to_string()]]);
        assert_eq!(
            read.points[0].flags,
            flags::ZONE_ENTER | flags::ALTITUDE_MISSING
        );
        // Encoding them again gives the same fields back.
        let mut encoded = Encoded::default();
        DocumentEncoder::default().encode(
            &read.trajectories,
            &read.zone_sets,
            read.points.iter().copied(),
            &mut encoded,
        );
        let again: Vec<serde_json::Value> = encoded
            .iter()
            .map(|d| serde_json::from_slice(d).unwrap())
            .collect();
        assert_eq!(again[0]["zones"], serde_json::json!(["x", "y"]));
        assert_eq!(again[1]["ts"], "2008-10-23T02:53:05.250Z");
        assert_eq!(again[1]["speed_mps"], 1.5);
        assert!(
            points_from_documents(r#"{"user":"u"}"#)
                .unwrap_err()
                .contains("line 1")
        );
        let bad_flag = text.lines().next().unwrap().replace("zone_enter", "nope");
        assert!(
            points_from_documents(&bad_flag)
                .unwrap_err()
                .contains("nope")
        );
    }
}
