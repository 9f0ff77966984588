//! The shape nearly every PLT line has, read in one pass.
//!
//! `39.984702,116.318417,0,492,39744.1201851852,2008-10-23,02:53:04`: five plain decimals
//! and a date and time of fixed width, no spaces. [`parse_common`] reads such a line left to
//! right once, each number as its digits go by, where the general reader checks the bytes,
//! splits the fields, trims them and then parses each (four passes, and `parse-plt` is
//! most of a chain's time). Anything else — spaces, exponents, long numbers, a short date,
//! every error — is left to the general reader, which gives the same values for what this
//! accepts (a test compares the two on generated lines) and the reasons for what it refuses.

use crate::PltFields;
use crate::civil::epoch_ms;
use crate::decimal::plain_decimal_prefix;

/// The fields of a line of the common shape, with the same values as the general reader;
/// none for any other line (which may still be valid).
///
/// Written out field by field, without loops or arrays where the shape is fixed: in Wasm
/// every loop round also checks the call's deadline, and an array lives in linear memory
/// where five locals stay in registers.
#[inline(always)]
pub(crate) fn parse_common(line: &[u8]) -> Option<PltFields> {
    let (lat, rest) = number_then_comma(line)?;
    let (lon, rest) = number_then_comma(rest)?;
    let (_, rest) = number_then_comma(rest)?;
    let (alt_ft, rest) = number_then_comma(rest)?;
    // The day count is checked to be a number; its value is redundant with the date.
    let (_, rest) = number_then_comma(rest)?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return None;
    }
    let ts_ms = date_time_ms(rest.try_into().ok()?)?;
    Some(PltFields {
        lat,
        lon,
        alt_m: crate::altitude_m(alt_ft),
        ts_ms,
    })
}

/// The plain decimal `bytes` starts with and what follows its comma.
#[inline(always)]
fn number_then_comma(bytes: &[u8]) -> Option<(f64, &[u8])> {
    let (value, used) = plain_decimal_prefix(bytes)?;
    match bytes.get(used..) {
        Some([b',', rest @ ..]) => Some((value, rest)),
        _ => None,
    }
}

