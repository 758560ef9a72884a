#!/usr/bin/env bash
# Tollgate against dpdk-testpmd on the same vdev pair and the same core, in one run.
#
#   scripts/compare-testpmd.sh [--huge] [SECONDS] [CORE]
#
# Three measurements, interleaved ROUNDS times (default 3), each SECONDS long (default 5)
# on core CORE (default 1), between two net_null devices:
#   1. dpdk-testpmd --forward-mode=macswap (one forwarding core: CORE);
#   2. Tollgate's DPDK port and L2 rewrite stage only (the same work as macswap);
#   3. Tollgate's whole pipeline: 200 sessions, 10 000 UDP flows to a VIP, NAT both ways
#      (the frames are templates written into each mbuf net_null hands over).
# Each prints packets received per second on both devices; a run's figure is the median
# of its seconds after the first, a measurement's the median over rounds. The ratios are
# computed from figures of this same run.
#
# --no-huge by default (works anywhere as root); --huge reserves 2 MiB hugepages (root)
# and runs all three on them, which is what a production host does.
# Needs dpdk-testpmd (Debian: dpdk-dev) and libdpdk-dev; builds the release example
# (cargo build --release -p tollgate-dataplane --features dpdk --example dpdk_compare).
set -euo pipefail
cd "$(dirname "$0")/.."

HUGE=0
if [ "${1:-}" = "--huge" ]; then HUGE=1; shift; fi
SECS=${1:-5}
CORE=${2:-1}
ROUNDS=${ROUNDS:-3}
NCPU=$(nproc)
MAIN=0; [ "$CORE" = 0 ] && MAIN=1
if [ "$CORE" -ge "$NCPU" ] || [ "$MAIN" -ge "$NCPU" ]; then
  echo "need cores $CORE and $MAIN; this machine has $NCPU" >&2; exit 1
fi
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd not found: apt-get install dpdk-dev (or make deps as root)" >&2; exit 1; }

if [ "$HUGE" = 1 ]; then
  scripts/hugepages.sh reserve "${HUGEPAGES:-1024}" 2M >/dev/null
  MEMORY="--in-memory -m 1024"
else
  MEMORY="--no-huge -m 1024"
fi
export COMPARE_EAL_MEMORY="$MEMORY"

cargo build -q --release -p tollgate-dataplane --features dpdk --example dpdk_compare
TG=target/release/examples/dpdk_compare
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print 0; else print v[int((NR + 1) / 2)]}'; }

testpmd() {
  # testpmd prints each port's Rx-pps every second: sum the two ports per second.
  # shellcheck disable=SC2086
  timeout -s INT $((SECS + 4)) dpdk-testpmd -l "$MAIN,$CORE" --main-lcore "$MAIN" $MEMORY \
    --no-pci --no-shconf --no-telemetry --log-level=lib.eal:warning \
    --vdev net_null0 --vdev net_null1 -- \
    --forward-mode=macswap --nb-cores=1 --burst=32 --total-num-mbufs=16383 \
    --stats-period 1 --no-lsc-interrupt -a >"$OUT/testpmd.log" 2>&1 || true
  awk '/Rx-pps:/ {s += $2; if (++n % 2 == 0) {print s / 1e6; s = 0}}' "$OUT/testpmd.log" \
    | awk 'NR > 2' | head -n "$SECS" | median
}

tollgate() {
  taskset -c "$CORE" "$TG" "$1" "$SECS" "$CORE" >"$OUT/$1.log" 2>"$OUT/$1.err" || { cat "$OUT/$1.err" >&2; exit 1; }
  awk '/^median_mpps/ {print $2}' "$OUT/$1.log"
}

echo "net_null pair, core $CORE, $SECS s x $ROUNDS rounds, memory: $MEMORY"
: >"$OUT/t"; : >"$OUT/l"; : >"$OUT/p"
for r in $(seq "$ROUNDS"); do
  t=$(testpmd); l=$(tollgate l2); p=$(tollgate pipeline)
  printf 'round %d: testpmd macswap %.2f  tollgate l2 %.2f  tollgate pipeline %.2f Mpps\n' "$r" "$t" "$l" "$p"
  echo "$t" >>"$OUT/t"; echo "$l" >>"$OUT/l"; echo "$p" >>"$OUT/p"
done
T=$(median <"$OUT/t"); L=$(median <"$OUT/l"); P=$(median <"$OUT/p")
[ "$(awk -v t="$T" 'BEGIN {print (t > 0)}')" = 1 ] || { echo "testpmd reported nothing:"; cat "$OUT/testpmd.log"; exit 1; }
awk -v t="$T" -v l="$L" -v p="$P" 'BEGIN {
  printf "\n%-34s %8.2f Mpps\n", "testpmd macswap", t
  printf "%-34s %8.2f Mpps   %.2f x testpmd (target >= 0.90)\n", "tollgate L2 rewrite only", l, l / t
  printf "%-34s %8.2f Mpps   %.2f x testpmd, %.2f x L2 only\n", "tollgate full pipeline", p, p / t, p / l
}'
if [ "$HUGE" = 1 ]; then scripts/hugepages.sh release >/dev/null; fi
