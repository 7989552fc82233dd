//! libFuzzer target `dtls_demux` (see `stunner_fuzz::dtls_demux`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stunner_fuzz::dtls_demux(data));
