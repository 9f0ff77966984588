//! The files source: PLT files under a folder.
//!
//! It finds every `*.plt` file under `path` (recursively, in sorted order), skips each
//! file's header lines (six in the Geolife format) and emits the remaining lines as raw
//! records, `seq` numbering them from 0 within the file. User and trajectory come from the
//! path: in the Geolife layout `Data/<user>/Trajectory/<trajectory>.plt`; elsewhere the
//! user is the file's folder name. Lines end in LF, CRLF, CR alone or `\r\r\n`; the line
//! end is stripped (see [`waystream_contract::plt::LineSplitter`]).
//!
//! A file that gives no record at all (it ends inside its header, or has a header and
//! nothing after it) becomes one dead letter of its own, naming the file: no file
//! vanishes without a trace. The closing summary counts the files read, those without
//! points, and the bytes that went into no record (headers and line ends).
//!
//! With `follow = true` it keeps watching the folder after the files there are read,
//! reads new ones as they arrive and runs until stopped, recording the files it has read
//! in a checkpoint file so a restart does not read them again (see [`super::follow`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use waystream_contract::plt::{self, LineSplitter};

use super::follow::{DEFAULT_CHECKPOINT, Follow};
use super::{Source, SourceBatch};
use crate::cause::Cause;
use crate::dead_letter::DeadLetter;
use crate::engine::bindings::{Batch, RawLines, Records, Trajectory};

/// `[source]` with `type = "files"`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
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
    /// Keep watching `path` after the files there are read, read new files as they
    /// arrive (once complete), and run until stopped.
    #[serde(default)]
    pub follow: bool,
    /// Follow mode: the file listing the files read, so a restart skips them (default
    /// `.waystream-read` in `path`).
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
}

impl FilesSourceConfig {
    /// The Geolife layout's PLT files under `path` (or the one file `path`), read once.
    pub fn plt(path: impl Into<PathBuf>) -> Self {
        FilesSourceConfig {
            path: path.into(),
            header_lines: default_header_lines(),
            extension: default_extension(),
            follow: false,
            checkpoint: None,
        }
    }
}

fn default_header_lines() -> usize {
    plt::HEADER_LINES
}

fn default_extension() -> String {
    "plt".into()
}

/// The name dead letters give this source in place of a module.
const SOURCE_NAME: &str = "source:files";
/// Bytes of a file a file-level dead letter keeps (the file stays where it is).
const LETTER_BYTES: usize = 64 << 10;

/// How long a following source waits for a new file before it returns an empty batch
/// (so the pipeline can apply reloads and see a stop).
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Reads PLT files one after another into batches of at most `batch_size` lines.
pub struct FilesSource {
    files: VecDeque<PathBuf>,
    /// Follow mode: the watcher and the files-read checkpoint.
    follow: Option<Follow>,
    /// Files whose last record (or file-level letter) is in the batch being made.
    finished: Vec<PathBuf>,
    total_bytes: u64,
    bytes_read: u64,
    batch_size: usize,
    header_lines: usize,
    current: Option<OpenFile>,
    counts: FileCounts,
}

/// What the source has read, for the summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FileCounts {
    files: u64,
    files_without_points: u64,
    /// Bytes in headers and line ends: everything read that is in no record.
    bytes_outside_records: u64,
}

