//! The NDJSON file sink: one JSON document per line, for output and for dead letters.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{DeadLetterSink, Sink};
use crate::dead_letter::DeadLetter;
use crate::document::Encoded;

/// `type = "ndjson"`: the file to write (created, with its folder).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NdjsonConfig {
    pub path: PathBuf,
    /// Add to an existing file instead of replacing it: what a restarted host reading a
    /// checkpointed stream (Kinesis) wants, since what it acknowledged before must stay.
    #[serde(default)]
    pub append: bool,
}

/// An NDJSON file being written.
pub struct NdjsonFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl NdjsonFile {
    /// Creates (or truncates) the file.
    pub fn create(config: &NdjsonConfig, base: &Path) -> Result<Self> {
        let path = base.join(&config.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = File::options()
            .create(true)
            .write(true)
            .append(config.append)
            .truncate(!config.append)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(NdjsonFile {
            path,
            // Small on purpose: a batch of documents (hundreds of KB, already one buffer)
            // is larger and goes to the file directly instead of being copied in here;
            // dead letters, written one by one, gather in it.
            out: BufWriter::with_capacity(64 << 10, file),
        })
    }

    /// Writes the buffer out and syncs the file: what is acknowledged to a source must
    /// survive a crash of the machine, not only of the process.
    fn flush_file(&mut self) -> Result<()> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

impl Sink for NdjsonFile {
    fn write(&mut self, documents: &Encoded) -> Result<()> {
        self.out
            .write_all(&documents.bytes)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    fn flush(&mut self) -> Result<()> {
        self.flush_file()
    }
}

impl DeadLetterSink for NdjsonFile {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<()> {
        for letter in letters {
            serde_json::to_writer(&mut self.out, letter)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.flush_file()
    }
}
