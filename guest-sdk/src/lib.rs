//! Write a waystream transform as a plain Rust type.
//!
//! A transform is a type implementing [`Transform`]: built from its JSON configuration by
//! [`Transform::init`], called once per batch by [`Transform::process`], and able to hand its
//! state to its next version through [`Transform::snapshot`] / [`Transform::restore`].
//! Per-trajectory state kept in a [`keyed::Keyed`] map and handed out by
//! [`Transform::keyed`] can also move one trajectory at a time, between hosts and out of
//! memory (see [`keyed`]). [`export_transform!`] generates the component glue for the
//! `keyed-transform-module` world in `wit/waystream.wit`; on any target other than Wasm it expands to nothing, so the same type
//! is tested natively with `cargo test`, no Wasm involved.
//!
//! ```
//! use waystream_guest::{Batch, Output, Records, Transform};
//!
//! /// Moves every point one degree north.
//! struct North;
//!
//! impl Transform for North {
//!     fn init(_config: &str) -> Result<Self, String> {
//!         Ok(North)
//!     }
//!
//!     fn process(&mut self, batch: Batch) -> Result<Output, String> {
//!         let Records::Points(mut points) = batch.records else {
//!             return Err("north needs points, not raw lines".into());
//!         };
//!         points.update(|p| p.lat += 1.0);
//!         Ok(Output::points(points))
//!     }
//! }
//!
//! waystream_guest::export_transform!(North);
//!
//! let mut t = North::init("{}").unwrap();
//! let batch = waystream_guest::testing::points_batch(vec![waystream_guest::testing::point(0, 0, 0, 39.9, 116.4)]);
//! let out = t.process(batch).unwrap();
//! assert_eq!(out.points.lat, [40.9]);
//! ```
//!
//! Build it into a component with `cargo build --release --target wasm32-wasip2 -p <crate>`
//! (or `cargo xtask build-transforms` for the project's own), with `crate-type = ["cdylib",
//! "rlib"]` in the crate's manifest.

#![warn(missing_docs)]

pub mod keyed;
mod points;
pub mod state;
pub mod testing;

/// The bindings generated from `wit/waystream.wit`. Transform authors rarely need them
/// directly: the useful types are re-exported at the crate root.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "keyed-transform-module",
        pub_export_macro: true,
        export_macro_name: "__export_keyed_transform_module",
        default_bindings_module: "waystream_guest::bindings",
        additional_derives: [PartialEq],
    });
}

// The methods of the generated types (rows of points, lines, record counts): the same as
// the host's, from one definition.
mod methods {
    use crate::bindings::waystream::transform::types::{Batch, PointColumns, RawLines, Records};
    waystream_contract::__contract_methods!();
}

pub use bindings::waystream::transform::log::Level;
pub use bindings::waystream::transform::types::{
    Batch, Output, RawLines, Records, Rejection, Trajectory,
};
pub use points::{NO_ZONES, Point, PointColumns};
/// Bits of [`Point::flags`], as documented in the WIT contract (`point-flags`).
pub use waystream_contract::flags;

/// A transform: one instance per module version per host worker.
///
/// The host calls [`init`](Transform::init) once, then [`process`](Transform::process) for
/// every batch, on one thread. Keep per-trajectory state in `self`; it survives between
/// batches and, through [`snapshot`](Transform::snapshot) and
/// [`restore`](Transform::restore), across hot swaps.
pub trait Transform: Sized + 'static {
    /// Builds the transform from its configuration (a JSON document, `{}` when the
    /// pipeline config gives none). An error refuses the module.
    fn init(config: &str) -> Result<Self, String>;

    /// Transforms one batch. Every input record must come out as exactly one point, in
    /// input order, or be listed in [`Output::rejected`] with its reason. An `Err` fails
    /// the whole batch.
    fn process(&mut self, batch: Batch) -> Result<Output, String>;

    /// Serialises the transform's state for the next version of the module.
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Takes over the state of a previous version. The default accepts only "no state".
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if state.is_empty() {
            Ok(())
        } else {
            Err("this transform keeps no state".into())
        }
    }

    /// The transform's per-trajectory state, when it keeps it in a [`keyed::Keyed`] map:
    /// the host can then export, import and drop it one trajectory at a time (to move a
    /// shard's trajectories with the shard, and to bound memory). None (the default): the
    /// transform keeps no per-trajectory state, or only whole through `snapshot`.
    fn keyed(&mut self) -> Option<&mut dyn keyed::KeyedState> {
        None
    }
}

