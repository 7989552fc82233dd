//! libFuzzer target `cds` (see `stunner_fuzz::cds`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stunner_fuzz::cds(data));
