#!/usr/bin/env bash
# Times rating on N generated usage records (default 100 000) with the release binary:
# `tollgate billing import`, then `close-period` (load, rate, write invoices), then
# `rerate`. Prints records per second of the close. Needs python3; uses a temp dir.
# With TOLLGATE_BENCH_DATABASE_URL=postgres://... the ledger is in that PostgreSQL
# database ([database], which must be empty) instead of a SQLite file.
#
#   scripts/rating-bench.sh [N]
set -euo pipefail
N=${1:-100000}
BIN=${TOLLGATE_BIN:-target/release/tollgate}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

python3 - "$N" "$DIR" "${TOLLGATE_BENCH_DATABASE_URL:-}" <<'EOF'
import json, random, sys
n, d, url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rnd = random.Random(4)
users, accounts = 4000, 1000
may = 1714521600 - 7200          # 2024-05-01 00:00 at UTC+2
month = 31 * 86400
cfg = ['[access]\nbackend = "memory"\naddress = "10.10.0.1/24"\n[core]\nbackend = "memory"\naddress = "192.0.2.1/24"',
       ('[database]\nurl = "%s"\n[rating]\n' % url if url else '[rating]\ndatabase = "%s/rating.db"\n' % d)
       + 'timezone_offset_minutes = 120\ndefault_tariff = "home"',
       '[[rating.band]]\nname = "peak"\ndays = ["weekdays"]\nfrom = "08:00"\nto = "20:00"',
       '[[rating.band]]\nname = "night"\nfrom = "20:00"\nto = "08:00"',
       '[[rating.band]]\nname = "weekend"\ndays = ["weekend"]\nfrom = "08:00"\nto = "20:00"',
       '[[rating.tariff]]\nname = "home"']
for kind, extra in [("bytes", 'direction = "tx"\nprice = 3\nper = 1000000'),
                    ("bytes", 'direction = "rx"\nprice = 2\nper = 1000000'),
                    ("packets", 'price = 1\nper = 1000'),
                    ("time", 'band = "peak"\nprice = 25\nper = 3600'),
                    ("time", 'band = "night"\nprice = 5\nper = 3600'),
                    ("bandwidth", 'band = "peak"\nprice = 1\nper = 3600000000'),
                    ("bandwidth", 'band = "night"\nprice = 1\nper = 7200000000'),
                    ("bandwidth", 'band = "weekend"\nsince = "2024-05-15"\nprice = 1\nper = 5000000000'),
                    ("tunnel", 'price = 700'), ("line_time", 'price = 1\nper = 3600'),
                    ("fixed", 'price = 990')]:
    cfg.append('[[rating.tariff.rate]]\nkind = "%s"\n%s' % (kind, extra))
cfg.append('[[rating.contract]]\nname = "vpn"\nfee = 450\nprice = 10')
for a in range(accounts):
    us = ", ".join('"u%d"' % (a * 4 + k) for k in range(4))
    cfg.append('[[rating.account]]\nid = "a%d"\nusers = [%s]\ncontracts = ["vpn"]' % (a, us))
open(d + "/bench.toml", "w").write("\n".join(cfg) + "\n")
with open(d + "/records.jsonl", "w") as f:
    sessions, bw, tun = int(n * 0.6), int(n * 0.3), int(n * 0.08)
    for i in range(sessions):
        s = may + rnd.randrange(month); dur = rnd.randrange(60, 8 * 3600)
        f.write(json.dumps({"type": "session", "id": "s%d" % i, "user": "u%d" % rnd.randrange(users),
            "session": "c%d" % i, "start": s, "stop": s + dur, "tx_packets": rnd.randrange(10**6),
            "tx_bytes": rnd.randrange(10**9), "rx_packets": rnd.randrange(10**6),
            "rx_bytes": rnd.randrange(10**10), "cause": "user-request"}) + "\n")
    for i in range(bw):
        c = i // 3
        f.write(json.dumps({"type": "bandwidth", "id": "b%d" % i, "user": "u%d" % (c % users),
            "session": "c%d" % c, "at": may + rnd.randrange(month),
            "bps": rnd.randrange(10**6, 10**9), "reason": "coa"}) + "\n")
    for i in range(tun):
        s = may + rnd.randrange(month)
        f.write(json.dumps({"type": "tunnel", "id": "t%d" % i, "account": "a%d" % rnd.randrange(accounts),
            "tunnel": "T%d" % rnd.randrange(5000), "line": "L%d" % rnd.randrange(200),
            "start": s, "stop": s + rnd.randrange(86400)}) + "\n")
    for i in range(n - sessions - bw - tun):
        f.write(json.dumps({"type": "service", "id": "v%d" % i, "account": "a%d" % rnd.randrange(accounts),
            "contract": "vpn", "at": may + rnd.randrange(month), "quantity": rnd.randrange(100)}) + "\n")
EOF

# Milliseconds a command takes; its output goes to $DIR/out.
t() { local s e; s=$(date +%s%N); "$@" >"$DIR/out" 2>&1 || { cat "$DIR/out" >&2; exit 1; }; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
echo "records: $N ($(du -h "$DIR/records.jsonl" | cut -f1) of JSON lines), accounts: 1000 of 4 users"
ti=$(t "$BIN" billing -c "$DIR/bench.toml" import "$DIR/records.jsonl"); echo "import:       ${ti} ms  ($(cat "$DIR/out"))"
tc=$(t "$BIN" billing -c "$DIR/bench.toml" close-period 2024-05); echo "close-period: ${tc} ms  ($(cat "$DIR/out"))"
tr=$(t "$BIN" billing -c "$DIR/bench.toml" rerate 2024-05); echo "rerate:       ${tr} ms  ($(cat "$DIR/out"))"
echo "rating throughput (close-period): $((N * 1000 / (tc > 0 ? tc : 1))) records/s"
