#!/usr/bin/env bash
# Session set-up rate: first-packet logins per second into installed fast-path sessions,
# through the whole daemon, with the local store and with FreeRADIUS on loopback
# (radclient alone against the same server, in the same run, is the reference).
#
#   scripts/bench-logins.sh [SUBSCRIBERS]     (default 5000)
#
# Needs freeradius and freeradius-utils for the RADIUS half (make deps installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_LOGINS="${1:-5000}"
cargo test --release -p tollgate --test login_bench -- --ignored --nocapture 2>&1 \
  | grep -E "^RESULT|logins in|radclient:|panicked|^error"
