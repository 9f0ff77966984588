//! The bits of a point's `flags`, as the WIT contract's `point-flags` defines them, and
//! their names in output documents.

/// The speed from the previous point is above the configured limit (`speed`).
pub const IMPLAUSIBLE_SPEED: u32 = 1;
/// The point is in a zone the previous point was not in (`geofence`).
pub const ZONE_ENTER: u32 = 1 << 1;
/// The previous point was in a zone this one is not in (`geofence`).
pub const ZONE_EXIT: u32 = 1 << 2;
/// The source had no valid altitude (`parse-plt`).
pub const ALTITUDE_MISSING: u32 = 1 << 3;
/// Bits 4–15: reserved for waystream's own transforms, unused so far. The host refuses a
/// point on which a module sets one, so that a later version can give them a meaning.
pub const RESERVED: u32 = 0x0000_fff0;
/// Bits 16–31: free for user transforms.
pub const USER: u32 = 0xffff_0000;

/// Names of the 32 bits as output documents spell them, in bit order.
pub const NAMES: [&str; 32] = [
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
pub fn bit(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|bit| 1 << bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bits_agree() {
        for (name, value) in [
            ("implausible_speed", IMPLAUSIBLE_SPEED),
            ("zone_enter", ZONE_ENTER),
            ("zone_exit", ZONE_EXIT),
            ("altitude_missing", ALTITUDE_MISSING),
            ("user_16", 1 << 16),
        ] {
            assert_eq!(bit(name), Some(value));
        }
        assert_eq!(bit("nope"), None);
        assert_eq!(RESERVED & USER, 0);
        assert_eq!(RESERVED | USER | 0xf, u32::MAX);
    }
}
