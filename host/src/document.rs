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
    /// Replaces `out` with the documents of `points`.
    pub fn encode(
        &mut self,
        trajectories: &[Trajectory],
        zone_sets: &[Vec<String>],
        points: &PointColumns,
        out: &mut Encoded,
    ) {
        out.clear();
        self.prepare(trajectories, zone_sets);
        for point in points.iter() {
            self.write(&point, &mut out.bytes);
            out.bytes.push(b'\n');
            out.ends.push(out.bytes.len());
        }
    }

    /// The document of one point as a JSON value (for dead letters, not the hot path).
    pub fn to_value(
        trajectories: &[Trajectory],
        zone_sets: &[Vec<String>],
        point: &Point,
    ) -> Option<serde_json::Value> {
        let mut encoder = DocumentEncoder::default();
        encoder.prepare(trajectories, zone_sets);
        let mut bytes = Vec::new();
        encoder.write(point, &mut bytes);
        serde_json::from_slice(&bytes).ok()
    }

    fn prepare(&mut self, trajectories: &[Trajectory], zone_sets: &[Vec<String>]) {
        self.heads.clear();
        self.head_ends.clear();
        self.id_seeds.clear();
        for trajectory in trajectories {
            self.heads.extend_from_slice(b"{\"user\":");
            json_string(&trajectory.user, &mut self.heads);
            self.heads.extend_from_slice(b",\"trajectory\":");
            json_string(&trajectory.id, &mut self.heads);
            self.heads.extend_from_slice(b",\"seq\":");
            self.head_ends.push(self.heads.len());
            self.id_seeds
                .push(trajectory_seed(&trajectory.user, &trajectory.id));
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
        let len = format_iso8601(point.ts_ms, &mut ts);
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
            out.extend_from_slice(FLAG_NAMES[bits.trailing_zeros() as usize].as_bytes());
            out.push(b'"');
            bits &= bits - 1;
        }
        out.extend_from_slice(b"],\"point_id\":\"");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let id = point_id(self.id_seeds[t], point.seq);
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

/// Writes `ts_ms` as ISO-8601 UTC into `buf`, returning the length.
pub fn format_iso8601(ts_ms: i64, buf: &mut [u8; 32]) -> usize {
    let secs = ts_ms.div_euclid(1000);
    let millis = ts_ms.rem_euclid(1000) as u32;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (year, month, day) = civil_from_days(days);
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        return format_iso8601_slow(year, month, day, sod, millis, buf);
    };
    // Runs once per output document: two digits per table lookup, one 20-byte store.
    let [y0, y1] = two_digits(year / 100);
    let [y2, y3] = two_digits(year % 100);
    let [mo0, mo1] = two_digits(month);
    let [d0, d1] = two_digits(day);
    let [h0, h1] = two_digits(sod / 3600);
    let [mi0, mi1] = two_digits(sod / 60 % 60);
    let [s0, s1] = two_digits(sod % 60);
    buf[..20].copy_from_slice(&[
        y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1,
        b'Z',
    ]);
    if millis == 0 {
        return 20;
    }
    let [ms0, ms1] = two_digits(millis / 10);
    buf[19..24].copy_from_slice(&[b'.', ms0, ms1, b'0' + (millis % 10) as u8, b'Z']);
    24
}

/// The two ASCII digits of `value`, which every caller keeps below 100.
#[inline]
fn two_digits(value: u32) -> [u8; 2] {
    const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let i = value as usize * 2;
    [PAIRS[i], PAIRS[i + 1]]
}

/// [`format_iso8601`] for years outside 0..=9999, which no GPS point has.
fn format_iso8601_slow(
    year: i64,
    month: u32,
    day: u32,
    sod: u32,
    millis: u32,
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
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    // The day of the 400-year era, 0..146_097: the rest fits unsigned 32-bit arithmetic.
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = i64::from(yoe) + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn absent_and_non_finite_values_are_null_and_strings_are_escaped() {
        let trajectories = vec![Trajectory {
            user: "ü\\\u{1}".into(),
            id: "x".into(),
        }];
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
            &[point, unknown_zones].into_iter().collect(),
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
