//! Compiled components kept on disk, so a module seen before loads in milliseconds.
//!
//! Compiling a component is the slow part of loading it: 20–300 ms for a Rust transform,
//! 5–20 s for a JavaScript or Python one (an interpreter compiled to Wasm). wasmtime can
//! write a compiled component out (`Engine::precompile_component`) and map it back in
//! (`Component::deserialize`) in a millisecond or two. Entries are keyed by the
//! component's sha256 and the engine's compatibility hash (wasmtime version, target,
//! settings such as `call_timeout_ms = 0`), so an entry is only ever read by an engine that
//! can run it.
//!
//! Deserializing trusts the file to be code wasmtime wrote, so an entry is never trusted
//! blindly: each carries the sha256 of its contents in its name's sidecar, checked before
//! use; a corrupt, stale or unreadable entry is compiled again and replaced. The folder
//! keeps at most `max_mib`; the least recently used entries go first.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

/// The `[cache]` table of a pipeline config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Whether compiled modules are kept on disk.
    pub enabled: bool,
    /// The folder (default `$WAYSTREAM_CACHE_DIR`, else `$XDG_CACHE_HOME/waystream`, else
    /// `~/.cache/waystream`).
    pub dir: Option<PathBuf>,
    /// The most the folder may hold, in MiB.
    pub max_mib: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            dir: None,
            max_mib: 2048,
        }
    }
}

impl CacheConfig {
    /// The folder entries go to.
    pub fn folder(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.dir {
            return Some(dir.clone());
        }
        if let Some(dir) = std::env::var_os("WAYSTREAM_CACHE_DIR") {
            return Some(dir.into());
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
        Some(base.join("waystream"))
    }
}

/// The compiled-component folder of one engine.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    /// The engine's compatibility hash, part of every key.
    engine_key: u64,
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    /// Read from the cache.
    Cached,
    /// Compiled now (and stored, when the cache could take it).
    Fresh,
}

