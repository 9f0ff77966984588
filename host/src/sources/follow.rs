//! Follow mode of the files source: keep watching the folder, read new files as they
//! arrive, remember which files were read.
//!
//! This is what Spark's file stream source does, and what makes the local pipeline a
//! streaming one: `waystream synth` or `cp` into the folder and points flow.
//!
//! * **Complete files only.** A file is read once a close-after-write or a rename into
//!   place has been followed by [`QUIET`] without writes (see
//!   [`FileWatcher::for_tree`](crate::watch::FileWatcher::for_tree)): a file being
//!   copied slowly is not read half-way. A writer that closes and reopens a file to append
//!   more is not supported: write elsewhere and rename into place.
//! * **Read once.** The checkpoint file lists the files read (one path per line, relative
//!   to the folder). A file is added to it once everything that came of it (documents and
//!   dead letters) is durable in the sinks: the source attaches the line to the batch that
//!   holds the file's last line, and the pipeline acknowledges batches after flushing. A
//!   restart skips the files listed; a file cut off by a crash is read again whole (its
//!   points carry the same `point_id`s). A file changed after it was read is not read
//!   again.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use super::Acknowledgement;
use crate::watch::{Change, FileWatcher};

/// How long a file must be left alone after its last write before it is read.
pub const QUIET: Duration = Duration::from_millis(300);
/// The checkpoint file's name in the folder, when the config names none.
pub const DEFAULT_CHECKPOINT: &str = ".waystream-read";

/// The watcher and the record of files read.
pub struct Follow {
    root: PathBuf,
    watcher: FileWatcher,
    /// Files listed, queued or read: each is read at most once per run.
    known: HashSet<PathBuf>,
    checkpoint: Arc<Mutex<Checkpoint>>,
}

/// The checkpoint file, appended to as files are acknowledged.
struct Checkpoint {
    path: PathBuf,
    file: std::fs::File,
}

impl Follow {
    /// Starts watching `root` for files with `extension` (before the caller lists it, so no
    /// file falls between the listing and the watch) and reads the checkpoint file
    /// (`checkpoint`, relative paths under `root`; created when missing).
    pub fn start(root: &Path, extension: &str, checkpoint: &Path) -> Result<Self> {
        let watcher = FileWatcher::for_tree(root, extension, QUIET)?;
        let root = crate::watch::absolute(root)?;
        let text = match std::fs::read_to_string(checkpoint) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", checkpoint.display()));
            }
        };
        let known: HashSet<PathBuf> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| root.join(l))
            .collect();
        if let Some(folder) = checkpoint.parent().filter(|f| !f.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(checkpoint)
            .with_context(|| format!("opening {}", checkpoint.display()))?;
        if !known.is_empty() {
            tracing::info!(
                checkpoint = %checkpoint.display(),
                files = known.len(),
                "files source: skipping the files read before"
            );
        }
        Ok(Follow {
            root,
            watcher,
            known,
            checkpoint: Arc::new(Mutex::new(Checkpoint {
                path: checkpoint.to_path_buf(),
                file,
            })),
        })
    }

    /// Whether `path` is to be read: not read before, not listed yet. Marks it listed.
    pub fn is_new(&mut self, path: &Path) -> bool {
        let path = crate::watch::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.known.insert(path)
    }

    /// New complete files that arrived, waiting at most `timeout` for the first.
    pub fn poll(&mut self, timeout: Duration) -> Vec<PathBuf> {
        let mut arrived = Vec::new();
        let mut wait = timeout;
        while let Some(Change::File(path)) = self.watcher.next_change_within(wait) {
            // A rename's old name is reported too; only files that are there count.
            if path.is_file() && self.is_new(&path) {
                arrived.push(path);
            }
            wait = Duration::ZERO;
        }
        arrived.sort();
        arrived
    }

    /// The acknowledgement that records `files` as read.
    pub fn acknowledge(&self, files: Vec<PathBuf>) -> Acknowledgement {
        let lines: String = files
            .iter()
            .map(|f| {
                let relative = f.strip_prefix(&self.root).unwrap_or(f);
                format!("{}\n", relative.display())
            })
            .collect();
        let checkpoint = self.checkpoint.clone();
        Box::new(move || {
            let mut checkpoint = checkpoint.lock().unwrap_or_else(|e| e.into_inner());
            let written = checkpoint
                .file
                .write_all(lines.as_bytes())
                .and_then(|()| checkpoint.file.sync_data());
            if let Err(e) = written {
                // The files are then read again after a restart: duplicates, nothing lost.
                tracing::error!(checkpoint = %checkpoint.path.display(), "files source: could not record files read: {e}");
            }
        })
    }
}