/// The file being read: its whole content and a cursor.
struct OpenFile {
    path: PathBuf,
    trajectory: Trajectory,
    content: Vec<u8>,
    /// Where the next line starts, and, past a run of lone CRs, where that run ends (the
    /// splitter's state, kept between batches).
    splitter_at: usize,
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
        let mut follow = match config.follow {
            true => {
                let checkpoint = config
                    .checkpoint
                    .as_ref()
                    .map_or_else(|| root.join(DEFAULT_CHECKPOINT), |c| base.join(c));
                Some(Follow::start(&root, &config.extension, &checkpoint)?)
            }
            false => None,
        };
        let mut files = VecDeque::new();
        let mut total_bytes = 0;
        for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let entry =
                entry.with_context(|| format!("files source: listing {}", root.display()))?;
            let is_match = entry
                .path()
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case(&config.extension));
            if entry.file_type().is_file()
                && is_match
                && follow.as_mut().is_none_or(|f| f.is_new(entry.path()))
            {
                total_bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.push_back(entry.into_path());
            }
        }
        if files.is_empty() && follow.is_none() {
            tracing::warn!(path = %root.display(), "files source: no .{} files found", config.extension);
        }
        Ok(FilesSource {
            files,
            follow,
            finished: Vec::new(),
            total_bytes,
            bytes_read: 0,
            batch_size: batch_size.max(1),
            header_lines: config.header_lines,
            current: None,
            counts: FileCounts::default(),
        })
    }

    /// Opens the next file and skips its header. `Ok(None)` at the end of the input;
    /// `Ok(Some(letter))` for a file that holds no record.
    fn open_next(&mut self) -> Result<Option<Option<DeadLetter>>> {
        let Some(path) = self.files.pop_front() else {
            return Ok(None);
        };
        let content = std::fs::read(&path)
            .with_context(|| format!("files source: reading {}", path.display()))?;
        self.bytes_read += content.len() as u64;
        self.counts.files += 1;
        let (user, id) = plt::trajectory_of_path(&path);
        let mut splitter = LineSplitter::new(&content);
        let header = splitter.skip_lines(self.header_lines);
        let body_at = splitter.position();
        self.counts.bytes_outside_records += body_at as u64;
        if splitter.next().is_none() {
            self.counts.files_without_points += 1;
            let why = if header < self.header_lines {
                format!(
                    "the file ends inside its header ({header} of {} lines): it holds no point",
                    self.header_lines
                )
            } else {
                "the file has its header and no point line after it".to_string()
            };
            tracing::warn!(file = %path.display(), "{why}");
            let mut letter = DeadLetter::from_source(
                SOURCE_NAME,
                Cause::host(why),
                &content,
                path.display().to_string(),
            )
            .truncated(LETTER_BYTES)
            .into_owned();
            letter.user = user;
            letter.trajectory = id;
            self.finished.push(path);
            return Ok(Some(Some(letter)));
        }
        self.current = Some(OpenFile {
            path,
            trajectory: Trajectory { user, id },
            content,
            splitter_at: body_at,
            next_seq: 0,
        });
        Ok(Some(None))
    }
}

impl FilesSource {
    /// Following: queues the files that arrive within [`IDLE_WAIT`]; true when some did.
    /// Not following: false at once (the input has ended).
    fn wait_for_files(&mut self) -> bool {
        let Some(follow) = &mut self.follow else {
            return false;
        };
        let arrived = follow.poll(IDLE_WAIT);
        for path in &arrived {
            self.total_bytes += std::fs::metadata(path).map_or(0, |m| m.len());
            tracing::info!(file = %path.display(), "files source: new file");
        }
        self.files.extend(arrived);
        !self.files.is_empty()
    }
}

