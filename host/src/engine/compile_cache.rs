//! An in-memory cache of compiled functions, shared by every module version.
//!
//! A new build of a transform usually changes a few functions and leaves the rest (its
//! dependencies, most of its own code) byte for byte the same. Cranelift's incremental
//! cache keys each function's compiled code by its IR, so a hot reload recompiles only
//! what changed: that is most of the time from a file write to the new version running.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use wasmtime::CacheStore;

/// Compiled code kept at most; past it the cache starts over (versions come and go, and a
/// long-running host must not grow without bound).
const MAX_BYTES: usize = 64 << 20;

/// Function key → compiled function, within [`MAX_BYTES`].
#[derive(Debug, Default)]
pub struct CompileCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

impl CacheStore for CompileCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let entries = self.entries.lock().ok()?;
        entries.map.get(key).map(|v| Cow::Owned(v.clone()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        let size = key.len() + value.len();
        if entries.bytes + size > MAX_BYTES {
            entries.map.clear();
            entries.bytes = 0;
        }
        entries.bytes += size;
        if let Some(old) = entries.map.insert(key.to_vec(), value) {
            entries.bytes -= key.len() + old.len();
        }
        true
    }
}
