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

/// The plain decimal `[-]digits[.digits]` (at least one digit, at most 15, at most eight of
/// them before the point) that `bytes` starts with, and how many bytes it takes; none when
/// `bytes` does not start with one (callers then use the standard library's reader).
///
/// The number ends at the first byte that is neither a digit nor its first `.`, so a
/// caller parsing a line one field after the other checks the byte after it (a `,`).
#[inline(always)]
pub(crate) fn plain_decimal_prefix(bytes: &[u8]) -> Option<(f64, usize)> {
    let negative = bytes.first() == Some(&b'-');
    let start = usize::from(negative);
    // PLT whole parts are short (1 to 5 digits), fraction parts long (6 to 10): eight
    // digits at a time pays off only on the long ones (measured: on whole parts too, the
    // native build was a quarter slower, the Wasm one a tenth slower than this split).
    let (whole, whole_digits) = short_digit_run(&bytes[start..], 0);
    let mut used = start + whole_digits;
    if bytes.get(used).is_some_and(u8::is_ascii_digit) {
        return None; // more than eight whole digits: not for this fast reader
    }
    let (mut mantissa, mut fraction_digits) = (whole, 0);
    if bytes.get(used) == Some(&b'.') {
        (mantissa, fraction_digits) = long_digit_run(&bytes[used + 1..], whole);
        used += 1 + fraction_digits;
    }
    let digits = whole_digits + fraction_digits;
    if digits == 0 || digits > MAX_DIGITS {
        return None;
    }
    let value = mantissa as f64 / POW10[fraction_digits];
    Some((if negative { -value } else { value }, used))
}

/// The first (up to eight) digits `bytes` starts with, appended to `value`: (the new
/// value, how many digits), a byte at a time in a loop of fixed length, which the compiler
/// unrolls: no loop left for Wasm to check the deadline in.
#[inline(always)]
fn short_digit_run(bytes: &[u8], mut value: u64) -> (u64, usize) {
    for used in 0..8 {
        match bytes.get(used).filter(|b| b.is_ascii_digit()) {
            Some(&b) => value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0')),
            None => return (value, used),
        }
    }
    (value, 8)
}

/// [`short_digit_run`], eight bytes at a time where eight are left (SWAR: the digit test
/// and the conversion are a few 64-bit operations for all eight), for at most two rounds
/// of eight: no loop, so in Wasm nothing to check a deadline in. Sixteen digits are more
/// than a plain decimal may have, so a longer run is refused anyway (by the caller's digit
/// count, or by what follows the sixteenth digit).
#[inline(always)]
fn long_digit_run(bytes: &[u8], value: u64) -> (u64, usize) {
    let (value, used) = swar_step(bytes, value, 0);
    if used < 8 {
        return (value, used);
    }
    swar_step(bytes, value, 8)
}

/// The digits among the eight bytes at `used` appended to `value`, with the new count; a
/// byte at a time when fewer than eight bytes are left.
#[inline(always)]
fn swar_step(bytes: &[u8], value: u64, used: usize) -> (u64, usize) {
    let Some(chunk) = bytes.get(used..used + 8) else {
        let (value, tail) = short_digit_run(&bytes[used..], value);
        return (value, used + tail);
    };
    let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
    let n = leading_digits(word);
    if n == 0 {
        return (value, used);
    }
    // The n digits, as byte values, moved to the end of the word (leading zeros).
    let digit_values = word.wrapping_sub(0x3030_3030_3030_3030) << (8 * (8 - n));
    let value = value
        .wrapping_mul(POW10_INT[n])
        .wrapping_add(eight_digits(digit_values));
    (value, used + n)
}

/// Powers of ten for the digit counts of one SWAR step.
const POW10_INT: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// How many of the eight bytes of `word` (first byte lowest) are ASCII digits before the
/// first one that is not.
#[inline(always)]
fn leading_digits(word: u64) -> usize {
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    // A digit is 0x30..=0x39: its high nibble is 3, and still 3 after adding 6. A carry
    // out of a byte (only from bytes >= 0xfa) reaches later bytes only, past the first
    // non-digit, so the count stays right.
    let not_digit = ((word & HIGH_NIBBLES) ^ THREES)
        | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) ^ THREES);
    (not_digit.trailing_zeros() / 8) as usize
}

/// The number written by eight digit values (0..=9, one per byte, first byte most
/// significant): pairs, then fours, then all eight, by multiplication.
#[inline(always)]
fn eight_digits(digits: u64) -> u64 {
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
    let low = (pairs & 0x0000_00ff_0000_00ff).wrapping_mul(100 + (1_000_000 << 32));
    let high = ((pairs >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(1 + (10_000 << 32));
    low.wrapping_add(high) >> 32
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
    fn digit_runs_match_a_byte_at_a_time_reading() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Up to 20 bytes, mostly digits, sometimes another byte (any value).
            let text: Vec<u8> = (0..(x % 21))
                .map(|i| {
                    let r = x.rotate_left(i as u32 * 3);
                    if r.is_multiple_of(7) {
                        (r >> 8) as u8
                    } else {
                        b'0' + (r >> 8) as u8 % 10
                    }
                })
                .collect();
            let run = text.iter().take_while(|b| b.is_ascii_digit()).count();
            let read = |n: usize| {
                text[..n].iter().fold(7u64, |v, &b| {
                    v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
                })
            };
            assert_eq!(
                short_digit_run(&text, 7),
                (read(run.min(8)), run.min(8)),
                "{text:?}"
            );
            // Eight at a time, two rounds: at most sixteen where sixteen bytes are left.
            let long = if text.len() >= 16 { run.min(16) } else { run };
            assert_eq!(long_digit_run(&text, 7), (read(long), long), "{text:?}");
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
