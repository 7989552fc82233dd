//! libFuzzer target `engine` (see `stunner_fuzz::engine`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stunner_fuzz::engine(data));
