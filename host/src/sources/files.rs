//! The files source: PLT files under a folder.
//!
//! It finds every `*.plt` file under `path` (recursively, in sorted order), skips each
//! file's header lines (six in the Geolife format) and emits the remaining lines as raw
//! records, `seq` numbering them from 0 within the file. User and trajectory come from the
//! path: in the Geolife layout `Data/<user>/Trajectory/<trajectory>.plt`; elsewhere the
//! user is the file's folder name. Lines end in LF or CRLF; the terminator is stripped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{Source, SourceBatch};
use crate::engine::bindings::{Batch, RawLines, Records, Trajectory};

/// `[source]` with `type = "files"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilesSourceConfig {
    /// A folder (searched recursively) or one file.
    pub path: PathBuf,
    /// Lines to skip at the top of each file.
    #[serde(default = "default_header_lines")]
    pub header_lines: usize,
    /// File extension to read.
    #[serde(default = "default_extension")]
    pub extension: String,
}

fn default_header_lines() -> usize {
    6
}

fn default_extension() -> String {
    "plt".into()
}

/// Reads PLT files one after another into batches of at most `batch_size` lines.
pub struct FilesSource {
    files: std::vec::IntoIter<PathBuf>,
    total_bytes: u64,
    bytes_read: u64,
    batch_size: usize,
    header_lines: usize,
    current: Option<OpenFile>,
}

/// The file being read: its whole content and a cursor.
struct OpenFile {
    trajectory: Trajectory,
    content: Vec<u8>,
    pos: usize,
    next_seq: u32,
}

impl FilesSource {
    /// Lists the files; reading starts with the first [`Source::next_batch`].
    pub fn open(config: &FilesSourceConfig, base: &Path, batch_size: usize) -> Result<Self> {
        let root = base.join(&config.path);
        anyhow::ensure!(
            root.exists(),
            "files source: {} does not exist",
            root.display()
        );
        let mut files = Vec::new();
        let mut total_bytes = 0;
        for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let entry =
                entry.with_context(|| format!("files source: listing {}", root.display()))?;
            let is_match = entry
                .path()
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case(&config.extension));
            if entry.file_type().is_file() && is_match {
                total_bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.push(entry.into_path());
            }
        }
        if files.is_empty() {
            tracing::warn!(path = %root.display(), "files source: no .{} files found", config.extension);
        }
        Ok(FilesSource {
            files: files.into_iter(),
            total_bytes,
            bytes_read: 0,
            batch_size: batch_size.max(1),
            header_lines: config.header_lines,
            current: None,
        })
    }

    /// Opens the next file, skipping its header. False at the end of the input.
    fn open_next(&mut self) -> Result<bool> {
        let Some(path) = self.files.next() else {
            return Ok(false);
        };
        let content = std::fs::read(&path)
            .with_context(|| format!("files source: reading {}", path.display()))?;
        self.bytes_read += content.len() as u64;
        let mut file = OpenFile {
            trajectory: trajectory_of(&path),
            content,
            pos: 0,
            next_seq: 0,
        };
        for skipped in 0..self.header_lines {
            if file.next_line().is_none() {
                tracing::warn!(file = %path.display(), "file ends inside its header ({skipped} of {} lines)", self.header_lines);
                break;
            }
        }
        self.current = Some(file);
        Ok(true)
    }
}

impl OpenFile {
    /// The next line without its terminator, or none at the end of the file.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        if self.pos >= self.content.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.content[start..];
        let (mut end, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (start + i, start + i + 1),
            None => (self.content.len(), self.content.len()),
        };
        if end > start && self.content[end - 1] == b'\r' {
            end -= 1;
        }
        self.pos = next;
        Some((start, end))
    }
}

impl Source for FilesSource {
    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let mut raw = RawLines::with_capacity(self.batch_size, self.batch_size * 64);
        let mut trajectories: Vec<Trajectory> = Vec::new();
        while raw.len() < self.batch_size {
            let Some(file) = &mut self.current else {
                if self.open_next()? {
                    continue;
                }
                break;
            };
            let Some((start, end)) = file.next_line() else {
                self.current = None;
                continue;
            };
            if trajectories.last() != Some(&file.trajectory) {
                trajectories.push(file.trajectory.clone());
            }
            let trajectory = trajectories.len() as u32 - 1;
            raw.push(&file.content[start..end], trajectory, file.next_seq);
            file.next_seq += 1;
        }
        if raw.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            Batch {
                trajectories,
                zone_sets: Vec::new(),
                records: Records::Lines(raw),
            }
            .into(),
        ))
    }

    fn total_bytes(&self) -> Option<u64> {
        Some(self.total_bytes)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

/// User and trajectory of a PLT file from its path.
pub fn trajectory_of(path: &Path) -> Trajectory {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let parent = path.parent();
    let user = if parent
        .and_then(Path::file_name)
        .is_some_and(|n| n == "Trajectory")
    {
        name(parent.and_then(Path::parent))
    } else {
        name(parent)
    };
    Trajectory {
        user,
        id: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_trajectory_from_the_path() {
        let t = trajectory_of(Path::new("/x/Data/021/Trajectory/20081023025304.plt"));
        assert_eq!((t.user.as_str(), t.id.as_str()), ("021", "20081023025304"));
        let t = trajectory_of(Path::new("/x/walks/morning.plt"));
        assert_eq!((t.user.as_str(), t.id.as_str()), ("walks", "morning"));
    }

    #[test]
    fn splits_crlf_and_lf_skips_headers_and_numbers_lines() {
        let dir = tempfile::tempdir().unwrap();
        let header = "h1\r\nh2\r\nh3\r\nh4\r\nh5\r\nh6\r\n";
        std::fs::write(
            dir.path().join("a.plt"),
            format!("{header}l0\r\nl1\r\n\r\nl3"),
        )
        .unwrap();
        std::fs::write(dir.path().join("b.plt"), "h1\nh2\nh3\nh4\nh5\nh6\nm0\n").unwrap();
        std::fs::write(dir.path().join("short.plt"), "h1\nh2\n").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "x\n").unwrap();
        let config = FilesSourceConfig {
            path: dir.path().into(),
            header_lines: 6,
            extension: "plt".into(),
        };
        let mut source = FilesSource::open(&config, Path::new("."), 3).unwrap();
        let mut got = Vec::new();
        while let Some(batch) = source.next_batch().unwrap() {
            assert!(batch.batch.len() <= 3);
            let Records::Lines(raw) = &batch.batch.records else {
                panic!("lines expected")
            };
            for (bytes, trajectory, seq) in raw.iter() {
                got.push((
                    batch.batch.trajectories[trajectory as usize].id.clone(),
                    seq,
                    String::from_utf8(bytes.to_vec()).unwrap(),
                ));
            }
        }
        let want: Vec<(String, u32, String)> = [
            ("a", 0, "l0"),
            ("a", 1, "l1"),
            ("a", 2, ""),
            ("a", 3, "l3"),
            ("b", 0, "m0"),
        ]
        .iter()
        .map(|(t, s, l)| (t.to_string(), *s, l.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(source.bytes_read(), source.total_bytes().unwrap());
    }
}
