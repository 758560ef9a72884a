#!/usr/bin/env bash
# Prints Mpps and ns/packet from criterion's estimates of the `forward` and `tunnel` benches (one
# iteration = one poll = one burst; the burst size is in the bench name), and each
# pipeline run as a ratio of the io-only reference measured in the same `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/criterion/forward
[ -d "$dir" ] || { echo "no results in $dir: run make bench first" >&2; exit 1; }
python3 - "$dir" <<'PY'
import glob, json, os, re, sys
rows = {}
tunnel = os.path.join(os.path.dirname(sys.argv[1]), "tunnel")
for est in sorted(glob.glob(os.path.join(sys.argv[1], "*", "new", "estimates.json"))
                  + glob.glob(os.path.join(tunnel, "*", "new", "estimates.json"))):
    name = est.split(os.sep)[-3]
    burst = int(re.search(r"burst(\d+)", name).group(1))
    ns_pkt = json.load(open(est))["mean"]["point_estimate"] / burst
    rows[name] = ns_pkt
ref = rows.get("io_only_64B_256flows_burst32")
print(f"{'forward bench (1 worker, memory ports)':<40} {'Mpps':>8} {'ns/pkt':>8} {'vs io-only':>11}")
for name, ns in sorted(rows.items(), key=lambda r: r[1]):
    ratio = f"{ns / ref:.2f}x" if ref else "-"
    print(f"{name:<40} {1000.0 / ns:8.2f} {ns:8.2f} {ratio:>11}")
PY
