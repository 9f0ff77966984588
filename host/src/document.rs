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
//! downstream. Encoding runs once per point, so it allocates nothing per point: it writes
//! into one reused buffer, with identities hashed once per trajectory per batch.

use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::engine::bindings::{Point, PointColumns, Trajectory};

/// Names of the 32 flag bits, as in the WIT contract's `point-flags`.
const FLAG_NAMES: [&str; 32] = [
    "implausible_speed",
    "zone_enter",
    "zone_exit",
    "altitude_missing",
    "bit_4",
    "bit_5",
    "bit_6",
    "bit_7",
    "bit_8",
    "bit_9",
    "bit_10",
    "bit_11",
    "bit_12",
    "bit_13",
    "bit_14",
    "bit_15",
    "user_16",
    "user_17",
    "user_18",
    "user_19",
    "user_20",
    "user_21",
    "user_22",
    "user_23",
    "user_24",
    "user_25",
    "user_26",
    "user_27",
    "user_28",
    "user_29",
    "user_30",
    "user_31",
];

/// The bit of a flag name as documents spell it (`zone_enter`, `user_16`, …).
pub fn flag_bit(name: &str) -> Option<u32> {
    FLAG_NAMES
        .iter()
        .position(|n| *n == name)
        .map(|bit| 1 << bit)
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

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// Encodes points as output documents, reusing its buffers across batches.
#[derive(Debug, Default)]
pub struct DocumentEncoder {
    id_seeds: Vec<u64>,
}

impl DocumentEncoder {
    /// Replaces `out` with the documents of `points`.
    pub fn encode(
        &mut self,
        trajectories: &[Trajectory],
        zone_sets: &[Vec<String>],
        points: &PointColumns,
        out: &mut Encoded,
    ) {
        out.clear();
        self.id_seeds.clear();
        self.id_seeds
            .extend(trajectories.iter().map(|t| trajectory_seed(&t.user, &t.id)));
        for point in points.iter() {
            let trajectory = &trajectories[point.trajectory as usize];
            let doc = Document::new(
                trajectory,
                zone_sets,
                &point,
                self.id_seeds[point.trajectory as usize],
            );
            // Writing to a Vec cannot fail, and every value here is serialisable.
            let _ = serde_json::to_writer(&mut out.bytes, &doc);
            out.bytes.push(b'\n');
            out.ends.push(out.bytes.len());
        }
    }
}

/// One output document, borrowing everything from the batch.
#[derive(serde::Serialize)]
pub struct Document<'a> {
    user: &'a str,
    trajectory: &'a str,
    seq: u32,
    ts: Timestamp,
    location: Location,
    alt_m: Option<f64>,
    zones: &'a [String],
    dist_m: Option<f64>,
    speed_mps: Option<f64>,
    heading_deg: Option<f64>,
    flags: Flags,
    point_id: PointId,
}

impl<'a> Document<'a> {
    /// The document of `point`; `id_seed` is [`trajectory_seed`] of its trajectory.
    pub fn new(
        trajectory: &'a Trajectory,
        zone_sets: &'a [Vec<String>],
        point: &Point,
        id_seed: u64,
    ) -> Self {
        Document {
            user: &trajectory.user,
            trajectory: &trajectory.id,
            seq: point.seq,
            ts: Timestamp(point.ts_ms),
            location: Location {
                lat: point.lat,
                lon: point.lon,
            },
            alt_m: point.alt_m,
            zones: point
                .zones
                .and_then(|z| zone_sets.get(z as usize))
                .map_or(&[], Vec::as_slice),
            dist_m: point.dist_m,
            speed_mps: point.speed_mps,
            heading_deg: point.heading_deg,
            flags: Flags(point.flags),
            point_id: PointId(point_id(id_seed, point.seq)),
        }
    }
}

#[derive(serde::Serialize)]
struct Location {
    lat: f64,
    lon: f64,
}

/// The set flag bits as a list of names.
struct Flags(u32);

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.count_ones() as usize))?;
        for (bit, name) in FLAG_NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                seq.serialize_element(name)?;
            }
        }
        seq.end()
    }
}

/// Milliseconds since the epoch, serialised as ISO-8601 UTC (`2008-10-23T02:53:04Z`, with
/// `.mmm` only when the milliseconds are not zero).
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 32];
        let len = format_iso8601(self.0, &mut buf);
        // format_iso8601 writes ASCII only.
        s.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default())
    }
}

