//! Shared helpers of the integration tests: start real servers on loopback.
// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use loadtest::bench::server::{ServerKind, ServerProcess, ServerSpec, TlsFiles};

/// Where test servers keep their config and logs.
pub(crate) fn workdir(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("loadtest-it-{}-{test}", std::process::id()))
}

/// The stunnerd binary built next to the test executable (target/<profile>/stunnerd).
pub(crate) fn stunnerd_bin() -> PathBuf {
    loadtest::bench::default_stunnerd_bin()
}

/// True (after a loud message) when stunnerd has not been built, so stunnerd tests are skipped.
/// Under CI (`CI` set, as `scripts/test.sh` does; `cargo test --workspace` builds every binary) a
/// missing binary fails.
pub(crate) fn stunnerd_missing() -> bool {
    let bin = stunnerd_bin();
    if bin.exists() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} not built: CI must not skip stunnerd tests",
        bin.display()
    );
    eprintln!(
        "\n!!!!!!!! SKIPPING stunnerd TEST: {} not found — run `cargo build -p stunnerd` first !!!!!!!!\n",
        bin.display()
    );
    true
}

/// Starts a single-threaded server of `kind`, unpinned.
pub(crate) fn start(kind: ServerKind, test: &str) -> ServerProcess {
    start_with(kind, test, None)
}

/// Starts a single-threaded server of `kind` with TLS and DTLS listeners too (a fresh self-signed
/// certificate for localhost/127.0.0.1).
pub(crate) fn start_secure(kind: ServerKind, test: &str) -> ServerProcess {
    let files = TlsFiles::self_signed(&workdir(test)).expect("self-signed certificate");
    start_with(kind, test, Some(files))
}

fn start_with(kind: ServerKind, test: &str, tls: Option<TlsFiles>) -> ServerProcess {
    let spec = ServerSpec {
        kind,
        threads: 1,
        cpus: Vec::new(),
        stunnerd_bin: stunnerd_bin(),
        coturn_bin: "/usr/bin/turnserver".into(),
        workdir: workdir(test),
        tls,
    };
    ServerProcess::start(&spec).unwrap_or_else(|e| panic!("start {kind:?}: {e}"))
}
