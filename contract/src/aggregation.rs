//! KPL record aggregation: many user records in one Kinesis record.
//!
//! The Kinesis Producer Library packs user records into one Kinesis record to get past
//! the per-record overhead and the 1,000 records/s/shard put limit. Its published format:
//! the magic bytes `F3 89 9A C2`, a protobuf `AggregatedRecord`, and the MD5 digest of
//! that protobuf as a 16-byte trailer. Consumers (KCL, and this module) give each user
//! record the Kinesis record's sequence number plus a *sub-sequence number*, its index
//! in the aggregate, and checkpoint `(sequence, sub-sequence)` pairs.
//!
//! As in KCL, a record without the magic or whose MD5 does not match is not an aggregate
//! (it may be user data that happens to start with the magic) and passes through whole;
//! one with the magic and a good MD5 that does not decode is corrupt, and the caller
//! dead-letters it. [`aggregate`] builds the format (for producers: tests, the ingest
//! Lambda and `replay`).

use md5::{Digest, Md5};
use prost::Message;

/// The first four bytes of every KPL aggregate.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// The protobuf message of the aggregate (the KPL's `messages.proto`).
#[derive(Clone, PartialEq, Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<SubRecord>,
}

/// One user record inside an aggregate.
#[derive(Clone, PartialEq, Message)]
struct SubRecord {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", required, tag = "3")]
    data: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<Tag>,
}

#[derive(Clone, PartialEq, Message)]
struct Tag {
    #[prost(string, required, tag = "1")]
    key: String,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// A user record out of an aggregate: its partition key and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user record's partition key.
    pub partition_key: String,
    /// Its data.
    pub data: Vec<u8>,
}

/// What a Kinesis record holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Deaggregated {
    /// Not an aggregate (no magic, or an MD5 mismatch): one plain record.
    Plain,
    /// The user records, in sub-sequence order.
    Records(Vec<UserRecord>),
    /// Magic and MD5 match but the content is not a valid aggregate.
    Corrupt(String),
}

/// Splits a Kinesis record's data into its user records.
pub fn deaggregate(data: &[u8]) -> Deaggregated {
    if data.len() < MAGIC.len() + DIGEST_LEN || data[..MAGIC.len()] != MAGIC {
        return Deaggregated::Plain;
    }
    let (message, digest) = data[MAGIC.len()..].split_at(data.len() - MAGIC.len() - DIGEST_LEN);
    if Md5::digest(message).as_slice() != digest {
        return Deaggregated::Plain;
    }
    let aggregate = match AggregatedRecord::decode(message) {
        Ok(aggregate) => aggregate,
        Err(e) => return Deaggregated::Corrupt(format!("KPL aggregate does not decode: {e}")),
    };
    let keys = aggregate.partition_key_table;
    let mut records = Vec::with_capacity(aggregate.records.len());
    for (sub, record) in aggregate.records.into_iter().enumerate() {
        let Some(key) = keys.get(record.partition_key_index as usize) else {
            return Deaggregated::Corrupt(format!(
                "KPL aggregate: sub-record {sub} names partition key {} of a table of {}",
                record.partition_key_index,
                keys.len()
            ));
        };
        records.push(UserRecord {
            partition_key: key.clone(),
            data: record.data,
        });
    }
    if records.is_empty() {
        return Deaggregated::Corrupt("KPL aggregate holds no records".into());
    }
    Deaggregated::Records(records)
}

/// Packs user records into one KPL aggregate (partition keys shared through the table).
pub fn aggregate<'a>(records: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut message = AggregatedRecord::default();
    for (key, data) in records {
        let index = match message.partition_key_table.iter().position(|k| k == key) {
            Some(index) => index,
            None => {
                message.partition_key_table.push(key.to_string());
                message.partition_key_table.len() - 1
            }
        };
        message.records.push(SubRecord {
            partition_key_index: index as u64,
            explicit_hash_key_index: None,
            data: data.to_vec(),
            tags: Vec::new(),
        });
    }
    frame(&message.encode_to_vec())
}

/// The Kinesis record data of an aggregate's protobuf `message`: the magic, the message
/// and its MD5.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + message.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(message);
    out.extend_from_slice(&Md5::digest(message));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_keys() {
        let data = aggregate([("a/1", &b"x"[..]), ("b/2", b"yy"), ("a/1", b"")]);
        let Deaggregated::Records(records) = deaggregate(&data) else {
            panic!("an aggregate expected");
        };
        let got: Vec<(&str, &[u8])> = records
            .iter()
            .map(|r| (r.partition_key.as_str(), r.data.as_slice()))
            .collect();
        assert_eq!(got, [("a/1", &b"x"[..]), ("b/2", b"yy"), ("a/1", b"")]);
    }

    #[test]
    fn plain_records_and_bad_digests_pass_through() {
        assert_eq!(
            deaggregate(b"39.9,116.3,0,0,1,2008-10-23,02:53:04"),
            Deaggregated::Plain
        );
        assert_eq!(deaggregate(&MAGIC), Deaggregated::Plain);
        let mut data = aggregate([("k", &b"v"[..])]);
        let last = data.len() - 1;
        data[last] ^= 1;
        assert_eq!(deaggregate(&data), Deaggregated::Plain);
    }

    #[test]
    fn a_well_signed_aggregate_that_does_not_decode_is_corrupt() {
        let sign = |body: &[u8]| {
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(body);
            data.extend_from_slice(&Md5::digest(body));
            data
        };
        assert!(matches!(
            deaggregate(&sign(&[0xFF, 0xFF, 0xFF])),
            Deaggregated::Corrupt(_)
        ));
        // A record that points past the partition key table.
        let bad_index = AggregatedRecord {
            partition_key_table: vec!["k".into()],
            explicit_hash_key_table: Vec::new(),
            records: vec![SubRecord {
                partition_key_index: 3,
                explicit_hash_key_index: None,
                data: b"v".to_vec(),
                tags: Vec::new(),
            }],
        };
        let Deaggregated::Corrupt(cause) = deaggregate(&sign(&bad_index.encode_to_vec())) else {
            panic!("corrupt expected");
        };
        assert!(cause.contains("partition key 3"), "{cause}");
    }
}
