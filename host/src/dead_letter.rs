//! Dead letters: records that did not make it through the chain, with the reason why.
//!
//! Each dead letter holds the original input line (as the source read it), where it came
//! from, the cause, and the module (name and sha256 digest) that refused it; when the
//! record had already become a point, that point too. Dead-letter sinks write them as
//! NDJSON.

use serde::Serialize;

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
    pub cause: String,
    /// Whether the whole batch failed (error, trap, limit) rather than this record alone.
    pub batch_failed: bool,
    pub user: String,
    pub trajectory: String,
    pub seq: u32,
    /// The original input line, lossily decoded as UTF-8.
    pub line: String,
    /// The record as a point document, when it was one already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<serde_json::Value>,
    /// Where the source read the record, for a source that can say (Kinesis:
    /// `<shard>/<sequence number>:<sub-sequence number>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_position: Option<String>,
}

impl DeadLetter {
    /// Dead letters for records of `input` (the batch a module was given, which came from
    /// the source batch `source`), each with its own cause: `(index in input, cause)`.
    pub fn for_records<'c>(
        module: &Module,
        source: &Batch,
        input: &Batch,
        batch_failed: bool,
        records: impl Iterator<Item = (usize, &'c str)>,
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
                    cause: cause.to_string(),
                    batch_failed,
                    user,
                    trajectory,
                    seq,
                    line: lines
                        .get(&(t, seq))
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                    point,
                    source_position: None,
                }
            })
            .collect()
    }

    /// This letter with its `line` cut to at most `limit` bytes (for sinks whose records
    /// have a size limit); the cut says how long the line was.
    pub fn truncated(&self, limit: usize) -> std::borrow::Cow<'_, DeadLetter> {
        if self.line.len() <= limit {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut end = limit;
        while !self.line.is_char_boundary(end) {
            end -= 1;
        }
        let mut letter = self.clone();
        letter.line = format!(
            "{}… (truncated from {} bytes)",
            &self.line[..end],
            self.line.len()
        );
        std::borrow::Cow::Owned(letter)
    }

    /// A document a sink cannot take (too large for it): the record made it through the
    /// chain, so the letter holds the document as its `point`.
    pub fn from_sink(sink: &str, cause: String, document: serde_json::Value) -> Self {
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
            line: String::new(),
            point: Some(document),
            source_position: None,
        }
    }

    /// A record the source itself refused: it never reached a module. `source` names the
    /// source (in place of a module); `position` is where it was read.
    pub fn from_source(source: &str, cause: String, line: &[u8], position: String) -> Self {
        DeadLetter {
            module: source.to_string(),
            digest: String::new(),
            generation: 0,
            cause,
            batch_failed: false,
            user: String::new(),
            trajectory: String::new(),
            seq: 0,
            line: String::from_utf8_lossy(line).into_owned(),
            point: None,
            source_position: Some(position),
        }
    }
}
