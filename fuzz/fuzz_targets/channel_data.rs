//! libFuzzer target `channel_data` (see `stunner_fuzz::channel_data`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stunner_fuzz::channel_data(data));
