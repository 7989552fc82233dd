#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then checks format, lints,
# builds every binary and runs every test.
#   scripts/test.sh --slow   everything (what CI runs)
#   scripts/test.sh          the same without the `slow_*` tests (the benchmark and the demo end to end)
set -euo pipefail
cd "$(dirname "$0")/.."

SLOW=0
case "${1:-}" in
    --slow) SLOW=1 ;;
    "") ;;
    *) echo "usage: scripts/test.sh [--slow]" >&2; exit 2 ;;
esac

phase() { echo "== [${SECONDS}s] $*"; }

scripts/setup.sh

phase "cargo fmt --check"
cargo fmt --all -- --check

# scripts/unused-deps.py is cargo-machete's check without installing cargo-machete (building it took
# ~7 minutes on a 2-core machine; the script takes a second).
phase "unused dependencies"
scripts/unused-deps.py

phase "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# No separate `cargo build --bins`: building the tests builds every binary too (the integration tests
# start them as real processes), and with the dev-dependencies' features, so a separate build would
# compile a good part of the dependency tree twice.
phase "tests"
export PATH="$PWD/.tools/bin:$PATH"
# Tests that need a binary of another package fail (never skip) when it is missing.
export CI="${CI:-1}"
if cargo nextest --version >/dev/null 2>&1; then
    # Every test is its own process, several at once (.config/nextest.toml: `slow_*` tests run alone).
    # There are no doctests (`cargo test --doc` finds none), so nothing is left out.
    filter=()
    [ "$SLOW" = 1 ] || filter=(-E 'not test(/(^|::)slow_/)')
    cargo nextest run --workspace --locked --no-fail-fast -j "${TEST_THREADS:-4}" "${filter[@]}"
else
    skip=()
    [ "$SLOW" = 1 ] || skip=(--skip slow_)
    cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-2}" "${skip[@]}"
fi

phase "images (the debug binaries just built, as OCI archives; each run from its image's root filesystem)"
scripts/images.sh --profile debug --no-build
scripts/images-test.sh

phase "fuzz (short bounded run of every decoder target, stable toolchain)"
(cd fuzz && CARGO_TARGET_DIR=../target cargo build --locked --bin stable-fuzz \
    && ../target/debug/stable-fuzz all 200000)
phase "done"
