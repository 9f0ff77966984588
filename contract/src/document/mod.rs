//! The output document: one JSON object per point, one line each.
//!
//! This is what every sink writes and what Firehose hands to OpenSearch:
//!
//! ```json
//! {"user":"021","trajectory":"20081023025304","seq":0,"ts":"2008-10-23T02:53:04Z",
//!  "location":{"lat":39.984702,"lon":116.318417},"alt_m":149.9616,"zones":["tsinghua"],
//!  "dist_m":null,"speed_mps":null,"heading_deg":null,"flags":["zone_enter"],
//!  "point_id":"8bf7c9319eca9ece"}
//! ```
//!
//! (on one line). `point_id` is deterministic: the same user, trajectory and `seq` always
//! give the same id, so duplicates from at-least-once delivery can be recognised
//! downstream. Encoding runs once per point, so it allocates nothing per point and does
//! no string work per point: it writes into one reused buffer, with identities escaped
//! and hashed once per trajectory per batch (see [`DocumentEncoder`]).
//!
//! * [`DocumentEncoder`] writes documents (and [`Encoded`] holds a batch of them);
//! * [`read`] reads them back (for tests and `waystream test` inputs);
//! * [`point_id`] is the deterministic id, [`time`] the timestamp format.

pub mod point_id;
pub mod read;
pub mod time;

use crate::flags;
use crate::point::Point;
use point_id::{point_id as id_of, trajectory_seed};

/// A trajectory's identity as a batch's table holds it: implemented for the host's and
/// the guest's generated `trajectory` records, and for `(user, id)` pairs.
pub trait Identity {
    /// The user id.
    fn user(&self) -> &str;
    /// The trajectory id.
    fn id(&self) -> &str;
}

impl<S: AsRef<str>> Identity for (S, S) {
    fn user(&self) -> &str {
        self.0.as_ref()
    }
    fn id(&self) -> &str {
        self.1.as_ref()
    }
}

/// A batch of encoded documents: one buffer, each document ending in `\n`.
#[derive(Debug, Default)]
pub struct Encoded {
    /// All documents, back to back.
    pub bytes: Vec<u8>,
    /// Exclusive end offset of each document in `bytes` (after its `\n`).
    pub ends: Vec<usize>,
}

