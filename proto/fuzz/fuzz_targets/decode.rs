//! cargo-fuzz target: every `proto::turn` decoder and getter on arbitrary bytes
//! (`cd proto/fuzz && cargo +nightly fuzz run decode`). CI runs the same checks as property tests.
#![no_main]

#[path = "../exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| exercise::exercise(data));
