//! libFuzzer target `admin_query` (see `stunner_fuzz::admin_query`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stunner_fuzz::admin_query(data));