impl Source for FilesSource {
    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let mut raw = RawLines::with_capacity(self.batch_size, self.batch_size * 64);
        let mut trajectories: Vec<Trajectory> = Vec::new();
        let mut rejected = Vec::new();
        while raw.len() < self.batch_size {
            let Some(file) = &mut self.current else {
                match self.open_next()? {
                    Some(Some(letter)) => rejected.push(letter),
                    Some(None) => {}
                    None if raw.is_empty() && rejected.is_empty() && self.wait_for_files() => {}
                    None => break,
                }
                continue;
            };
            // The splitter restarts where the last batch left the file; a run of lone CRs
            // cut by a batch boundary is looked at again, once.
            let mut splitter = LineSplitter::new(&file.content);
            splitter.seek(file.splitter_at);
            let mut pushed = false;
            if trajectories.last() != Some(&file.trajectory) {
                trajectories.push(file.trajectory.clone());
            }
            let trajectory = trajectories.len() as u32 - 1;
            while raw.len() < self.batch_size {
                let Some(line) = splitter.next() else { break };
                raw.push(splitter.text(line), trajectory, file.next_seq);
                self.counts.bytes_outside_records += (line.next - line.end) as u64;
                file.next_seq += 1;
                pushed = true;
            }
            file.splitter_at = splitter.position();
            if !pushed {
                trajectories.pop();
            }
            if file.splitter_at >= file.content.len() {
                let done = self.current.take().map(|f| f.path);
                self.finished.extend(done);
            }
        }
        if raw.is_empty() && rejected.is_empty() && self.follow.is_none() {
            return Ok(None);
        }
        let finished = std::mem::take(&mut self.finished);
        let ack = match &self.follow {
            Some(follow) if !finished.is_empty() => Some(follow.acknowledge(finished)),
            _ => None,
        };
        Ok(Some(SourceBatch {
            batch: Batch {
                trajectories,
                zone_sets: Vec::new(),
                records: Records::Lines(raw),
            },
            rejected,
            ack,
            state: Default::default(),
        }))
    }

    fn total_bytes(&self) -> Option<u64> {
        // Following, the input has no end.
        self.follow.is_none().then_some(self.total_bytes)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("files read", self.counts.files),
            ("files no point", self.counts.files_without_points),
            // Headers and line ends: bytes read that are in no record.
            ("bytes skipped", self.counts.bytes_outside_records),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (trajectory id, seq, line) the source gives, and its file-level letters.
    fn read_all(dir: &Path, batch_size: usize) -> (Vec<(String, u32, String)>, Vec<DeadLetter>) {
        let config = FilesSourceConfig::plt(dir);
        let mut source = FilesSource::open(&config, Path::new("."), batch_size).unwrap();
        let (mut got, mut letters) = (Vec::new(), Vec::new());
        while let Some(batch) = source.next_batch().unwrap() {
            assert!(batch.batch.len() <= batch_size);
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
            letters.extend(batch.rejected);
        }
        assert_eq!(source.bytes_read(), source.total_bytes().unwrap());
        (got, letters)
    }

    fn triples(want: &[(&str, u32, &str)]) -> Vec<(String, u32, String)> {
        want.iter()
            .map(|(t, s, l)| (t.to_string(), *s, l.to_string()))
            .collect()
    }

    #[test]
    fn splits_every_line_end_skips_headers_and_numbers_lines() {
        let dir = tempfile::tempdir().unwrap();
        let header = "h1\r\nh2\r\nh3\r\nh4\r\nh5\r\nh6\r\n";
        std::fs::write(
            dir.path().join("a.plt"),
            format!("{header}l0\r\nl1\r\n\r\nl3"),
        )
        .unwrap();
        std::fs::write(dir.path().join("b.plt"), "h1\nh2\nh3\nh4\nh5\nh6\nm0\n").unwrap();
        std::fs::write(dir.path().join("c.plt"), "h1\rh2\rh3\rh4\rh5\rh6\rn0\rn1\r").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "x\n").unwrap();
        let (got, letters) = read_all(dir.path(), 3);
        assert_eq!(
            got,
            triples(&[
                ("a", 0, "l0"),
                ("a", 1, "l1"),
                ("a", 2, ""),
                ("a", 3, "l3"),
                ("b", 0, "m0"),
                ("c", 0, "n0"),
                ("c", 1, "n1"),
            ])
        );
        assert!(letters.is_empty());
    }

    #[test]
    fn files_without_points_become_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Data/007/Trajectory");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("short.plt"), "h1\nh2\n").unwrap();
        std::fs::write(path.join("header-only.plt"), plt::HEADER).unwrap();
        std::fs::write(path.join("empty.plt"), "").unwrap();
        let (got, letters) = read_all(dir.path(), 10);
        assert!(got.is_empty());
        let causes: Vec<(&str, &str)> = letters
            .iter()
            .map(|l| (l.trajectory.as_str(), l.cause.as_str()))
            .collect();
        assert_eq!(
            causes,
            [
                (
                    "empty",
                    "the file ends inside its header (0 of 6 lines): it holds no point"
                ),
                (
                    "header-only",
                    "the file has its header and no point line after it"
                ),
                (
                    "short",
                    "the file ends inside its header (2 of 6 lines): it holds no point"
                ),
            ]
        );
        assert!(letters.iter().all(|l| l.user == "007"
            && l.module == SOURCE_NAME
            && l.source_position.as_ref().unwrap().ends_with(".plt")));
        assert_eq!(letters[2].line.bytes(), b"h1\nh2\n");
    }

    #[test]
    fn the_summary_counts_files_and_bytes_outside_records() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.plt"), format!("{}x\r\ny", plt::HEADER)).unwrap();
        std::fs::write(dir.path().join("b.plt"), "h\n").unwrap();
        let config = FilesSourceConfig::plt(dir.path());
        let mut source = FilesSource::open(&config, Path::new("."), 100).unwrap();
        while source.next_batch().unwrap().is_some() {}
        assert_eq!(
            source.counters(),
            [
                ("files read", 2),
                ("files no point", 1),
                ("bytes skipped", (plt::HEADER.len() + 2 + 2) as u64),
            ]
        );
    }
}
