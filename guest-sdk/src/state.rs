//! Versioned state for `snapshot`/`restore`, so transforms need not hand-roll it.
//!
//! A hot swap hands the old version's snapshot to the new version's `restore`. The two
//! may disagree on the state's layout; a version number inside the snapshot lets the new
//! version recognise a layout it does not know and refuse it, and the host then starts the
//! new version fresh. [`save`] and [`load`] write and read `{"version": N, "state": ...}`
//! as JSON, which other languages' transforms can read too.
//!
//! ```
//! use waystream_guest::state;
//!
//! let bytes = state::save(1, &vec![("021".to_string(), 7u32)]);
//! let back: Option<Vec<(String, u32)>> = state::load("example", 1, &bytes).unwrap();
//! assert_eq!(back, Some(vec![("021".to_string(), 7)]));
//! assert!(state::load::<Vec<(String, u32)>>("example", 2, &bytes).is_err());
//! assert_eq!(state::load::<Vec<(String, u32)>>("example", 1, &[]).unwrap(), None);
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Versioned<'a, T> {
    version: u32,
    state: &'a T,
}

#[derive(Deserialize)]
struct VersionedOwned<T> {
    version: u32,
    state: T,
}

/// Encodes `state` with its layout `version`.
pub fn save<T: Serialize>(version: u32, state: &T) -> Vec<u8> {
    // Serialising plain data to a Vec cannot fail; an empty snapshot means "no state".
    serde_json::to_vec(&Versioned { version, state }).unwrap_or_default()
}

/// Decodes a snapshot written by [`save`] with the same `version`. An empty snapshot (a
/// fresh predecessor) gives `None`; another version or another transform's state is an
/// error naming `transform`, which the host logs before starting the new version fresh.
pub fn load<T: DeserializeOwned>(
    transform: &str,
    version: u32,
    bytes: &[u8],
) -> Result<Option<T>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Header {
        version: u32,
    }
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| format!("not a {transform} snapshot: {e}"))?;
    if header.version != version {
        return Err(format!(
            "{transform} snapshot version {} is not the version {version} this build reads",
            header.version
        ));
    }
    let versioned: VersionedOwned<T> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a {transform} snapshot: {e}"))?;
    debug_assert_eq!(versioned.version, version);
    Ok(Some(versioned.state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_floats_read_back_to_the_same_bits() {
        // Values the default serde_json parser reads back one unit in the last place off.
        let mut x = 39.900999999999996_f64;
        let mut values = Vec::new();
        for _ in 0..10_000 {
            values.push(x);
            x = x * 1.000_000_1 + 1e-7;
        }
        let back: Vec<f64> = load("test", 1, &save(1, &values)).unwrap().unwrap();
        for (a, b) in values.iter().zip(&back) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} came back as {b}");
        }
    }
}
