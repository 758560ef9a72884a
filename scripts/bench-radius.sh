#!/usr/bin/env bash
# RADIUS Access-Request round trips per second against a FreeRADIUS on loopback (its own
# config and ports, see tollgate/tests/support/freeradius.rs): Tollgate's client versus
# `radclient` flooding the same server in the same run, and the ratio.
#
#   scripts/bench-radius.sh [REQUESTS] [PARALLEL]     (defaults 20000 and 256)
#
# Needs freeradius and freeradius-utils (make deps installs them as root).
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_REQUESTS="${1:-20000}" BENCH_PARALLEL="${2:-256}"
command -v radclient >/dev/null || { echo "radclient not found: apt-get install freeradius freeradius-utils" >&2; exit 1; }
cargo test --release -p tollgate --test radius_bench -- --ignored --nocapture 2>&1 \
  | grep -E "^(round|RESULT)|tollgate client:|radclient:|panicked|^error"
