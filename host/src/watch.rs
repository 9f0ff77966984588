//! Watching files until they are complete: directory watches, debounced. Hot reload
//! ([`crate::reload`]) watches module and config files; the files source's follow mode a
//! folder tree.
//!
//! Editors, `cp`, `mv` and build tools replace a file in different ways: written in place
//! (many data events, then close-after-write), written elsewhere and renamed in, or
//! deleted and created afresh. Watching the file itself loses track of it after a rename,
//! so the watcher watches the *folders* the files live in and filters by name. A file is
//! reported once it has been quiet for [`QUIET`] after an event that completes a write
//! (close-after-write, rename into place, or a create with no data written after it, as a
//! hard link makes); data events mean a write is under way, so a half-written file is not
//! reported while it is still being written. A writer that closes a half-written file is
//! caught by validation (the file does not compile) and reported again when it is done.
//!
//! The files source's follow mode watches a folder tree instead ([`FileWatcher::for_tree`]):
//! every file under it with a given extension, reported once complete. Data read from a
//! half-written file cannot be taken back, so there a create alone never completes a
//! write (only a close-after-write or a rename into place does) and the quiet time is
//! longer.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// How long a file must be quiet before it is reported.
pub const QUIET: Duration = Duration::from_millis(15);

/// Something the reload thread must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A watched file was written, renamed into place or created.
    File(PathBuf),
    /// SIGHUP: reload the pipeline config.
    Hangup,
    /// A module version finished loading on its own thread.
    Loaded,
    /// The pipeline is done; the reload thread should exit.
    Stop,
}

/// Watches the folders of a set of files and reports debounced changes to them.
pub struct FileWatcher {
    watcher: RecommendedWatcher,
    events: Receiver<Event>,
    wanted: HashSet<PathBuf>,
    /// A folder tree watched whole: files under it with this extension are wanted.
    tree: Option<(PathBuf, String)>,
    /// Whether a create with no data after it completes a write (a hard link, a module
    /// file); not for a tree, whose files' data is read as it is.
    create_completes: bool,
    quiet: Duration,
    folders: HashSet<PathBuf>,
    pending: HashMap<PathBuf, Pending>,
}

/// What the watcher's channel carries: file events, and the other [`Change`]s.
#[derive(Debug)]
pub enum Event {
    /// A file system event from the watcher.
    Notify(notify::Event),
    /// Anything else: a stop, a SIGHUP.
    Other(Change),
}

struct Pending {
    last_event: Instant,
    complete: bool,
}

