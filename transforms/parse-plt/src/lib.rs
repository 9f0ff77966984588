//! `parse-plt`: Geolife PLT lines to points.
//!
//! A PLT point line has seven comma-separated fields:
//!
//! ```text
//! 39.984702,116.318417,0,492,39744.1201851852,2008-10-23,02:53:04
//! latitude  longitude  0 altitude(ft) days    date       time (UTC)
//! ```
//!
//! The source strips the six header lines of a file; a header line that still reaches this
//! transform is rejected like any other malformed line. Altitude comes in feet and leaves in
//! metres; Geolife's `-777` means "no altitude" and becomes none with the
//! `altitude-missing` flag. The time is taken from the date and time fields (the day count
//! in field 5 is redundant and only checked to be a number). CRLF and LF both work.
//!
//! Config: none.

mod civil;
mod decimal;
mod one_pass;

use waystream_guest::{
    Batch, NO_ZONES, Output, PointColumns, Records, Rejection, Transform, flags,
};

pub use civil::{ParseTimeError, parse_date_time_ms};
pub use decimal::parse_decimal;

/// Geolife's marker for "no altitude".
const NO_ALTITUDE_FT: f64 = -777.0;
const METRES_PER_FOOT: f64 = 0.3048;

/// The parse-plt transform (stateless).
pub struct ParsePlt;

impl Transform for ParsePlt {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(ParsePlt)
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        let Records::Lines(raw) = batch.records else {
            return Err("parse-plt needs raw lines; put it first in the chain".into());
        };
        let mut points = PointColumns::with_capacity(raw.len());
        let mut rejected = Vec::new();
        for (index, (bytes, trajectory, seq)) in raw.iter().enumerate() {
            match parse_line(bytes) {
                // The columns a line gives values to; the derived ones are filled below.
                Ok(fields) => {
                    points.trajectory.push(trajectory);
                    points.seq.push(seq);
                    points.ts_ms.push(fields.ts_ms);
                    points.lat.push(fields.lat);
                    points.lon.push(fields.lon);
                    points.alt_m.push(fields.alt_m.unwrap_or(f64::NAN));
                    points.flags.push(if fields.alt_m.is_none() {
                        flags::ALTITUDE_MISSING
                    } else {
                        0
                    });
                }
                Err(reason) => rejected.push(Rejection {
                    index: index as u32,
                    reason: reason.to_string(),
                }),
            }
        }
        // No zones, distances, speeds or headings yet: later transforms compute them.
        let n = points.seq.len();
        points.zones.resize(n, NO_ZONES);
        for column in [
            &mut points.dist_m,
            &mut points.speed_mps,
            &mut points.heading_deg,
        ] {
            column.resize(n, f64::NAN);
        }
        Ok(Output {
            points,
            zone_sets: None,
            rejected,
        })
    }
}

waystream_guest::export_transform!(ParsePlt);

/// The values of one PLT point line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PltFields {
    pub lat: f64,
    pub lon: f64,
    /// Metres; none for Geolife's -777 (or a non-finite value).
    pub alt_m: Option<f64>,
    /// Milliseconds since the Unix epoch, UTC.
    pub ts_ms: i64,
}

/// Why a line is not a point.
#[derive(Debug, Clone, PartialEq)]
pub enum LineError {
    Empty,
    /// A control byte (`at` is its offset in the line).
    Binary {
        at: usize,
        byte: u8,
    },
    /// A tab where PLT has commas only.
    Tab {
        at: usize,
    },
    /// A byte above 0x7f: PLT lines are ASCII.
    NonAscii {
        at: usize,
        byte: u8,
    },
    FieldCount(usize),
    /// `value` is the start of the field, quoted (see [`quoted_prefix`]).
    NotANumber {
        field: &'static str,
        value: String,
    },
    OutOfRange {
        field: &'static str,
        value: f64,
    },
    Time(ParseTimeError),
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::Empty => write!(f, "empty line"),
            LineError::Binary { at, byte } => {
                write!(f, "binary data: control byte 0x{byte:02x} at byte {at}")
            }
            LineError::Tab { at } => write!(
                f,
                "a tab at byte {at}: PLT fields are separated by commas only"
            ),
            LineError::NonAscii { at, byte } => write!(
                f,
                "a non-ASCII byte 0x{byte:02x} at byte {at}: PLT lines are ASCII text"
            ),
            LineError::FieldCount(n) => write!(f, "expected 7 comma-separated fields, found {n}"),
            LineError::NotANumber { field, value } => {
                write!(f, "{field} is not a number: {value}")
            }
            // A huge value in exponent form: `{}` would print all of its 300 digits.
            LineError::OutOfRange { field, value } if value.abs() >= 1e9 => {
                write!(f, "{field} out of range: {value:e}")
            }
            LineError::OutOfRange { field, value } => write!(f, "{field} out of range: {value}"),
            LineError::Time(e) => write!(f, "bad date/time: {e}"),
        }
    }
}

