//! Dead letters: records that did not make it through the chain, with the reason why.
//!
//! Each dead letter holds the original input line exactly as the source read it (as
//! `line` when it is UTF-8, as `line_base64` otherwise, so no byte is lost to a
//! replacement character), where it came from, the cause, and the module (name and
//! sha256 digest) that refused it; when the record had already become a point, that point
//! too, as its output document. The pipeline encodes letters as NDJSON
//! ([`DeadLetter::encode`]), one self-contained letter per line, and hands the bytes to
//! the dead-letter sink like any other records.
//!
//! The cause is a [`Cause`]: capped and on one line. Every letter of a failed batch
//! shares the batch's one cause in memory.

use base64::Engine as _;
use waystream_contract::document::DocumentEncoder;

use crate::cause::Cause;
use crate::engine::Module;
use crate::engine::bindings::{Batch, Records};

/// One record the pipeline could not deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The module that refused or failed the record.
    pub module: String,
    /// `sha256:<hex>` of that module's component.
    pub digest: String,
    /// That module version's generation in this process (see [`Module::generation`]).
    pub generation: u64,
    /// Why: the module's rejection reason, or the whole batch's failure.
    pub cause: Cause,
    /// Whether the whole batch failed (error, trap, limit) rather than this record alone.
    pub batch_failed: bool,
    /// The record's user (empty when not known).
    pub user: String,
    /// Its trajectory.
    pub trajectory: String,
    /// Its position in the trajectory.
    pub seq: u32,
    /// The original input line.
    pub line: OriginalLine,
    /// The record as an output document (JSON, as the encoder wrote it), when it was a
    /// point already.
    pub point: Option<Vec<u8>>,
    /// Where the source read the record, for a source that can say (Kinesis:
    /// `<shard>/<sequence number>:<sub-sequence number>`; files: the file's path).
    pub source_position: Option<String>,
}

/// The bytes of an original line, written as `line` when they are UTF-8 and as
/// `line_base64` otherwise; `line_bytes` gives the whole length when a sink with a record
/// size limit had to cut them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OriginalLine {
    bytes: Vec<u8>,
    cut_from: Option<usize>,
}

impl OriginalLine {
    /// A line's bytes, exactly.
    pub fn new(bytes: &[u8]) -> Self {
        OriginalLine {
            bytes: bytes.to_vec(),
            cut_from: None,
        }
    }

    /// The bytes kept.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The line as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }
}

impl DeadLetter {
    /// Dead letters for records of `input` (the batch a module was given, which came from
    /// the source batch `source`), each with its own cause: `(index in input, cause)`.
    pub fn for_records(
        module: &Module,
        source: &Batch,
        input: &Batch,
        batch_failed: bool,
        records: impl Iterator<Item = (usize, Cause)>,
    ) -> Vec<Self> {
        // Points carry (trajectory, seq); the original line is found through the source.
        let lines = source.original_lines();
        records
            .map(|(index, cause)| {
                let (t, seq) = input.identity(index).unwrap_or((u32::MAX, u32::MAX));
                let (user, trajectory) = input
                    .trajectories
                    .get(t as usize)
                    .map(|tr| (tr.user.clone(), tr.id.clone()))
                    .unwrap_or_default();
                let point = match &input.records {
                    Records::Points(points) => points
                        .get(index)
                        .map(|p| DocumentEncoder::one(&input.trajectories, &input.zone_sets, &p)),
                    Records::Lines(_) => None,
                };
                DeadLetter {
                    module: module.name.clone(),
                    digest: module.digest.clone(),
                    generation: module.generation,
                    cause,
                    batch_failed,
                    user,
                    trajectory,
                    seq,
                    line: lines
                        .get(&(t, seq))
                        .map(|b| OriginalLine::new(b))
                        .unwrap_or_default(),
                    point,
                    source_position: None,
                }
            })
            .collect()
    }

    /// This letter with its line cut to at most `limit` bytes (for sinks whose records
    /// have a size limit); `line_bytes` then says how long the line was.
    pub fn truncated(&self, limit: usize) -> std::borrow::Cow<'_, DeadLetter> {
        if self.line.bytes.len() <= limit {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut letter = self.clone();
        letter.line.cut_from = Some(self.line.bytes.len());
        letter.line.bytes.truncate(limit);
        std::borrow::Cow::Owned(letter)
    }

