//! Timestamps in documents: ISO-8601 UTC, `2008-10-23T02:53:04Z` (or with `.007` for
//! milliseconds), written once per document without allocation, and read back.

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

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp as documents hold them:
/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction (milliseconds are kept), and `Z` or an
/// offset `±HH:MM`. None for anything else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        let fraction = b[at + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if fraction == 0 {
            return None;
        }
        let kept = fraction.min(3);
        millis = digits(at + 1..at + 1 + kept)? * [100, 10, 1][kept - 1];
        at += 1 + fraction;
    }
    let offset_minutes = match &b[at..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let minutes = digits(at + 1..at + 3)? * 60 + digits(at + 4..at + 6)?;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[month as usize - 1]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let want = chrono::DateTime::from_timestamp_millis(ms).unwrap();
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
    fn written_timestamps_read_back() {
        for ms in [
            0,
            1_224_730_384_000,
            1_224_730_384_007,
            -86_400_000,
            4_102_444_800_123,
        ] {
            let mut buf = [0u8; 32];
            let len = format_iso8601(ms, &mut buf);
            let text = std::str::from_utf8(&buf[..len]).unwrap();
            assert_eq!(parse_rfc3339(text), Some(ms), "{text}");
        }
        assert_eq!(
            parse_rfc3339("2008-10-23T10:53:04+08:00"),
            parse_rfc3339("2008-10-23T02:53:04Z")
        );
        assert_eq!(
            parse_rfc3339("2008-10-23T02:53:04.25Z"),
            Some(1_224_730_384_250)
        );
        for bad in [
            "2008-10-23",
            "2008-13-23T02:53:04Z",
            "2008-10-23T02:53:04",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