impl Encoded {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no documents.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each document, with its trailing `\n`.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let doc = &self.bytes[start..end];
            start = end;
            doc
        })
    }

    /// Appends one record (which must end in `\n`).
    pub fn push(&mut self, record: &[u8]) {
        self.bytes.extend_from_slice(record);
        self.ends.push(self.bytes.len());
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// Encodes points as output documents, reusing its buffers across batches.
///
/// Everything a batch's documents share is prepared once per batch: each trajectory's
/// JSON-escaped `{"user":…,"trajectory":…,"seq":` head and point-id seed, and each zone
/// set's JSON array. Per point only numbers are written, into the output buffer directly.
#[derive(Debug, Default)]
pub struct DocumentEncoder {
    /// The heads of the batch's trajectories, back to back; `head_ends` splits them.
    heads: Vec<u8>,
    head_ends: Vec<usize>,
    id_seeds: Vec<u64>,
    /// The batch's zone sets as JSON arrays, back to back; `zone_ends` splits them.
    zone_arrays: Vec<u8>,
    zone_ends: Vec<usize>,
}

impl DocumentEncoder {
    /// Replaces `out` with the documents of `points`, whose `trajectory` and `zones` index
    /// `trajectories` and `zone_sets`.
    pub fn encode<T: Identity>(
        &mut self,
        trajectories: &[T],
        zone_sets: &[Vec<String>],
        points: impl Iterator<Item = Point>,
        out: &mut Encoded,
    ) {
        out.clear();
        self.prepare(trajectories, zone_sets);
        for point in points {
            self.write(&point, &mut out.bytes);
            out.bytes.push(b'\n');
            out.ends.push(out.bytes.len());
        }
    }

    /// The document of one point (without `\n`), for a dead letter: not the hot path.
    pub fn one<T: Identity>(
        trajectories: &[T],
        zone_sets: &[Vec<String>],
        point: &Point,
    ) -> Vec<u8> {
        let mut encoder = DocumentEncoder::default();
        encoder.prepare(trajectories, zone_sets);
        let mut bytes = Vec::new();
        encoder.write(point, &mut bytes);
        bytes
    }

    fn prepare<T: Identity>(&mut self, trajectories: &[T], zone_sets: &[Vec<String>]) {
        self.heads.clear();
        self.head_ends.clear();
        self.id_seeds.clear();
        for trajectory in trajectories {
            let (user, id) = (trajectory.user(), trajectory.id());
            self.heads.extend_from_slice(b"{\"user\":");
            json_string(user, &mut self.heads);
            self.heads.extend_from_slice(b",\"trajectory\":");
            json_string(id, &mut self.heads);
            self.heads.extend_from_slice(b",\"seq\":");
            self.head_ends.push(self.heads.len());
            self.id_seeds.push(trajectory_seed(user, id));
        }
        self.zone_arrays.clear();
        self.zone_ends.clear();
        for zones in zone_sets {
            self.zone_arrays.push(b'[');
            for (i, zone) in zones.iter().enumerate() {
                if i > 0 {
                    self.zone_arrays.push(b',');
                }
                json_string(zone, &mut self.zone_arrays);
            }
            self.zone_arrays.push(b']');
            self.zone_ends.push(self.zone_arrays.len());
        }
    }

    /// Appends the document of `point` (without its `\n`); `prepare` saw its batch.
    fn write(&self, point: &Point, out: &mut Vec<u8>) {
        let t = point.trajectory as usize;
        out.extend_from_slice(slice_of(&self.heads, &self.head_ends, t));
        out.extend_from_slice(itoa::Buffer::new().format(point.seq).as_bytes());
        out.extend_from_slice(b",\"ts\":\"");
        let mut ts = [0u8; 32];
        let len = time::format_iso8601(point.ts_ms, &mut ts);
        out.extend_from_slice(&ts[..len]);
        out.extend_from_slice(b"\",\"location\":{\"lat\":");
        number(Some(point.lat), out);
        out.extend_from_slice(b",\"lon\":");
        number(Some(point.lon), out);
        out.extend_from_slice(b"},\"alt_m\":");
        number(point.alt_m, out);
        out.extend_from_slice(b",\"zones\":");
        match point.zones.map(|z| z as usize) {
            Some(z) if z < self.zone_ends.len() => {
                out.extend_from_slice(slice_of(&self.zone_arrays, &self.zone_ends, z));
            }
            _ => out.extend_from_slice(b"[]"),
        }
        out.extend_from_slice(b",\"dist_m\":");
        number(point.dist_m, out);
        out.extend_from_slice(b",\"speed_mps\":");
        number(point.speed_mps, out);
        out.extend_from_slice(b",\"heading_deg\":");
        number(point.heading_deg, out);
        out.extend_from_slice(b",\"flags\":[");
        // The set bits only, lowest first (most points have none).
        let mut bits = point.flags;
        while bits != 0 {
            if bits != point.flags {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(flags::NAMES[bits.trailing_zeros() as usize].as_bytes());
            out.push(b'"');
            bits &= bits - 1;
        }
        out.extend_from_slice(b"],\"point_id\":\"");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let id = id_of(self.id_seeds[t], point.seq);
        let hex: [u8; 16] = std::array::from_fn(|i| HEX[((id >> (60 - 4 * i)) & 0xf) as usize]);
        out.extend_from_slice(&hex);
        out.extend_from_slice(b"\"}");
    }
}

/// Part `i` of `bytes`, which `ends` splits into parts.
fn slice_of<'a>(bytes: &'a [u8], ends: &[usize], i: usize) -> &'a [u8] {
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &bytes[start..ends[i]]
}

