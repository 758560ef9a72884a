#!/usr/bin/env bash
# The scaling curve: the full pipeline on 1, 2, 4, 8 and 12 workers at once (each with its
# own sessions and flows on its own in-memory ports, as behind a NIC that steers every
# packet to its owner), Mpps per worker count and the efficiency against one worker,
# from interleaved runs. A thin wrapper over `tollgate bench --workers`: it needs only
# the release binary (copy it and this script to the machine to measure; no Rust
# toolchain, no python). A binary built with the af_xdp feature (what `make build` makes
# where libbpf is installed) links libbpf.so.1: the target needs Debian's libbpf1, or copy
# a binary built without the feature (cargo build --release -p tollgate).
#
# Usage: scripts/scale.sh
# Environment:
#   TOLLGATE_BIN  the binary [tollgate next to this script, else <repo>/target/release/tollgate,
#                 else tollgate on PATH]
#   WORKERS [1,2,4,8,12]  counts to measure; counts above the CPUs this process may use are
#                 left out unless OVERSUBSCRIBE=1 (they would measure sharing, not scaling)
#   FLOWS [100k]  flows per worker      RUNS [3]  interleaved runs   RUN_SECONDS [1]  per run
#   OUT           also write the JSON report here
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
if [[ -n ${TOLLGATE_BIN:-} ]]; then
    bin=$TOLLGATE_BIN
elif [[ -x $here/tollgate ]]; then
    bin=$here/tollgate
elif [[ -x $here/../target/release/tollgate ]]; then
    bin=$here/../target/release/tollgate
else
    bin=$(command -v tollgate || true)
fi
[[ -n $bin && -x $bin ]] || {
    echo "scale: no tollgate binary: set TOLLGATE_BIN, or put tollgate next to this script" >&2
    exit 1
}

cpus=$(nproc)
counts=()
skipped=()
IFS=, read -r -a asked <<<"${WORKERS:-1,2,4,8,12}"
for n in "${asked[@]}"; do
    [[ $n =~ ^[0-9]+$ && $n -ge 1 ]] || { echo "scale: WORKERS: $n is not a count" >&2; exit 2; }
    if ((n <= cpus)) || [[ ${OVERSUBSCRIBE:-0} == 1 ]]; then counts+=("$n"); else skipped+=("$n"); fi
done
((${#skipped[@]} == 0)) ||
    echo "scale: $cpus CPUs: not measuring ${skipped[*]} workers (OVERSUBSCRIBE=1 measures them anyway)"
list=$(IFS=,; echo "${counts[*]}")

args=(bench --workers "$list" --flows "${FLOWS:-100k}" --runs "${RUNS:-3}" --seconds "${RUN_SECONDS:-1}")
[[ -z ${OUT:-} ]] || args+=(--out "$OUT")
exec "$bin" "${args[@]}"