    /// A document a sink cannot take (too large for it): the record made it through the
    /// chain, so the letter holds the document (without its `\n`) as its `point`; `who`
    /// is the point's (user, trajectory, seq).
    pub fn from_sink(sink: &str, cause: Cause, document: &[u8], who: (&str, &str, u32)) -> Self {
        DeadLetter {
            module: sink.to_string(),
            digest: String::new(),
            generation: 0,
            cause,
            batch_failed: false,
            user: who.0.to_string(),
            trajectory: who.1.to_string(),
            seq: who.2,
            line: OriginalLine::default(),
            point: Some(document.strip_suffix(b"\n").unwrap_or(document).to_vec()),
            source_position: None,
        }
    }

    /// A record (or a whole file) the source itself refused: it never reached a module.
    /// `source` names the source (in place of a module); `position` is where it was read.
    pub fn from_source(source: &str, cause: Cause, line: &[u8], position: String) -> Self {
        DeadLetter {
            module: source.to_string(),
            digest: String::new(),
            generation: 0,
            cause,
            batch_failed: false,
            user: String::new(),
            trajectory: String::new(),
            seq: 0,
            line: OriginalLine::new(line),
            point: None,
            source_position: Some(position),
        }
    }
}

impl DeadLetter {
    /// Appends the letter as one line of JSON (ending in `\n`) to `out`: the format every
    /// dead-letter sink stores.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let string = |text: &str, out: &mut Vec<u8>| {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, text);
        };
        out.extend_from_slice(b"{\"module\":");
        string(&self.module, out);
        out.extend_from_slice(b",\"digest\":");
        string(&self.digest, out);
        out.extend_from_slice(b",\"generation\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.generation).as_bytes());
        out.extend_from_slice(b",\"cause\":");
        string(&self.cause, out);
        out.extend_from_slice(b",\"batch_failed\":");
        out.extend_from_slice(if self.batch_failed { b"true" } else { b"false" });
        out.extend_from_slice(b",\"user\":");
        string(&self.user, out);
        out.extend_from_slice(b",\"trajectory\":");
        string(&self.trajectory, out);
        out.extend_from_slice(b",\"seq\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        match self.line.text() {
            Some(text) => {
                out.extend_from_slice(b",\"line\":");
                string(text, out);
            }
            None => {
                out.extend_from_slice(b",\"line_base64\":\"");
                let encoded = base64::engine::general_purpose::STANDARD.encode(&self.line.bytes);
                out.extend_from_slice(encoded.as_bytes());
                out.push(b'"');
            }
        }
        if let Some(len) = self.line.cut_from {
            out.extend_from_slice(b",\"line_bytes\":");
            out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
        }
        if let Some(point) = &self.point {
            // A document the encoder wrote: JSON already, copied as it is.
            out.extend_from_slice(b",\"point\":");
            out.extend_from_slice(point);
        }
        if let Some(position) = &self.source_position {
            out.extend_from_slice(b",\"source_position\":");
            string(position, out);
        }
        out.extend_from_slice(b"}\n");
    }

    /// The letter as a JSON value (for tests and `waystream test`, not the hot path).
    pub fn to_value(&self) -> serde_json::Value {
        let mut bytes = Vec::new();
        self.encode(&mut bytes);
        serde_json::from_slice(&bytes).expect("the encoder writes JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(line: &[u8]) -> DeadLetter {
        DeadLetter::from_source("source:test", Cause::host("why"), line, "here".into())
    }

    #[test]
    fn utf8_lines_are_text_and_others_base64_both_exact() {
        let text = letter(b"39.9,\xc3\xa9").to_value();
        assert_eq!(text["line"], "39.9,é");
        assert!(text.get("line_base64").is_none());
        let binary = letter(b"39.9,\xff\x00\xfe").to_value();
        assert!(binary.get("line").is_none());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(binary["line_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, b"39.9,\xff\x00\xfe");
    }

    #[test]
    fn a_letter_is_one_line_of_json_with_its_point_as_it_was() {
        let mut with_point = letter(b"x\ny");
        with_point.point = Some(br#"{"user":"u","seq":3}"#.to_vec());
        let mut bytes = Vec::new();
        with_point.encode(&mut bytes);
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        let value = with_point.to_value();
        assert_eq!(value["line"], "x\ny");
        assert_eq!(value["point"]["seq"], 3);
        assert_eq!(value["source_position"], "here");
        assert_eq!(value["batch_failed"], false);
    }

    #[test]
    fn a_cut_line_says_how_long_it_was() {
        let long = letter(&[b'x'; 100]);
        let cut = long.truncated(10).to_value();
        assert_eq!(cut["line"], "xxxxxxxxxx");
        assert_eq!(cut["line_bytes"], 100);
        let whole = long.truncated(100).to_value();
        assert!(whole.get("line_bytes").is_none());
    }
}
