#!/usr/bin/env bash
# Prints Mpps and ns/packet from criterion's estimates of the `forward` benches (one
# iteration = one poll = one burst; the burst size is in the bench name).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/criterion/forward
[ -d "$dir" ] || { echo "no results in $dir: run make bench first" >&2; exit 1; }
printf '%-28s %10s %12s\n' "forward bench (1 worker)" "Mpps" "ns/packet"
for est in "$dir"/*/new/estimates.json; do
  name=$(basename "$(dirname "$(dirname "$est")")")
  burst=$(sed -E 's/.*burst([0-9]+).*/\1/' <<<"$name")
  python3 - "$est" "$burst" "$name" <<'PY'
import json, sys
est, burst, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ns_iter = json.load(open(est))["mean"]["point_estimate"]
ns_pkt = ns_iter / burst
print(f"{name:<28} {1000.0 / ns_pkt:10.2f} {ns_pkt:12.2f}")
PY
done
