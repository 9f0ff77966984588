#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| waystream_fuzz::plt_line(data));