/// `text` as a JSON string, quoted and escaped.
fn json_string(text: &str, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// A JSON number as serde_json writes it (shortest round-trip form); `null` when absent
/// or not finite, which JSON cannot hold.
fn number(value: Option<f64>, out: &mut Vec<u8>) {
    match value {
        Some(v) if v.is_finite() => {
            out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
        }
        _ => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::point_id::point_id_hex;
    use super::*;

    #[test]
    fn documents_are_single_line_json_with_every_field() {
        let trajectories = [("021", "t\"1\n")];
        let zone_sets = vec![vec!["a".to_string(), "b".to_string()]];
        let point = Point {
            trajectory: 0,
            seq: 7,
            ts_ms: 1_224_730_384_000,
            lat: 39.9,
            lon: 116.4,
            alt_m: None,
            zones: Some(0),
            dist_m: Some(1.5),
            speed_mps: None,
            heading_deg: Some(90.0),
            flags: 0b1010 | (1 << 17),
        };
        let mut out = Encoded::default();
        DocumentEncoder::default().encode(
            &trajectories,
            &zone_sets,
            [point, point].into_iter(),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        let doc = out.iter().next().unwrap();
        assert_eq!(
            doc.iter().filter(|&&b| b == b'\n').count(),
            1,
            "one line, ending in \\n"
        );
        let v: serde_json::Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(v["user"], "021");
        assert_eq!(v["trajectory"], "t\"1\n");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["ts"], "2008-10-23T02:53:04Z");
        assert_eq!(v["location"]["lat"], 39.9);
        assert_eq!(v["alt_m"], serde_json::Value::Null);
        assert_eq!(v["zones"], serde_json::json!(["a", "b"]));
        assert_eq!(
            v["flags"],
            serde_json::json!(["zone_enter", "altitude_missing", "user_17"])
        );
        assert_eq!(v["point_id"], point_id_hex("021", "t\"1\n", 7));
    }

    #[test]
    fn absent_and_non_finite_values_are_null_and_strings_are_escaped() {
        let trajectories = [("ü\\\u{1}", "x")];
        let zone_sets = vec![vec!["a \"quoted\" zone".to_string()], vec![]];
        let mut point = Point {
            trajectory: 0,
            seq: u32::MAX,
            ts_ms: 1_224_730_384_007,
            lat: -0.0,
            lon: 1e-7,
            alt_m: Some(f64::INFINITY),
            zones: Some(0),
            dist_m: Some(f64::NEG_INFINITY),
            speed_mps: Some(123456789.125),
            heading_deg: None,
            flags: 0,
        };
        let unknown_zones = Point {
            zones: Some(7),
            ..point
        };
        point.flags = 1 << 31;
        let mut out = Encoded::default();
        DocumentEncoder::default().encode(
            &trajectories,
            &zone_sets,
            [point, unknown_zones].into_iter(),
            &mut out,
        );
        let docs: Vec<serde_json::Value> = out
            .iter()
            .map(|d| serde_json::from_slice(d).unwrap())
            .collect();
        let expected = serde_json::json!({
            "user": "ü\\\u{1}", "trajectory": "x", "seq": u32::MAX,
            "ts": "2008-10-23T02:53:04.007Z",
            "location": {"lat": -0.0, "lon": 1e-7},
            "alt_m": null, "zones": ["a \"quoted\" zone"], "dist_m": null,
            "speed_mps": 123456789.125, "heading_deg": null, "flags": ["user_31"],
            "point_id": point_id_hex("ü\\\u{1}", "x", u32::MAX),
        });
        assert_eq!(docs[0], expected);
        assert_eq!(docs[1]["zones"], serde_json::json!([]), "unknown zone set");
        assert_eq!(docs[1]["flags"], serde_json::json!([]));
        // Numbers are written exactly as serde_json writes them.
        let text = std::str::from_utf8(out.iter().next().unwrap()).unwrap();
        for value in [-0.0, 1e-7, 123456789.125] {
            assert!(
                text.contains(&serde_json::to_string(&value).unwrap()),
                "{text}"
            );
        }
    }
}
