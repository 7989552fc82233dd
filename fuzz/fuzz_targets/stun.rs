//! libFuzzer target `stun` (see `stunner_fuzz::stun`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stunner_fuzz::stun(data));
