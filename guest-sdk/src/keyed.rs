//! Per-trajectory state the host can move between instances: [`Keyed`].
//!
//! Most transform state is per trajectory: the last point (`speed`), the zones the last
//! point was in (`geofence`). Kept in a [`Keyed`] map and handed to the host through
//! [`Transform::keyed`](crate::Transform::keyed), it can be exported and imported one
//! trajectory at a time (contract 0.3.1's `keyed-state`): the host moves the trajectories
//! of a Kinesis shard with the shard when it changes hands, and drops trajectories that
//! have been idle once their state is stored, so state neither stays behind on a failover
//! nor grows without bound.
//!
//! Each entry is serialised on its own with [`state::save`](crate::state::save), under a
//! layout version, so an entry exported by an older version of the transform is refused
//! (and that trajectory starts fresh) rather than misread. The whole map also makes the
//! transform's `snapshot`/`restore` for hot swaps ([`Keyed::snapshot`], [`Keyed::restore`]).
//!
//! ```
//! use waystream_guest::keyed::{Keyed, KeyedState};
//! use waystream_guest::Trajectory;
//!
//! let key = Trajectory { user: "021".into(), id: "20081023".into() };
//! let mut last: Keyed<u32> = Keyed::new("example", 1);
//! last.insert(&key, 7);
//! let exported = last.export(std::slice::from_ref(&key));
//!
//! let mut elsewhere: Keyed<u32> = Keyed::new("example", 1);
//! elsewhere.import(exported).unwrap();
//! assert_eq!(elsewhere.take(&key), Some(7));
//! ```

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Trajectory;
pub use crate::bindings::exports::waystream::transform::keyed_state::KeyState;
use crate::state;

/// What the host calls on a transform's per-trajectory state (object-safe, so a transform
/// hands out `&mut dyn KeyedState` whatever its value type).
pub trait KeyedState {
    /// The state of each of `keys` held; keys without state are left out.
    fn export(&self, keys: &[Trajectory]) -> Vec<KeyState>;
    /// Takes over the given trajectories' state, replacing what is held for them. All or
    /// nothing: an entry that does not decode refuses the whole call.
    fn import(&mut self, states: Vec<KeyState>) -> Result<(), String>;
    /// Forgets the state of `keys`.
    fn drop_keys(&mut self, keys: &[Trajectory]);
    /// Every trajectory with state.
    fn keys(&self) -> Vec<Trajectory>;
}

/// A map from trajectory to `T`, the state a transform keeps for it.
///
/// In `process`, [`take`](Keyed::take) each trajectory's state once per batch and
/// [`insert`](Keyed::insert) it back after the batch's points (one lookup per trajectory
/// per batch, not per point).
pub struct Keyed<T> {
    transform: &'static str,
    version: u32,
    map: HashMap<(String, String), T>,
}

impl<T> Keyed<T> {
    /// An empty map for `transform` (named in errors) whose entries have layout `version`.
    pub fn new(transform: &'static str, version: u32) -> Self {
        Keyed {
            transform,
            version,
            map: HashMap::new(),
        }
    }

    /// Removes and returns the state of `key`.
    pub fn take(&mut self, key: &Trajectory) -> Option<T> {
        // The tuple of owned strings is the key; looking it up needs one (per trajectory
        // per batch, not per point).
        self.map.remove(&(key.user.clone(), key.id.clone()))
    }

    /// The state of `key`, if any.
    pub fn get(&self, key: &Trajectory) -> Option<&T> {
        self.map.get(&(key.user.clone(), key.id.clone()))
    }

    /// Sets the state of `key`.
    pub fn insert(&mut self, key: &Trajectory, value: T) {
        self.map.insert((key.user.clone(), key.id.clone()), value);
    }

    /// Like [`insert`](Keyed::insert), taking the key's strings.
    pub fn insert_owned(&mut self, key: Trajectory, value: T) {
        self.map.insert((key.user, key.id), value);
    }

    /// How many trajectories have state.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no trajectory has state.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// [`KeyedState::export`] for a value stored as `save(value)` (for state that needs
    /// context to serialise, such as an index into the transform's own tables).
    pub fn export_with<'a, S: Serialize>(
        &'a self,
        keys: &[Trajectory],
        save: impl Fn(&'a T) -> S,
    ) -> Vec<KeyState> {
        keys.iter()
            .filter_map(|key| {
                let value = self.get(key)?;
                Some(KeyState {
                    key: key.clone(),
                    state: state::save(self.version, &save(value)),
                })
            })
            .collect()
    }

    /// [`KeyedState::import`] for a value stored as `S` and rebuilt by `load`.
    pub fn import_with<S: DeserializeOwned>(
        &mut self,
        states: Vec<KeyState>,
        mut load: impl FnMut(S) -> T,
    ) -> Result<(), String> {
        let mut decoded = Vec::with_capacity(states.len());
        for KeyState { key, state: bytes } in states {
            let what = format!("{} state of {}/{}", self.transform, key.user, key.id);
            match state::load::<S>(&what, self.version, &bytes)? {
                Some(saved) => decoded.push((key, load(saved))),
                None => return Err(format!("{what}: empty")),
            }
        }
        for (key, value) in decoded {
            self.insert_owned(key, value);
        }
        Ok(())
    }

