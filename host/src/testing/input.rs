//! Points as test input: output documents read back into a batch of points.
//!
//! This lets a case test a module further down the chain (geofence, speed) on points
//! written by hand, in the same format the pipeline writes, without a parser in front.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::document::flag_bit;
use crate::engine::bindings::{Batch, Point, Records, Trajectory};

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

/// One batch of points from NDJSON output documents (blank lines skipped), in file order.
pub fn points_from_documents(text: &str) -> Result<Batch> {
    let mut trajectories: Vec<Trajectory> = Vec::new();
    let mut trajectory_index: HashMap<(String, String), u32> = HashMap::new();
    let mut zone_sets: Vec<Vec<String>> = Vec::new();
    let mut points = Vec::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let doc: PointDocument = serde_json::from_str(line)
            .with_context(|| format!("line {}: not a point document", number + 1))?;
        let ts = chrono::DateTime::parse_from_rfc3339(&doc.ts)
            .with_context(|| format!("line {}: ts {:?} is not RFC 3339", number + 1, doc.ts))?;
        let mut flags = 0;
        for name in &doc.flags {
            match flag_bit(name) {
                Some(bit) => flags |= bit,
                None => bail!("line {}: unknown flag {name:?}", number + 1),
            }
        }
        let key = (doc.user, doc.trajectory);
        let trajectory = *trajectory_index.entry(key.clone()).or_insert_with(|| {
            trajectories.push(Trajectory {
                user: key.0,
                id: key.1,
            });
            trajectories.len() as u32 - 1
        });
        let zones = (!doc.zones.is_empty()).then(|| {
            let index = zone_sets
                .iter()
                .position(|z| *z == doc.zones)
                .unwrap_or_else(|| {
                    zone_sets.push(doc.zones);
                    zone_sets.len() - 1
                });
            index as u32
        });
        points.push(Point {
            trajectory,
            seq: doc.seq,
            ts_ms: ts.timestamp_millis(),
            lat: doc.location.lat,
            lon: doc.location.lon,
            alt_m: doc.alt_m,
            zones,
            dist_m: doc.dist_m,
            speed_mps: doc.speed_mps,
            heading_deg: doc.heading_deg,
            flags,
        });
    }
    Ok(Batch {
        trajectories,
        zone_sets,
        records: Records::Points(points.into_iter().collect()),
    })
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
        let batch = points_from_documents(text).unwrap();
        let Records::Points(points) = &batch.records else {
            panic!("points expected")
        };
        assert_eq!(points.len(), 2);
        assert_eq!(points.ts_ms[1] - points.ts_ms[0], 1_250);
        assert_eq!(
            batch.zone_sets,
            vec![vec!["x".to_string(), "y".to_string()]]
        );
        assert_eq!(points.flags[0], 2 | 8);
        // Encoding them again gives the same fields back.
        let mut encoded = Encoded::default();
        DocumentEncoder::default().encode(
            &batch.trajectories,
            &batch.zone_sets,
            points,
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
                .to_string()
                .contains("line 1")
        );
        let bad_flag = text.lines().next().unwrap().replace("zone_enter", "nope");
        assert!(format!("{:#}", points_from_documents(&bad_flag).unwrap_err()).contains("nope"));
    }
}
