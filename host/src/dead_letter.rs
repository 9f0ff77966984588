//! Dead letters: records that did not make it through the chain, with the reason why.
//!
//! Each dead letter holds the original input line exactly as the source read it (as
//! `line` when it is UTF-8, as `line_base64` otherwise, so no byte is lost to a
//! replacement character), where it came from, the cause, and the module (name and
//! sha256 digest) that refused it; when the record had already become a point, that point
//! too. Dead-letter sinks write them as NDJSON, one self-contained letter per line.
//!
//! The cause is a [`Cause`]: capped and on one line. Every letter of a failed batch
//! shares the batch's one cause in memory.

use base64::Engine as _;
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::cause::Cause;
use crate::chain::{original_lines, record_identity};
use crate::document::DocumentEncoder;
use crate::engine::Module;
use crate::engine::bindings::{Batch, Records};

/// One record the pipeline could not deliver.
#[derive(Debug, Clone, Serialize, PartialEq)]
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
    pub user: String,
    pub trajectory: String,
    pub seq: u32,
    /// The original input line.
    #[serde(flatten)]
    pub line: OriginalLine,
    /// The record as a point document, when it was one already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<serde_json::Value>,
    /// Where the source read the record, for a source that can say (Kinesis:
    /// `<shard>/<sequence number>:<sub-sequence number>`; files: the file's path).
    #[serde(skip_serializing_if = "Option::is_none")]
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

impl Serialize for OriginalLine {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => map.serialize_entry("line", text)?,
            Err(_) => map.serialize_entry(
                "line_base64",
                &base64::engine::general_purpose::STANDARD.encode(&self.bytes),
            )?,
        }
        if let Some(len) = self.cut_from {
            map.serialize_entry("line_bytes", &len)?;
        }
        map.end()
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
        let lines = original_lines(source);
        records
            .map(|(index, cause)| {
                let (t, seq) = record_identity(input, index).unwrap_or((u32::MAX, u32::MAX));
                let (user, trajectory) = input
                    .trajectories
                    .get(t as usize)
                    .map(|tr| (tr.user.clone(), tr.id.clone()))
                    .unwrap_or_default();
                let point = match &input.records {
                    Records::Points(points) => points.get(index).and_then(|p| {
                        DocumentEncoder::to_value(&input.trajectories, &input.zone_sets, &p)
                    }),
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
    /// chain, so the letter holds the document as its `point`.
    pub fn from_sink(sink: &str, cause: Cause, document: serde_json::Value) -> Self {
        let text = |key: &str| document[key].as_str().unwrap_or_default().to_string();
        DeadLetter {
            module: sink.to_string(),
            digest: String::new(),
            generation: 0,
            cause,
            batch_failed: false,
            user: text("user"),
            trajectory: text("trajectory"),
            seq: document["seq"].as_u64().unwrap_or_default() as u32,
            line: OriginalLine::default(),
            point: Some(document),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(line: &[u8]) -> DeadLetter {
        DeadLetter::from_source("source:test", Cause::host("why"), line, "here".into())
    }

    #[test]
    fn utf8_lines_are_text_and_others_base64_both_exact() {
        let text: serde_json::Value = serde_json::to_value(letter(b"39.9,\xc3\xa9")).unwrap();
        assert_eq!(text["line"], "39.9,é");
        assert!(text.get("line_base64").is_none());
        let binary: serde_json::Value = serde_json::to_value(letter(b"39.9,\xff\x00\xfe")).unwrap();
        assert!(binary.get("line").is_none());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(binary["line_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, b"39.9,\xff\x00\xfe");
    }

    #[test]
    fn a_cut_line_says_how_long_it_was() {
        let long = letter(&[b'x'; 100]);
        let cut = serde_json::to_value(long.truncated(10).as_ref()).unwrap();
        assert_eq!(cut["line"], "xxxxxxxxxx");
        assert_eq!(cut["line_bytes"], 100);
        let whole = serde_json::to_value(long.truncated(100).as_ref()).unwrap();
        assert!(whole.get("line_bytes").is_none());
    }
}
