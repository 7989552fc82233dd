#!/usr/bin/env bash
# The local autoscaling demo: builds stunnerd, the KEDA scaler and the load generator, then
# runs a fleet of stunnerd processes on loopback that the scaler grows and shrinks under a ramp of
# TURN calls, first with our policy (drain steering + graceful drain), then with a naive one.
# Extra arguments go to `loadtest demo` (e.g. --short, --no-compare, --peak-calls 600).
set -euo pipefail
cd "$(dirname "$0")/.."
# A debug build is quicker to make and carries the demo's light load (a few thousand packets/s) easily.
cargo build --locked -p stunnerd -p scaler -p loadtest --bins
exec "${CARGO_TARGET_DIR:-target}/debug/loadtest" demo "$@"