/// Writes `ts_ms` as ISO-8601 UTC into `buf`, returning the length.
pub fn format_iso8601(ts_ms: i64, buf: &mut [u8; 32]) -> usize {
    let secs = ts_ms.div_euclid(1000);
    let millis = ts_ms.rem_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return format_iso8601_slow(year, month, day, sod, millis, buf);
    }
    // Runs once per output document: plain digit writes, no formatting machinery.
    let mut len = 0;
    let mut put = |value: i64, digits: u32, after: u8| {
        for i in (0..digits).rev() {
            buf[len] = b'0' + (value / 10_i64.pow(i) % 10) as u8;
            len += 1;
        }
        buf[len] = after;
        len += 1;
    };
    put(year, 4, b'-');
    put(month, 2, b'-');
    put(day, 2, b'T');
    put(sod / 3600, 2, b':');
    put(sod / 60 % 60, 2, b':');
    if millis == 0 {
        put(sod % 60, 2, b'Z');
    } else {
        put(sod % 60, 2, b'.');
        put(millis, 3, b'Z');
    }
    len
}

/// [`format_iso8601`] for years outside 0..=9999, which no GPS point has.
fn format_iso8601_slow(
    year: i64,
    month: i64,
    day: i64,
    sod: i64,
    millis: i64,
    buf: &mut [u8; 32],
) -> usize {
    use std::io::Write;
    let mut w = &mut buf[..];
    let _ = write!(
        w,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if millis != 0 {
        let _ = write!(w, ".{millis:03}");
    }
    let _ = write!(w, "Z");
    32 - w.len()
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Hinnant).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The 16-hex-digit point id.
struct PointId(u64);

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 16];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = HEX[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

/// FNV-1a over `user`, a separator and `id`: the per-trajectory part of a point id.
pub fn trajectory_seed(user: &str, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in user
        .as_bytes()
        .iter()
        .chain([0x1f].iter())
        .chain(id.as_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A point's id from its trajectory's seed and its `seq` (SplitMix64 finaliser).
pub fn point_id(seed: u64, seq: u32) -> u64 {
    let mut z = seed ^ u64::from(seq).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hex point id of (user, trajectory, seq), as it appears in documents.
pub fn point_id_hex(user: &str, trajectory: &str, seq: u32) -> String {
    format!("{:016x}", point_id(trajectory_seed(user, trajectory), seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn timestamps_match_chrono() {
        for ms in [
            0,
            1_224_730_384_000,
            951_782_399_000,
            -1_000,
            4_102_444_800_123,
            1_224_730_384_007,
        ]
        .into_iter()
        // 1900 to 2100 in steps of about 42 days, landing on all sorts of hours and millis.
        .chain((-2_208_988_800_000..4_102_444_800_000).step_by(3_599_999_937))
        {
            let mut buf = [0u8; 32];
            let len = format_iso8601(ms, &mut buf);
            let want = DateTime::from_timestamp_millis(ms).unwrap();
            let fmt = if ms % 1000 == 0 {
                "%Y-%m-%dT%H:%M:%SZ"
            } else {
                "%Y-%m-%dT%H:%M:%S%.3fZ"
            };
            assert_eq!(
                std::str::from_utf8(&buf[..len]).unwrap(),
                want.format(fmt).to_string()
            );
        }
    }

    #[test]
    fn timestamps_outside_four_digit_years_still_format() {
        let mut buf = [0u8; 32];
        let len = format_iso8601(253_402_300_800_000, &mut buf); // 10000-01-01
        assert_eq!(
            std::str::from_utf8(&buf[..len]).unwrap(),
            "10000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn documents_are_single_line_json_with_every_field() {
        let trajectories = vec![Trajectory {
            user: "021".into(),
            id: "t\"1\n".into(),
        }];
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
            &[point, point].into_iter().collect(),
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
    fn point_ids_are_stable_and_distinct() {
        // Pinned (values computed by an independent Python version of FNV-1a + SplitMix64):
        // changing the id scheme breaks deduplication against documents already stored.
        assert_eq!(point_id_hex("021", "20081023025304", 0), "8bf7c9319eca9ece");
        assert_eq!(point_id_hex("021", "20081023025304", 1), "63c7d862fd8a6f00");
        let mut seen = std::collections::HashSet::new();
        for user in ["000", "001", "0010"] {
            for traj in ["a", "b", "1a"] {
                for seq in 0..1000 {
                    assert!(seen.insert(point_id_hex(user, traj, seq)));
                }
            }
        }
        assert_ne!(
            point_id_hex("00", "1a", 0),
            point_id_hex("001", "a", 0),
            "separator matters"
        );
    }
}
