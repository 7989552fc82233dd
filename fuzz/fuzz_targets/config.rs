//! libFuzzer target `config` (see `stunner_fuzz::config`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stunner_fuzz::config(data));
