#!/usr/bin/env bash
# Instructions per packet, counted by callgrind: repeatable on a noisy or virtual
# machine where cycle counters are unavailable. Two runs of different length per mode;
# the difference divided by the extra packets removes set-up costs.
#   forwarding (plain routing, 256 flows) and its io-only reference;
#   the full subscriber pipeline (tollgate bench's scenario) at PROFILE_SIZES (default
#   1k flows and 100k flows) and the io-only reference over the same frames, for the
#   PROFILE_ACCESS line (a `tollgate bench --access` name, ipoe by default: nat64 and
#   ipv6 profile the IPv6 paths).
# The hottest functions of the pipeline at the last size follow (self cost per packet).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not found (make perf-deps)" >&2; exit 1; }
cargo build --release -q -p tollgate-benches --bin forward-profile --bin pipeline-profile
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { valgrind --tool=callgrind --callgrind-out-file="$out/$1" "${@:2}" 2>&1 | sed -n 's/.*Collected : //p'; }
per() { python3 -c "print(f'{($2 - $1) / $3:12.1f}')"; }

printf '%-34s %12s\n' "mode (burst 32, 64 B)" "instr/packet"
fwd=target/release/forward-profile
for mode in pipeline io-only; do
    a=$(count f1 $fwd 5000 "$mode")
    b=$(count f2 $fwd 15000 "$mode")
    printf '%-34s %s\n' "forward $mode" "$(per "$a" "$b" $((10000 * 32)))"
done
pipe=target/release/pipeline-profile
for size in ${PROFILE_SIZES:-1000x1 100000x1}; do
    s=${size%x*}
    e=${size#*x}
    for mode in pipeline io-only; do
        a=$(count "p1-$mode" $pipe "$s" "$e" 3000 $mode "${PROFILE_ACCESS:-ipoe}")
        b=$(count "p2-$mode" $pipe "$s" "$e" 9000 $mode "${PROFILE_ACCESS:-ipoe}")
        # 64 packets per poll: 32 from each side.
        printf '%-34s %s\n' "pipeline ${PROFILE_ACCESS:-ipoe} $((s * e)) flows $mode" "$(per "$a" "$b" $((6000 * 64)))"
    done
done
echo
echo "hottest functions of the pipeline at $((s * e)) flows (self, instr/packet):"
python3 - "$out/p1-pipeline" "$out/p2-pipeline" $((6000 * 64)) <<'PY'
import re, subprocess, sys
def load(f):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no",
                          "--threshold=100", f], capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S+?):(.*?)(?: \[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            fn = re.sub(r"<impl [^>]*>", "", m.group(3)).replace("tollgate_dataplane::", "")
            key = m.group(2).split("/src/")[-1] + " " + fn[-70:]
            d[key] = d.get(key, 0) + int(m.group(1).replace(",", ""))
    return d
a, b, n = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / n, k) for k in b)
for v, k in reversed(rows[-15:]):
    print(f"{v:8.1f}  {k}")
PY
echo "per-line detail: valgrind --tool=callgrind $pipe 1000 1 10000 && callgrind_annotate --auto=yes callgrind.out.*"
