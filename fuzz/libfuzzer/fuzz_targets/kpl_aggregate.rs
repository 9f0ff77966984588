#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| waystream_fuzz::kpl_aggregate(data));
