//! Calendar date and time of day to epoch milliseconds, without a date library.
//!
//! Guests stay small and fast: this is the one piece of calendar arithmetic parse-plt
//! needs (days from a proleptic Gregorian date, after Howard Hinnant's `days_from_civil`).

/// Why a date or time field is not valid.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseTimeError(pub String);

impl std::fmt::Display for ParseTimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `YYYY-MM-DD` and `HH:MM:SS` (UTC) to milliseconds since the Unix epoch. The year has
/// four digits and is not 0000 (a two-digit year is ambiguous, and GPS did not exist in
/// year 0); month, day, hour, minute and second have one or two.
pub fn parse_date_time_ms(date: &str, time: &str) -> Result<i64, ParseTimeError> {
    let bad = |why: &str| {
        ParseTimeError(format!(
            "{} {}: {why}",
            crate::quoted_prefix(date),
            crate::quoted_prefix(time)
        ))
    };
    let [year, month, day] =
        split3(date, b'-', [4, 2, 2]).ok_or_else(|| bad("the date is not YYYY-MM-DD"))?;
    if date.split('-').next().is_some_and(|y| y.len() != 4) {
        return Err(bad("the year must have four digits"));
    }
    if year == 0 {
        return Err(bad("year 0000 is no year"));
    }
    let [hour, minute, second] =
        split3(time, b':', [2, 2, 2]).ok_or_else(|| bad("the time is not HH:MM:SS"))?;
    epoch_ms([year, month, day], [hour, minute, second])
        .ok_or_else(|| bad("no such date or time of day"))
}

/// A calendar date and time of day (UTC) as milliseconds since the Unix epoch; none when
/// the date does not exist, the year is 0 or the time is out of range.
#[inline(always)]
pub(crate) fn epoch_ms(
    [year, month, day]: [i64; 3],
    [hour, minute, second]: [i64; 3],
) -> Option<i64> {
    if year == 0
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000)
}

/// Three unsigned decimal numbers of 1 to `digits[i]` digits separated by `sep`.
fn split3(s: &str, sep: u8, digits: [usize; 3]) -> Option<[i64; 3]> {
    let mut out = [0i64; 3];
    let mut parts = s.as_bytes().split(|&b| b == sep);
    for (slot, most) in out.iter_mut().zip(digits) {
        let part = parts.next()?;
        if part.is_empty() || part.len() > most {
            return None;
        }
        *slot = part.iter().try_fold(0i64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })?;
    }
    parts.next().is_none().then_some(out)
}

#[inline(always)]
fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

#[inline(always)]
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
#[inline(always)]
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
