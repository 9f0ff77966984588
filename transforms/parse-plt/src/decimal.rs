//! Decimal numbers as PLT files write them, fast.
//!
//! Every PLT line holds five numbers, and parsing them is most of parse-plt's time. Nearly
//! all are short plain decimals (`39.984702`, `-777`, `39744.1201851852`): at most 15
//! digits, no exponent. Such a number is an integer mantissa below 2^53 divided by a power
//! of ten below 10^23, both exact in an `f64`, and one IEEE division rounds correctly, so
//! the result is bit for bit what `str::parse::<f64>` gives (Clinger's fast path, which
//! the standard library also tries first, after a more general scan). Anything else goes to
//! `str::parse`.

/// The powers of ten an `f64` holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Digits beyond which the mantissa might not be exact.
const MAX_DIGITS: usize = 15;

/// `text` as an `f64`, as `str::parse` reads it; none when it is not a number.
pub fn parse_decimal(text: &str) -> Option<f64> {
    match plain_decimal_prefix(text.as_bytes()) {
        Some((value, used)) if used == text.len() => Some(value),
        _ => text.parse().ok(),
    }
}

/// The plain decimal `[-]digits[.digits]` (at most 15 digits, at least one) that `bytes`
/// starts with, and how many bytes it takes; none when `bytes` does not start with one.
///
/// The number ends at the first byte that is neither a digit nor its first `.`, so a
/// caller parsing a line one field after the other checks the byte after it (a `,`).
pub(crate) fn plain_decimal_prefix(bytes: &[u8]) -> Option<(f64, usize)> {
    let negative = bytes.first() == Some(&b'-');
    let mut used = usize::from(negative);
    // Wrapping: a longer digit run is refused below, whatever the mantissa became.
    let (mut mantissa, mut digits, mut point) = (0u64, 0usize, None::<usize>);
    while let Some(&b) = bytes.get(used) {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
                digits += 1;
            }
            b'.' if point.is_none() => point = Some(digits),
            _ => break,
        }
        used += 1;
    }
    if digits == 0 || digits > MAX_DIGITS {
        return None;
    }
    let value = mantissa as f64 / POW10[digits - point.unwrap_or(digits)];
    Some((if negative { -value } else { value }, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_standard_library_bit_for_bit() {
        let samples = [
            "39.984702",
            "116.318417",
            "0",
            "-777",
            "492",
            "39744.1201851852",
            "-0",
            "-0.0",
            "1.",
            ".5",
            "0.1",
            "0.3",
            "123456789012345",
            "9007199254740993",
            "1234567890123456789012",
            "1e5",
            "-1.5E-3",
            "+4",
            "inf",
            "NaN",
            "",
            "-",
            ".",
            "1.2.3",
            "12a",
            "--1",
        ];
        for text in samples {
            let ours = parse_decimal(text).map(f64::to_bits);
            let std = text.parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn agrees_on_many_generated_coordinates() {
        // A deterministic spread of 1 to 15 digit decimals with 0 to 14 fraction digits.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 15) as usize;
            let mantissa = (x >> 8) % 10u64.pow(digits as u32);
            let point = (x >> 4) as usize % digits;
            let mut text = format!("{mantissa:0digits$}");
            text.insert(digits - point, '.');
            if x & 1 == 1 {
                text.insert(0, '-');
            }
            let std = text.parse::<f64>().unwrap();
            assert_eq!(
                parse_decimal(&text).map(f64::to_bits),
                Some(std.to_bits()),
                "{text:?}"
            );
        }
    }
}