impl FileWatcher {
    /// A watcher with nothing to watch yet. Other code may send [`Change::Hangup`] or
    /// [`Change::Stop`] through the returned sender.
    pub fn new() -> Result<(Self, Sender<Event>)> {
        let (tx, events) = mpsc::channel();
        let notify_tx = tx.clone();
        let watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) => {
                    let _ = notify_tx.send(Event::Notify(event));
                }
                Err(e) => tracing::warn!("file watcher: {e}"),
            })
            .context("starting the file watcher")?;
        let watcher = FileWatcher {
            watcher,
            events,
            wanted: HashSet::new(),
            tree: None,
            create_completes: true,
            quiet: QUIET,
            folders: HashSet::new(),
            pending: HashMap::new(),
        };
        Ok((watcher, tx))
    }

    /// A watcher of every file under `root` whose extension is `extension` (any case),
    /// each reported once it has been quiet for `quiet` after a close-after-write or a
    /// rename into place.
    pub fn for_tree(root: &Path, extension: &str, quiet: Duration) -> Result<Self> {
        let (mut watcher, _) = FileWatcher::new()?;
        let root = absolute(root)?;
        watcher
            .watcher
            .watch(&root, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", root.display()))?;
        watcher.tree = Some((root, extension.to_string()));
        watcher.create_completes = false;
        watcher.quiet = quiet;
        Ok(watcher)
    }

    /// The next file change within `timeout`, if any.
    pub fn next_change_within(&mut self, timeout: Duration) -> Option<Change> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(path) = self.take_quiet() {
                return Some(Change::File(path));
            }
            let until = self.next_deadline().map_or(deadline, |d| d.min(deadline));
            let wait = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(wait) {
                Ok(Event::Other(change)) => return Some(change),
                Ok(Event::Notify(event)) => self.note(event),
                Err(RecvTimeoutError::Disconnected) => return Some(Change::Stop),
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    return self.take_quiet().map(Change::File);
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn is_wanted(&self, path: &Path) -> bool {
        match &self.tree {
            Some((root, extension)) => {
                path.starts_with(root)
                    && path
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case(extension.as_str()))
            }
            None => self.wanted.contains(path),
        }
    }

    /// Adds `files` to the watched set (watching their folders).
    pub fn watch_files(&mut self, files: &[PathBuf]) -> Result<()> {
        for file in files {
            let absolute = absolute(file)?;
            let folder = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
            if !self.folders.contains(&folder) {
                self.watcher
                    .watch(&folder, RecursiveMode::NonRecursive)
                    .with_context(|| format!("watching {}", folder.display()))?;
                self.folders.insert(folder);
            }
            self.wanted.insert(absolute);
        }
        Ok(())
    }

    /// Waits for the next change. Returns [`Change::Stop`] when every sender is gone.
    pub fn next_change(&mut self) -> Change {
        loop {
            if let Some(path) = self.take_quiet() {
                return Change::File(path);
            }
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            let event = match timeout {
                Some(timeout) => match self.events.recv_timeout(timeout) {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return Change::Stop,
                },
                None => match self.events.recv() {
                    Ok(event) => event,
                    Err(_) => return Change::Stop,
                },
            };
            match event {
                Event::Other(change) => return change,
                Event::Notify(event) => self.note(event),
            }
        }
    }

    fn note(&mut self, event: notify::Event) {
        let completes = matches!(event.kind, EventKind::Create(_)) && self.create_completes
            || matches!(
                event.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                    | EventKind::Modify(ModifyKind::Name(
                        RenameMode::To | RenameMode::Both | RenameMode::Any
                    ))
            );
        // Data written after a create (a file written in place of a deleted one) means the
        // write is under way again: wait for its close. A create alone (a hard link, as
        // cargo makes) completes.
        let writes = matches!(
            event.kind,
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
        );
        if !completes && !writes {
            return;
        }
        for path in event.paths {
            if !self.is_wanted(&path) {
                continue;
            }
            let entry = self.pending.entry(path).or_insert(Pending {
                last_event: Instant::now(),
                complete: false,
            });
            entry.last_event = Instant::now();
            entry.complete = completes || (entry.complete && !writes);
        }
    }

    /// A pending file whose write completed and that has been quiet long enough.
    fn take_quiet(&mut self) -> Option<PathBuf> {
        let now = Instant::now();
        let path = self
            .pending
            .iter()
            .find(|(_, p)| p.complete && now.duration_since(p.last_event) >= self.quiet)
            .map(|(path, _)| path.clone())?;
        self.pending.remove(&path);
        Some(path)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .filter(|p| p.complete)
            .map(|p| p.last_event + self.quiet)
            .min()
    }
}

/// `path` made absolute with a canonical folder, as file events report it. The file
/// itself need not exist (it may be renamed into place later).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let file_name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let folder = folder
        .canonicalize()
        .with_context(|| format!("the folder of {} does not exist", path.display()))?;
    Ok(folder.join(file_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next_file(watcher: &mut FileWatcher) -> PathBuf {
        match watcher.next_change() {
            Change::File(path) => path,
            other => panic!("expected a file change, got {other:?}"),
        }
    }

    #[test]
    fn reports_writes_renames_and_creates_of_watched_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("m.wasm");
        std::fs::write(&module, b"v1").unwrap();
        let (mut watcher, tx) = FileWatcher::new().unwrap();
        watcher.watch_files(std::slice::from_ref(&module)).unwrap();
        let module = absolute(&module).unwrap();

        std::fs::write(dir.path().join("other.txt"), b"x").unwrap();
        std::fs::write(&module, b"v2").unwrap();
        assert_eq!(next_file(&mut watcher), module, "write in place");

        let temp = dir.path().join("m.wasm.tmp");
        std::fs::write(&temp, b"v3").unwrap();
        std::fs::rename(&temp, &module).unwrap();
        assert_eq!(next_file(&mut watcher), module, "rename into place");

        std::fs::remove_file(&module).unwrap();
        std::fs::write(&module, b"v4").unwrap();
        assert_eq!(next_file(&mut watcher), module, "delete and create");

        tx.send(Event::Other(Change::Hangup)).unwrap();
        assert_eq!(
            watcher.next_change(),
            Change::Hangup,
            "no further file events were pending"
        );
    }
}
