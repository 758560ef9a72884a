#!/usr/bin/env bash
# Instructions per packet of the forwarding path, counted by callgrind: repeatable on a
# noisy or virtual machine where cycle counters are unavailable. Two runs of different
# length per mode; the difference divided by the extra packets removes setup costs.
# The io-only mode is the reference (ports, pool and bursts without stages).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -q -p tollgate-benches --bin forward-profile
bin=target/release/forward-profile
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$@" 2>&1 | sed -n 's/.*Collected : //p'; }
printf '%-22s %12s\n' "mode (burst 32, 64 B)" "instr/packet"
for mode in pipeline io-only; do
    a=$(count 5000 "$mode")
    b=$(count 15000 "$mode")
    python3 -c "print(f'{\"$mode\":<22} {($b - $a) / (10000 * 32):12.1f}')"
done
echo "per-line detail: valgrind --tool=callgrind $bin 10000 && callgrind_annotate --auto=yes callgrind.out.*"