impl DiskCache {
    /// The cache of `engine` in `config`'s folder (created, private to the user); none when
    /// the cache is off or has no folder.
    pub fn open(engine: &wasmtime::Engine, config: &CacheConfig) -> Option<Self> {
        if !config.enabled {
            return None;
        }
        let dir = config.folder()?.join("compiled");
        if let Err(e) = create_private_dir(&dir) {
            tracing::warn!(dir = %dir.display(), "compiled-module cache off: {e:#}");
            return None;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(DiskCache {
            dir,
            max_bytes: config.max_mib.saturating_mul(1 << 20),
            engine_key: hasher.finish(),
        })
    }

    /// The component of `bytes` (whose sha256 is `digest`, `sha256:<hex>`), from the cache
    /// when a sound entry is there, else compiled and stored.
    pub fn load(
        &self,
        engine: &wasmtime::Engine,
        digest: &str,
        bytes: &[u8],
    ) -> Result<(Component, Compiled)> {
        let stem = format!(
            "{}-{:016x}",
            digest.trim_start_matches("sha256:"),
            self.engine_key
        );
        let entry = self.dir.join(format!("{stem}.cwasm"));
        let sum = self.dir.join(format!("{stem}.sha256"));
        match self.read(engine, &entry, &sum) {
            Ok(Some(component)) => return Ok((component, Compiled::Cached)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(entry = %entry.display(), "cached module not used, compiling again: {e:#}")
            }
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)?;
        // SAFETY: `compiled` is what this engine produced just now.
        let component =
            unsafe { Component::deserialize(engine, &compiled).map_err(anyhow::Error::from)? };
        if let Err(e) = self.store(&entry, &sum, &compiled) {
            tracing::warn!(entry = %entry.display(), "could not keep the compiled module: {e:#}");
        }
        Ok((component, Compiled::Fresh))
    }

    /// A sound entry, or none when there is none.
    fn read(
        &self,
        engine: &wasmtime::Engine,
        entry: &Path,
        sum: &Path,
    ) -> Result<Option<Component>> {
        if !entry.exists() {
            return Ok(None);
        }
        let expected = std::fs::read_to_string(sum).context("reading its checksum")?;
        let compiled = std::fs::read(entry)?;
        let actual = format!("{:x}", Sha256::digest(&compiled));
        anyhow::ensure!(
            expected.trim() == actual,
            "its checksum does not match: corrupt"
        );
        // Touched so that the size bound drops the least recently used first.
        let _ = std::fs::File::options()
            .append(true)
            .open(entry)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        // From the bytes just checked, not the file again: read once, and what is checked is
        // what is run.
        // SAFETY: the bytes are an entry this cache wrote for an engine with the same
        // compatibility hash, unchanged since (their checksum matches); wasmtime checks the
        // header again.
        let component =
            unsafe { Component::deserialize(engine, &compiled).map_err(anyhow::Error::from)? };
        Ok(Some(component))
    }

    fn store(&self, entry: &Path, sum: &Path, compiled: &[u8]) -> Result<()> {
        // A name no other writer uses (threads of this process store the same entry when
        // they compile one module at once), renamed into place when complete.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = entry.with_extension(format!("tmp-{}-{n}", std::process::id()));
        std::fs::File::create(&temp)?.write_all(compiled)?;
        std::fs::write(sum, format!("{:x}\n", Sha256::digest(compiled)))?;
        std::fs::rename(&temp, entry)?;
        self.bound()
    }

    /// Drops the least recently used entries until the folder holds at most `max_bytes`.
    fn bound(&self) -> Result<()> {
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort();
        for (_, size, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(path.with_extension("sha256"));
            total -= size;
        }
        Ok(())
    }
}

/// Creates `dir` (and its parents) readable by its owner only.
fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two different components of the same shape, written by hand (their compiled forms
    /// are about the same size).
    fn components() -> [Vec<u8>; 2] {
        [
            "(component (core module (func (export \"f\"))))",
            "(component (core module (func (export \"g\"))))",
        ]
        .map(|text| wat::parse_str(text).unwrap())
    }

    fn cache(dir: &Path) -> (wasmtime::Engine, DiskCache) {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let config = CacheConfig {
            dir: Some(dir.to_path_buf()),
            ..CacheConfig::default()
        };
        let cache = DiskCache::open(&engine, &config).expect("a cache folder");
        (engine, cache)
    }

    /// Loads `bytes` through the cache; says where the component came from.
    fn load(engine: &wasmtime::Engine, cache: &DiskCache, bytes: &[u8]) -> Compiled {
        let digest = crate::engine::digest_of(bytes);
        cache.load(engine, &digest, bytes).unwrap().1
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir.join("compiled"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect()
    }

    #[test]
    fn a_module_seen_before_comes_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, cache) = cache(dir.path());
        let [bytes, _] = components();
        assert_eq!(load(&engine, &cache, &bytes), Compiled::Fresh);
        assert_eq!(load(&engine, &cache, &bytes), Compiled::Cached);
        // Another engine with the same settings (the next process) reads it too.
        let (engine, cache) = self::cache(dir.path());
        assert_eq!(load(&engine, &cache, &bytes), Compiled::Cached);
    }

    #[test]
    fn a_corrupt_entry_is_compiled_again_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, cache) = cache(dir.path());
        let [bytes, _] = components();
        load(&engine, &cache, &bytes);
        let entry = entries(dir.path()).pop().unwrap();
        let mut compiled = std::fs::read(&entry).unwrap();
        let middle = compiled.len() / 2;
        compiled[middle] ^= 0xff;
        std::fs::write(&entry, &compiled).unwrap();
        assert_eq!(load(&engine, &cache, &bytes), Compiled::Fresh);
        assert_eq!(load(&engine, &cache, &bytes), Compiled::Cached);
    }

    #[test]
    fn the_folder_keeps_within_its_bound_dropping_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, mut cache) = cache(dir.path());
        let [first, second] = components();
        load(&engine, &cache, &first);
        let old = entries(dir.path()).pop().unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .append(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        // Room for one entry, not two: the first, used longest ago, goes.
        cache.max_bytes = std::fs::metadata(&old).unwrap().len() * 3 / 2;
        assert_eq!(load(&engine, &cache, &second), Compiled::Fresh);
        let left = entries(dir.path());
        assert_eq!(left.len(), 1, "{left:?}");
        assert_ne!(left[0], old);
        assert_eq!(load(&engine, &cache, &second), Compiled::Cached);
        assert_eq!(load(&engine, &cache, &first), Compiled::Fresh);
    }
}
