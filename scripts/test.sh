#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then checks format, lints,
# builds every binary and runs every test. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

phase() { echo "== [${SECONDS}s] $*"; }

scripts/setup.sh

phase "cargo fmt --check"
cargo fmt --all -- --check

phase "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "build binaries (integration tests start them as real processes)"
cargo build --workspace --bins --locked

phase "tests"
export PATH="$PWD/.tools/bin:$PATH"
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"

phase "fuzz (short bounded run of every decoder target, stable toolchain)"
(cd fuzz && CARGO_TARGET_DIR=../target cargo build --locked --bin stable-fuzz \
    && ../target/debug/stable-fuzz all 200000)
phase "done"