impl Output {
    /// An output of `points` with no rejections and the input's zone table unchanged.
    pub fn points(points: PointColumns) -> Self {
        Output {
            points,
            zone_sets: None,
            rejected: Vec::new(),
        }
    }
}

/// Writes one line to the host's log (natively: to standard error). Prefer the macros
/// [`info!`], [`warn!`] and friends.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::waystream::transform::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs at `info` level through the host, `format!`-style.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, &format!($($arg)*)) };
}

/// Logs at `warn` level through the host, `format!`-style.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &format!($($arg)*)) };
}

/// Logs at `debug` level through the host, `format!`-style.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &format!($($arg)*)) };
}

/// Exports a [`Transform`] type as the component's implementation of the contract.
///
/// Invoke it once per crate, at module level. It expands to nothing unless the target is
/// Wasm, so native builds and tests of the same crate are unaffected.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::Transform as _;
            use $crate::bindings::exports::waystream::transform::keyed_state as keyed;
            use $crate::bindings::exports::waystream::transform::transform as contract;

            ::std::thread_local! {
                static INSTANCE: ::core::cell::RefCell<::core::option::Option<$ty>> =
                    const { ::core::cell::RefCell::new(None) };
            }

            fn with_instance<R>(
                f: impl FnOnce(&mut $ty) -> Result<R, String>,
            ) -> Result<R, String> {
                INSTANCE.with(|slot| match slot.borrow_mut().as_mut() {
                    Some(instance) => f(instance),
                    None => Err("the host called the transform before init".into()),
                })
            }

            struct Export;

            impl contract::Guest for Export {
                fn init(config: String) -> Result<(), String> {
                    // A panic traps the instance; say why in the host's log first.
                    ::std::panic::set_hook(Box::new(|info| {
                        $crate::log($crate::Level::Error, &format!("panic: {info}"))
                    }));
                    let instance = <$ty>::init(&config)?;
                    INSTANCE.with(|slot| *slot.borrow_mut() = Some(instance));
                    Ok(())
                }

                fn process(batch: contract::Batch) -> Result<contract::Output, String> {
                    with_instance(|t| t.process(batch))
                }

                fn snapshot() -> Vec<u8> {
                    with_instance(|t| Ok(t.snapshot())).unwrap_or_default()
                }

                fn restore(state: Vec<u8>) -> Result<(), String> {
                    with_instance(|t| t.restore(&state))
                }
            }

            impl keyed::Guest for Export {
                fn export_keys(keys: Vec<keyed::Trajectory>) -> Vec<keyed::KeyState> {
                    with_instance(|t| Ok(t.keyed().map(|k| k.export(&keys)).unwrap_or_default()))
                        .unwrap_or_default()
                }

                fn import_keys(states: Vec<keyed::KeyState>) -> Result<(), String> {
                    with_instance(|t| match t.keyed() {
                        Some(k) => k.import(states),
                        None if states.is_empty() => Ok(()),
                        None => Err("this transform keeps no per-trajectory state".into()),
                    })
                }

                fn drop_keys(keys: Vec<keyed::Trajectory>) {
                    let _ = with_instance(|t| {
                        if let Some(k) = t.keyed() {
                            k.drop_keys(&keys);
                        }
                        Ok(())
                    });
                }

                fn keys() -> Vec<keyed::Trajectory> {
                    with_instance(|t| Ok(t.keyed().map(|k| k.keys()).unwrap_or_default()))
                        .unwrap_or_default()
                }
            }

    $crate::bindings::__export_keyed_transform_module!(Export with_types_in $crate::bindings);
        };
    };
}
