//! How a point line travels in a Kinesis record.
//!
//! One user record per PLT point line: the partition key is `<user>/<trajectory>` (so a
//! trajectory stays on one shard, in order), the data is the line's `seq` in decimal, a
//! tab, and the line as it was in the file (without its terminator):
//!
//! ```text
//! partition key  "021/20081023025304"
//! data           "0\t39.984702,116.318417,0,492,39744.1201851852,2008-10-23,02:53:04"
//! ```
//!
//! The `seq` travels with the line because nothing else would survive a replay: it makes
//! `point_id` the same however often a record is delivered. Producers (the ingest Lambda,
//! `waystream replay`, tests) use [`encode`]; the Kinesis source uses [`decode`].

/// The partition key of a trajectory's records.
pub fn partition_key(user: &str, trajectory: &str) -> String {
    format!("{user}/{trajectory}")
}

/// The 128-bit hash key Kinesis derives from a partition key (its MD5, big-endian): the
/// record goes to the open shard whose hash key range holds it. A consumer uses it to
/// tell which trajectories a shard carries.
#[cfg(feature = "kpl")]
pub fn hash_key(partition_key: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Appends a record's data for line `seq` to `out`.
pub fn encode(seq: u32, line: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(seq.to_string().as_bytes());
    out.push(b'\t');
    out.extend_from_slice(line);
}

/// A decoded record: who, which point, and the line.
#[derive(Debug, PartialEq, Eq)]
pub struct LineRecord<'a> {
    /// The user, from the partition key.
    pub user: &'a str,
    /// The trajectory, from the partition key.
    pub trajectory: &'a str,
    /// The line's position in its trajectory.
    pub seq: u32,
    /// The PLT line as it was in the file.
    pub line: &'a [u8],
}

/// Reads a record back; the error says what is wrong with it.
pub fn decode<'a>(partition_key: &'a str, data: &'a [u8]) -> Result<LineRecord<'a>, String> {
    let (user, trajectory) = partition_key
        .split_once('/')
        .filter(|(user, trajectory)| !user.is_empty() && !trajectory.is_empty())
        .ok_or_else(|| format!("partition key {partition_key:?} is not <user>/<trajectory>"))?;
    let tab = data
        .iter()
        .position(|&b| b == b'\t')
        .ok_or("record data has no tab after the sequence number (expected <seq>\\t<PLT line>)")?;
    let seq = std::str::from_utf8(&data[..tab])
        .ok()
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| {
            format!(
                "record sequence number {:?} is not a number below 2^32",
                String::from_utf8_lossy(&data[..tab])
            )
        })?;
    Ok(LineRecord {
        user,
        trajectory,
        seq,
        line: &data[tab + 1..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "kpl")]
    #[test]
    fn the_hash_key_is_the_big_endian_md5_of_the_partition_key() {
        // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72 (RFC 1321's test suite).
        assert_eq!(hash_key("abc"), 0x900150983cd24fb0d6963f7d28e17f72);
    }

    #[test]
    fn round_trip() {
        let mut data = Vec::new();
        encode(
            17,
            b"39.9,116.3,0,492,39744.1,2008-10-23,02:53:04",
            &mut data,
        );
        let key = partition_key("021", "20081023025304");
        let record = decode(&key, &data).unwrap();
        assert_eq!(
            record,
            LineRecord {
                user: "021",
                trajectory: "20081023025304",
                seq: 17,
                line: b"39.9,116.3,0,492,39744.1,2008-10-23,02:53:04",
            }
        );
    }

    #[test]
    fn malformed_records_say_why() {
        assert!(
            decode("no-slash", b"1\tx")
                .unwrap_err()
                .contains("partition key")
        );
        assert!(decode("/t", b"1\tx").unwrap_err().contains("partition key"));
        assert!(decode("u/t", b"no tab").unwrap_err().contains("no tab"));
        assert!(
            decode("u/t", b"-1\tx")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            decode("u/t", b"4294967296\tx")
                .unwrap_err()
                .contains("not a number")
        );
        assert_eq!(decode("u/t/x", b"0\t").unwrap().trajectory, "t/x");
    }
}