/// Bytes of a field a refusal quotes at most: a cause names the field, it does not repeat
/// a megabyte of it.
const QUOTED_BYTES: usize = 40;

/// `field` quoted for a refusal: whole when short, else its first [`QUOTED_BYTES`] bytes
/// and its length.
pub fn quoted_prefix(field: &str) -> String {
    if field.len() <= QUOTED_BYTES {
        return format!("{field:?}");
    }
    let mut end = QUOTED_BYTES;
    while !field.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &field[..end], field.len())
}

const FIELD_NAMES: [&str; 5] = ["latitude", "longitude", "field 3", "altitude", "day count"];

/// Parses one PLT point line (with or without its `\r`).
#[inline(always)]
pub fn parse_line(bytes: &[u8]) -> Result<PltFields, LineError> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match one_pass::parse_common(bytes) {
        Some(fields) => Ok(fields),
        None => parse_line_general(bytes),
    }
}

/// Metres from PLT feet; none for Geolife's "no altitude".
fn altitude_m(feet: f64) -> Option<f64> {
    (feet != NO_ALTITUDE_FT).then_some(feet * METRES_PER_FOOT)
}

/// Any line without its `\r`: every check, one at a time, so a refusal says what is wrong.
fn parse_line_general(bytes: &[u8]) -> Result<PltFields, LineError> {
    // One pass for both checks (branch-free, so the compiler can widen it).
    let (mut blank, mut printable) = (true, true);
    for &b in bytes {
        blank &= b.is_ascii_whitespace();
        printable &= b.is_ascii_graphic() || b == b' ';
    }
    if blank {
        return Err(LineError::Empty);
    }
    if !printable {
        return Err(not_printable(bytes));
    }
    // Printable ASCII only from here on, so this cannot fail.
    let text = std::str::from_utf8(bytes).map_err(|_| not_printable(bytes))?;
    // Split by hand: `str::split` searches with `memchr`, which Wasm runs 2.6x slower than
    // native code (measured); a plain loop over ~60 bytes is faster on both.
    let mut fields = [""; 7];
    let mut count = 0;
    let mut start = 0;
    for end in (0..=bytes.len()).filter(|&i| i == bytes.len() || bytes[i] == b',') {
        if count < fields.len() {
            fields[count] = text[start..end].trim_ascii();
        }
        count += 1;
        start = end + 1;
    }
    if count != fields.len() {
        return Err(LineError::FieldCount(count));
    }
    let mut numbers = [0f64; 5];
    for (i, name) in FIELD_NAMES.iter().enumerate() {
        numbers[i] = parse_decimal(fields[i])
            .filter(|v| v.is_finite())
            .ok_or_else(|| LineError::NotANumber {
                field: name,
                value: quoted_prefix(fields[i]),
            })?;
    }
    let [lat, lon, _, alt_ft, _] = numbers;
    if !(-90.0..=90.0).contains(&lat) {
        return Err(LineError::OutOfRange {
            field: "latitude",
            value: lat,
        });
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(LineError::OutOfRange {
            field: "longitude",
            value: lon,
        });
    }
    let ts_ms = parse_date_time_ms(fields[5], fields[6]).map_err(LineError::Time)?;
    Ok(PltFields {
        lat,
        lon,
        alt_m: altitude_m(alt_ft),
        ts_ms,
    })
}

/// Why a line with a byte that is not printable ASCII is refused: the first such byte.
fn not_printable(bytes: &[u8]) -> LineError {
    let printable = |b: u8| b.is_ascii_graphic() || b == b' ';
    let Some(at) = bytes.iter().position(|&b| !printable(b)) else {
        return LineError::Empty; // unreachable for callers, which found one
    };
    match bytes[at] {
        b'\t' => LineError::Tab { at },
        byte if byte >= 0x80 => LineError::NonAscii { at, byte },
        byte => LineError::Binary { at, byte },
    }
}

#[cfg(test)]
mod tests;
