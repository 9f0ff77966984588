//! Saved state: the chain's per-trajectory state as bytes a source stores with its
//! checkpoints, and put back in place from them.
//!
//! A source that can read records again (Kinesis) keeps, with each checkpoint, the state
//! of the trajectories it carries as it was right after the checkpointed batch
//! ([`Chain::capture_state`]). Whoever reads on from that checkpoint, this host after a
//! restart or another one after a failover, first replaces its own state of those
//! trajectories with the saved one ([`Chain::replace_state`]); the records after the
//! checkpoint then meet the same state as the first time, and give the same documents.
//!
//! The encoding is the modules' [`ModuleState`]s, length-prefixed (little-endian `u32`s):
//!
//! ```text
//! "waystream-state/1\n"  modules:u32
//!   name  entries:u32
//!     user  id  state      (each a u32 length and its bytes)
//! ```

use anyhow::{Context, Result, ensure};

use super::Chain;
use super::keyed::ModuleState;
use crate::engine::bindings::{KeyState, Trajectory};

const MAGIC: &[u8] = b"waystream-state/1\n";

impl Chain {
    /// The state of each set's trajectories (`sets` pick them by user and id), encoded
    /// (see the module docs). The chain's trajectories are listed once for all the sets.
    pub fn capture_state<F: Fn(&str, &str) -> bool>(&mut self, sets: &[F]) -> Vec<Vec<u8>> {
        let held = self.keys();
        sets.iter()
            .map(|selects| {
                let keys: Vec<Trajectory> = held
                    .iter()
                    .filter(|t| selects(&t.user, &t.id))
                    .cloned()
                    .collect();
                let state = if keys.is_empty() {
                    Vec::new()
                } else {
                    self.export_state(&keys)
                };
                encode_state(&state)
            })
            .collect()
    }

    /// For each `(set, saved)`: replaces the state of the set's trajectories by their
    /// state in `saved` (encoded states; entries outside the set are ignored). What the
    /// chain held for them and `saved` does not name is dropped: those trajectories start
    /// fresh. A saved state that cannot be read is logged and skipped. The chain's
    /// trajectories are listed once for all the sets.
    pub fn replace_state<F: Fn(&str, &str) -> bool>(&mut self, restores: &[(F, Vec<Vec<u8>>)]) {
        if restores.is_empty() {
            return;
        }
        let held: Vec<Trajectory> = self
            .keys()
            .into_iter()
            .filter(|t| restores.iter().any(|(selects, _)| selects(&t.user, &t.id)))
            .collect();
        if !held.is_empty() {
            self.drop_keys(&held);
        }
        for (selects, saved) in restores {
            for bytes in saved {
                match decode_state(bytes) {
                    Ok(mut state) => {
                        for module in &mut state {
                            module.states.retain(|s| selects(&s.key.user, &s.key.id));
                        }
                        state.retain(|m| !m.states.is_empty());
                        self.import_state(&state);
                    }
                    Err(e) => tracing::warn!(
                        "a saved state ({} bytes) cannot be read; its trajectories start fresh: {e:#}",
                        bytes.len()
                    ),
                }
            }
        }
    }
}

/// The bytes of `state` (see the module docs).
pub fn encode_state(state: &[ModuleState]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let put = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    out.extend_from_slice(&(state.len() as u32).to_le_bytes());
    for module in state {
        put(&mut out, module.module.as_bytes());
        out.extend_from_slice(&(module.states.len() as u32).to_le_bytes());
        for entry in &module.states {
            put(&mut out, entry.key.user.as_bytes());
            put(&mut out, entry.key.id.as_bytes());
            put(&mut out, &entry.state);
        }
    }
    out
}

/// Reads back what [`encode_state`] wrote.
pub fn decode_state(bytes: &[u8]) -> Result<Vec<ModuleState>> {
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .context("not a saved state (no waystream-state/1 header)")?;
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).context("a name is not UTF-8");
    let modules = read_u32(&mut rest)?;
    let mut state = Vec::new();
    for _ in 0..modules {
        let module = text(read_bytes(&mut rest)?)?;
        let entries = read_u32(&mut rest)?;
        let mut states = Vec::new();
        for _ in 0..entries {
            let user = text(read_bytes(&mut rest)?)?;
            let id = text(read_bytes(&mut rest)?)?;
            states.push(KeyState {
                key: Trajectory { user, id },
                state: read_bytes(&mut rest)?,
            });
        }
        state.push(ModuleState { module, states });
    }
    ensure!(
        rest.is_empty(),
        "{} bytes after the saved state",
        rest.len()
    );
    Ok(state)
}

fn read_u32(rest: &mut &[u8]) -> Result<u32> {
    ensure!(rest.len() >= 4, "the saved state ends early");
    let (number, tail) = rest.split_at(4);
    *rest = tail;
    Ok(u32::from_le_bytes(number.try_into()?))
}

fn read_bytes(rest: &mut &[u8]) -> Result<Vec<u8>> {
    let len = read_u32(rest)? as usize;
    ensure!(rest.len() >= len, "the saved state ends early");
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str, id: &str, state: &[u8]) -> KeyState {
        KeyState {
            key: Trajectory {
                user: user.into(),
                id: id.into(),
            },
            state: state.to_vec(),
        }
    }

    #[test]
    fn a_saved_state_reads_back_as_written() {
        let state = vec![
            ModuleState {
                module: "speed".into(),
                states: vec![entry("u1", "t1", &[1, 2, 3]), entry("u2", "é", &[])],
            },
            ModuleState {
                module: "geofence".into(),
                states: vec![],
            },
        ];
        let bytes = encode_state(&state);
        assert_eq!(decode_state(&bytes).unwrap(), state);
        assert_eq!(decode_state(&encode_state(&[])).unwrap(), vec![]);
    }

    #[test]
    fn a_damaged_saved_state_is_an_error() {
        let bytes = encode_state(&[ModuleState {
            module: "speed".into(),
            states: vec![entry("u1", "t1", &[1, 2, 3])],
        }]);
        let short = decode_state(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(short.to_string().contains("ends early"), "{short}");
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_state(&long).is_err());
        assert!(
            decode_state(b"{}")
                .unwrap_err()
                .to_string()
                .contains("header")
        );
    }
}
