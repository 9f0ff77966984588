//! The NDJSON file sink: one JSON document per line, for output and for dead letters.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::Sink;
use waystream_contract::document::Encoded;

/// `type = "ndjson"`: the file to write (created, with its folder).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NdjsonConfig {
    /// The file (relative to the config's folder).
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
    /// Where the bytes written next go in the file.
    end: u64,
    /// Where the bytes start that the kernel has not been asked to write to disk yet.
    writeback_from: u64,
}

/// Bytes written after which the sink asks the kernel to start writing them to disk,
/// without waiting: the disk then works while the pipeline computes, and the sync at a
/// flush (or at the end of a run) finds little left to write.
const WRITEBACK_EVERY: u64 = 8 << 20;

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
        let end = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        Ok(NdjsonFile {
            path,
            // Small on purpose: a batch of documents (hundreds of KB, already one buffer)
            // is larger and goes to the file directly instead of being copied in here;
            // dead letters, written one by one, gather in it.
            out: BufWriter::with_capacity(64 << 10, file),
            end,
            writeback_from: end,
        })
    }

    /// Appends `bytes`, and starts the writeback of what is in the file once there is
    /// [`WRITEBACK_EVERY`] of it.
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.end += bytes.len() as u64;
        // What the buffer still holds is not in the file yet.
        let in_file = self.end - self.out.buffer().len() as u64;
        if in_file - self.writeback_from >= WRITEBACK_EVERY {
            start_writeback(self.out.get_ref(), self.writeback_from, in_file);
            self.writeback_from = in_file;
        }
        Ok(())
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

/// Asks the kernel to start writing bytes `from..to` of `file` to disk, and returns at
/// once. Advisory: an error only means the later sync does all the work.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return;
    };
    // SAFETY: a plain syscall on an open descriptor that `file` owns; no memory is shared.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _from: u64, _to: u64) {}

impl Sink for NdjsonFile {
    fn write(&mut self, records: &Encoded) -> Result<()> {
        self.append(&records.bytes)
    }

    fn flush(&mut self) -> Result<()> {
        self.flush_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_gets_every_byte_and_writeback_follows_what_reached_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = NdjsonConfig {
            path: "out.ndjson".into(),
            append: false,
        };
        let mut sink = NdjsonFile::create(&config, dir.path()).unwrap();
        let mut expected = Vec::new();
        // Small writes stay in the buffer, large ones go to the file directly.
        for (i, size) in [10usize, 3 << 20, 100, 6 << 20, 7].into_iter().enumerate() {
            let bytes = vec![b'a' + i as u8; size];
            sink.append(&bytes).unwrap();
            expected.extend_from_slice(&bytes);
            assert_eq!(sink.end, expected.len() as u64);
            assert!(sink.writeback_from <= sink.end - sink.out.buffer().len() as u64);
        }
        assert!(
            sink.writeback_from >= WRITEBACK_EVERY,
            "writeback was started"
        );
        sink.flush().unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out.ndjson")).unwrap(),
            expected
        );

        // Appending starts counting at the end of what is there.
        let again = NdjsonFile::create(
            &NdjsonConfig {
                append: true,
                ..config
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            (again.end, again.writeback_from),
            (expected.len() as u64, expected.len() as u64)
        );
    }
}