/// `YYYY-MM-DD,HH:MM:SS` exactly, as three overlapping eight-byte words (SWAR): no loop,
/// no branch per digit.
#[inline(always)]
fn date_time_ms(t: &[u8; 19]) -> Option<i64> {
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&t[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    // XOR with the expected text: digits become their values 0..=9 (only '0'..='9' do),
    // matching separators become 0.
    const DATE: u64 = u64::from_le_bytes(*b"0000-00-");
    const DAY_HOUR: u64 = u64::from_le_bytes(*b"00,00:00");
    const TIME: u64 = u64::from_le_bytes(*b"00:00:00");
    const SEPARATORS_DATE: u64 = u64::from_le_bytes([0, 0, 0, 0, 0xff, 0, 0, 0xff]);
    // The `,` and `:` of "DD,HH:MM", and the two `:` of "HH:MM:SS".
    const SEPARATORS_TIME: u64 = u64::from_le_bytes([0, 0, 0xff, 0, 0, 0xff, 0, 0]);
    let (date, day_hour, time) = (word(0) ^ DATE, word(8) ^ DAY_HOUR, word(11) ^ TIME);
    // A byte is at most 9 when neither it nor it plus 0x76 has its high bit set.
    let above_nine = |w: u64| (w | w.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
    let bad = above_nine(date)
        | above_nine(day_hour)
        | above_nine(time)
        | (date & SEPARATORS_DATE)
        | (day_hour & SEPARATORS_TIME)
        | (time & SEPARATORS_TIME);
    if bad != 0 {
        return None;
    }
    let digit = |w: u64, i: u32| ((w >> (8 * i)) & 0xff) as i64;
    let two = |w: u64, i: u32| digit(w, i) * 10 + digit(w, i + 1);
    epoch_ms(
        [
            two(date, 0) * 100 + two(date, 2),
            two(date, 5),
            two(day_hour, 0),
        ],
        [two(day_hour, 3), two(day_hour, 6), two(time, 6)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_line_general;

    /// A deterministic xorshift stream.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn geolife_like(rng: &mut Rng) -> Vec<u8> {
        // Mostly six decimals, as Geolife writes them; sometimes a float's full digits.
        let (lat, lon) = (
            rng.below(180_000_000) as f64 / 1e6 - 90.0,
            rng.below(360_000_000) as f64 / 1e6 - 180.0,
        );
        let (lat, lon) = match rng.below(8) {
            0 => (lat.to_string(), lon.to_string()),
            _ => (format!("{lat:.6}"), format!("{lon:.6}")),
        };
        let alt = match rng.below(4) {
            0 => "-777".to_string(),
            1 => format!("{:.1}", rng.below(20_000) as f64 / 10.0 - 100.0),
            _ => rng.below(3_000).to_string(),
        };
        let days = format!(
            "{}.{}",
            39_000 + rng.below(3_000),
            rng.below(10_000_000_000)
        );
        // Days past the 28th sometimes do not exist: the general reader says why.
        let last_day = if rng.below(8) == 0 { 31 } else { 28 };
        format!(
            "{lat},{lon},0,{alt},{days},{:04}-{:02}-{:02},{:02}:{:02}:{:02}",
            1990 + rng.below(40),
            1 + rng.below(12),
            1 + rng.below(last_day),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        )
        .into_bytes()
    }

    /// Bytes a mutation may put into a line: the ones the readers treat specially.
    const MUTATIONS: &[u8] = b"0123456789-.,: eE+\t\r\x00a";

    #[test]
    fn agrees_with_the_general_reader_on_generated_and_mutated_lines() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut common, mut general_only) = (0, 0);
        for i in 0..100_000 {
            let mut line = geolife_like(&mut rng);
            // Most lines get one to three mutations: replaced, inserted or removed bytes.
            for _ in 0..(i % 4) {
                let at = rng.below(line.len() as u64 + 1) as usize;
                let byte = MUTATIONS[rng.below(MUTATIONS.len() as u64) as usize];
                match rng.below(3) {
                    0 if at < line.len() => line[at] = byte,
                    1 if at < line.len() => drop(line.remove(at)),
                    _ => line.insert(at, byte),
                }
            }
            let general = parse_line_general(&line);
            match parse_common(&line) {
                Some(fields) => {
                    common += 1;
                    let text = String::from_utf8_lossy(&line);
                    let general = general.unwrap_or_else(|e| panic!("{text:?}: {e}"));
                    assert_eq!(fields.lat.to_bits(), general.lat.to_bits(), "{text:?}");
                    assert_eq!(fields.lon.to_bits(), general.lon.to_bits(), "{text:?}");
                    assert_eq!(
                        fields.alt_m.map(f64::to_bits),
                        general.alt_m.map(f64::to_bits),
                        "{text:?}"
                    );
                    assert_eq!(fields.ts_ms, general.ts_ms, "{text:?}");
                }
                None => general_only += usize::from(general.is_ok()),
            }
        }
        // Both kinds occur, so the comparison above is not vacuous.
        assert!(common > 20_000, "{common} lines took the one-pass path");
        assert!(
            general_only > 1_000,
            "{general_only} valid lines took the general path"
        );
    }

    #[test]
    fn leaves_other_shapes_to_the_general_reader() {
        for line in [
            " 39.9,116.3,0,492,39744.1,2008-10-23,02:53:04",
            "39.9,116.3,0,492,39744.1,2008-10-23,2:53:04",
            "39.9,116.3,0,4.92e2,39744.1,2008-10-23,02:53:04",
            "39.9,116.3,0,492,39744.1201851852123,2008-10-23,02:53:04",
            "+39.9,116.3,0,492,39744.1,2008-10-23,02:53:04",
        ] {
            assert_eq!(parse_common(line.as_bytes()), None, "{line:?}");
            assert!(parse_line_general(line.as_bytes()).is_ok(), "{line:?}");
        }
    }
}
