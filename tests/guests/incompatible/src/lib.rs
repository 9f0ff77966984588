//! A transform built against a different (made-up) version of the contract: its
//! `process` takes and returns bytes. The host must refuse to load it, and a hot reload
//! to it must leave the running version in place.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: r#"
        package waystream:transform@0.9.0;

        interface transform {
            init: func(config: string) -> result<_, string>;
            process: func(batch: list<u8>) -> result<list<u8>, string>;
        }

        world transform-module {
            export transform;
        }
    "#,
});

struct Incompatible;

impl exports::waystream::transform::transform::Guest for Incompatible {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn process(batch: Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(batch)
    }
}

export!(Incompatible);