    /// [`KeyedState::drop_keys`].
    pub fn drop_keys(&mut self, keys: &[Trajectory]) {
        for key in keys {
            self.take(key);
        }
    }

    /// [`KeyedState::keys`].
    pub fn keys(&self) -> Vec<Trajectory> {
        self.map
            .keys()
            .map(|(user, id)| Trajectory {
                user: user.clone(),
                id: id.clone(),
            })
            .collect()
    }

    /// The whole map for `snapshot` on a hot swap, each value stored as `save(value)`:
    /// `{"version": N, "state": [[user, id, value], …]}`, the layout the project's
    /// transforms wrote before keyed state, so a swap from such a version keeps its state.
    pub fn snapshot_with<'a, S: Serialize>(&'a self, save: impl Fn(&'a T) -> S) -> Vec<u8> {
        let entries: Vec<(&str, &str, S)> = self
            .map
            .iter()
            .map(|((user, id), value)| (user.as_str(), id.as_str(), save(value)))
            .collect();
        state::save(self.version, &entries)
    }

    /// Replaces the map with a [`snapshot_with`](Keyed::snapshot_with), each value rebuilt
    /// by `load`; an empty snapshot (a fresh predecessor) leaves it as it is.
    pub fn restore_with<S: DeserializeOwned>(
        &mut self,
        bytes: &[u8],
        mut load: impl FnMut(S) -> T,
    ) -> Result<(), String> {
        let Some(entries) =
            state::load::<Vec<(String, String, S)>>(self.transform, self.version, bytes)?
        else {
            return Ok(());
        };
        self.map = entries
            .into_iter()
            .map(|(user, id, saved)| ((user, id), load(saved)))
            .collect();
        Ok(())
    }
}

impl<T: Serialize + DeserializeOwned> Keyed<T> {
    /// The whole map, for `snapshot` (see [`snapshot_with`](Keyed::snapshot_with)).
    pub fn snapshot(&self) -> Vec<u8> {
        self.snapshot_with(|value| value)
    }

    /// Replaces the map with a [`snapshot`](Keyed::snapshot).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.restore_with(bytes, |value: T| value)
    }
}

impl<T: Serialize + DeserializeOwned> KeyedState for Keyed<T> {
    fn export(&self, keys: &[Trajectory]) -> Vec<KeyState> {
        self.export_with(keys, |value| value)
    }

    fn import(&mut self, states: Vec<KeyState>) -> Result<(), String> {
        self.import_with(states, |value: T| value)
    }

    fn drop_keys(&mut self, keys: &[Trajectory]) {
        Keyed::drop_keys(self, keys)
    }

    fn keys(&self) -> Vec<Trajectory> {
        Keyed::keys(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Trajectory {
        Trajectory {
            user: "001".into(),
            id: id.into(),
        }
    }

    #[test]
    fn entries_go_out_and_come_back_one_key_at_a_time() {
        let mut map: Keyed<(u32, f64)> = Keyed::new("test", 2);
        map.insert(&key("a"), (1, 0.5));
        map.insert(&key("b"), (2, 1.5));
        let out = map.export(&[key("a"), key("missing")]);
        assert_eq!(out.len(), 1, "keys without state are left out");
        let mut other: Keyed<(u32, f64)> = Keyed::new("test", 2);
        other.import(out).unwrap();
        assert_eq!(other.get(&key("a")), Some(&(1, 0.5)));
        assert_eq!(other.len(), 1);
        map.drop_keys(&[key("a")]);
        assert_eq!(map.keys(), vec![key("b")]);
    }

    #[test]
    fn an_entry_of_another_layout_refuses_the_whole_import() {
        let mut old: Keyed<u32> = Keyed::new("test", 1);
        old.insert(&key("a"), 1);
        let mut new: Keyed<u32> = Keyed::new("test", 2);
        new.insert(&key("b"), 5);
        let err = new.import(old.export(&[key("a")])).unwrap_err();
        assert!(err.contains("test state of 001/a"), "{err}");
        assert_eq!(new.keys(), vec![key("b")], "nothing was imported");
    }

    #[test]
    fn the_whole_map_snapshots_in_the_layout_transforms_wrote_before() {
        let mut map: Keyed<u32> = Keyed::new("test", 1);
        map.insert(&key("a"), 9);
        let bytes = map.snapshot();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"version":1,"state":[["001","a",9]]}"#
        );
        let mut back: Keyed<u32> = Keyed::new("test", 1);
        back.restore(&bytes).unwrap();
        assert_eq!(back.take(&key("a")), Some(9));
        back.restore(&[]).unwrap();
        assert!(Keyed::<u32>::new("test", 2).restore(&bytes).is_err());
    }
}
