#!/usr/bin/env bash
# Side by side: the Linux kernel forwarding with nftables NAT to the servers, against
# Tollgate doing the same translation on its AF_XDP and its AF_PACKET port, in the same
# veth topology, driven by the same generator (tollgate pktgen) with the same mix. For
# each: the loss-free rate (binary search, RFC 2544 style), the CPU time per packet at
# that rate, and the overload point (what is still forwarded, and its p99 latency, when
# the generator offers all it can, and when it offers OVERLOAD times the loss-free rate:
# at its maximum the generator's own core is saturated and its receive queue adds to
# the latency, so the second point shows the DUT's). Modes run interleaved, RUNS times; the summary gives
# each figure's median and spread, and the ratios to the kernel of the same run.
#
#   [tgk-gen] gen-acc ──veth── dut-acc [tgk-dut] dut-core ──veth── gen-core [tgk-gen]
#             subscribers      10.10.0.1   192.0.2.1             servers
#
# The generator plays N subscribers (10.10.0.100 and up) with F UDP flows each to the
# VIP 203.0.113.10:5000, balanced per flow over 192.0.2.21-23:5000, and the servers'
# answers (half the packets go each way). The generator runs on GEN_CPU; the device
# under test on DUT_CPU: the kernel through RPS (both dut-* interfaces steered to
# DUT_CPU), Tollgate pinned there.
#
# CPU per packet, on both cores: the DUT process's CPU time plus the softirq and irq
# time of DUT_CPU and of GEN_CPU, divided by the packets moved. Both cores count
# because on veth the kernel's share of a port's work runs where the packet is sent
# from: XDP and the copy into the AF_XDP socket run in the generator's softirq on
# GEN_CPU, while the kernel router and the AF_PACKET ring's delivery run on DUT_CPU
# (RPS). The generator's own receive softirq is in every mode's figure alike. The DUT
# core's share alone is reported too. (Tick-based accounting: a softirq tick that lands
# in the DUT process's context is in both its time and the core's softirq time.)
# "Loss-free" allows LOSS_TOLERANCE of the packets lost (default 1 in 10^4): on a shared
# VM a zero-loss search ends wherever a neighbour's burst of work preempts the DUT core;
# LOSS_TOLERANCE=0 gives RFC 2544's strict definition. Every DUT is measured by the
# same rule, and the generator's own receive-ring drops are reported apart.
#
# Mode af_packet_steered is the AF_PACKET port with the receive work of its veths
# (RPS) on GEN_CPU instead of the worker's core, as a NIC's interrupt affinity would
# put it on a real host: it shows what AF_PACKET gives when the kernel's delivery into
# the ring does not compete with the worker for its core (receive livelock).
#
# Usage: scripts/compare-kernel.sh          (root; `make compare-kernel` installs nftables,
#                                            libbpf and clang, and builds, first)
# Environment:
#   TOLLGATE_BIN   [target/release/tollgate]     SUBSCRIBERS [100]   FLOWS [4]
#   SIZE [64]      TRIAL_SECONDS [3]             ITERATIONS [7]      LOSS_TOLERANCE [0.0001]
#   GEN_CPU [0]    DUT_CPU [1]                   OUT [target/compare-kernel.json]
#   MODES ["kernel af_xdp af_packet"] ("tollgate" = af_packet; also af_packet_steered)
#   RUNS [3]
#   OVERLOAD [2]: the second overload point, offered at this multiple of the loss-free rate
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${TOLLGATE_BIN:-target/release/tollgate}
SUBSCRIBERS=${SUBSCRIBERS:-100}
FLOWS=${FLOWS:-4}
SIZE=${SIZE:-64}
TRIAL_SECONDS=${TRIAL_SECONDS:-3}
ITERATIONS=${ITERATIONS:-7}
LOSS_TOLERANCE=${LOSS_TOLERANCE:-0.0001}
GEN_CPU=${GEN_CPU:-0}
DUT_CPU=${DUT_CPU:-1}
OUT=${OUT:-target/compare-kernel.json}
MODES=${MODES:-kernel af_xdp af_packet}
MODES=${MODES//tollgate/af_packet}
RUNS=${RUNS:-3}
OVERLOAD=${OVERLOAD:-2}
RUN=$(mktemp -d /tmp/tgk.XXXXXX)
NS_GEN=tgk-gen
NS_DUT=tgk-dut
ACC_MAC=02:00:00:00:00:01
CORE_MAC=02:00:00:00:00:02
VIP=203.0.113.10
PORT=5000
SERVERS=(192.0.2.21 192.0.2.22 192.0.2.23)
TG_PID=

die() { echo "compare-kernel: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces)"
for t in ip taskset python3; do
    command -v "$t" >/dev/null || die "$t missing: run make perf-deps"
done
if [[ " $MODES " == *" kernel "* ]]; then
    command -v nft >/dev/null || die "nft missing (the kernel mode needs it): run make perf-deps (installs nftables), or leave kernel out of MODES"
fi
[[ -x $BIN ]] || die "$BIN not built: cargo build --release -p tollgate"
ncpu=$(nproc)
((GEN_CPU < ncpu && DUT_CPU < ncpu)) || die "GEN_CPU/DUT_CPU must be below $ncpu"

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

cleanup() {
    [[ -n $TG_PID ]] && kill "$TG_PID" 2>/dev/null && wait "$TG_PID" 2>/dev/null
    ip netns del "$NS_GEN" 2>/dev/null || true
    ip netns del "$NS_DUT" 2>/dev/null || true
    rm -rf "$RUN"
}
trap cleanup EXIT

topology() {
    ip netns del "$NS_GEN" 2>/dev/null || true
    ip netns del "$NS_DUT" 2>/dev/null || true
    ip netns add "$NS_GEN"
    ip netns add "$NS_DUT"
    ip link add gen-acc netns "$NS_GEN" type veth peer name dut-acc netns "$NS_DUT"
    ip link add gen-core netns "$NS_GEN" type veth peer name dut-core netns "$NS_DUT"
    nsx "$NS_DUT" ip link set dut-acc address "$ACC_MAC"
    nsx "$NS_DUT" ip link set dut-core address "$CORE_MAC"
    for ns in "$NS_GEN" "$NS_DUT"; do
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        nsx "$ns" ip link set lo up
    done
    local rps_gen
    rps_gen=$(printf '%x' $((1 << GEN_CPU)))
    for i in acc core; do
        nsx "$NS_DUT" ip link set "dut-$i" up
        nsx "$NS_GEN" ip link set "gen-$i" up
        nsx "$NS_GEN" sh -c "echo $rps_gen > /sys/class/net/gen-$i/queues/rx-0/rps_cpus"
    done
    dut_rps "$DUT_CPU"
}

# dut_rps CPU: the DUT veths' receive work (RPS) on that core.
dut_rps() {
    local mask i
    mask=$(printf '%x' $((1 << $1)))
    for i in acc core; do
        nsx "$NS_DUT" sh -c "echo $mask > /sys/class/net/dut-$i/queues/rx-0/rps_cpus"
    done
}

kernel_up() {
    nsx "$NS_DUT" ip addr add 10.10.0.1/24 dev dut-acc
    nsx "$NS_DUT" ip addr add 192.0.2.1/24 dev dut-core
    nsx "$NS_DUT" sysctl -qw net.ipv4.ip_forward=1
    nsx "$NS_DUT" nft -f - <<EOF
table ip tgk {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP udp dport $PORT dnat to numgen inc mod 3 map { 0 : ${SERVERS[0]}, 1 : ${SERVERS[1]}, 2 : ${SERVERS[2]} }
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "dut-core" snat to 192.0.2.1
    }
}
EOF
}

kernel_down() {
    nsx "$NS_DUT" nft flush ruleset
    nsx "$NS_DUT" sysctl -qw net.ipv4.ip_forward=0
    nsx "$NS_DUT" ip addr flush dev dut-acc
    nsx "$NS_DUT" ip addr flush dev dut-core
}

# tollgate_up BACKEND: Tollgate on dut-acc and dut-core with that port backend.
tollgate_up() {
    local backend=$1 cfg=$RUN/tollgate.toml
    {
        cat <<EOF
[engine]
workers = 1
burst = 32
idle_sleep_us = 50
cores = [$DUT_CPU]

[control]
socket = "$RUN/ctl.sock"

[access]
backend = "$backend"
interface = "dut-acc"
address = "10.10.0.1/24"

[core]
backend = "$backend"
interface = "dut-core"
address = "192.0.2.1/24"

[log]
level = "warn"

[aaa]
# The run's own spool: not the host's /var/lib/tollgate (nor its schema version).
spool = "$RUN/accounting.db"

[subscribers]
unknown = "drop"
flow_records = "$RUN/flows.jsonl"
session_log = "$RUN/sessions.jsonl"

[[service]]
name = "udp"
vip = "$VIP"
protocol = "udp"
port = $PORT
policy = "round_robin"
session_type = "connection"
EOF
        for s in "${SERVERS[@]}"; do
            printf '[[service.server]]\naddress = "%s"\n' "$s"
        done
        python3 - "$SUBSCRIBERS" <<'PY'
import ipaddress, sys
for i in range(int(sys.argv[1])):
    print(f'[[subscriber]]\nuser = "gen{i}"\naddress = "{ipaddress.IPv4Address("10.10.0.100") + i}"\n')
PY
    } >"$cfg"
    "$BIN" check-config "$cfg" >/dev/null
    # Not through nsx: a backgrounded shell function is a subshell, and its pid is not
    # tollgate's (whose CPU time dut_ticks reads). ip netns exec and taskset exec.
    ip netns exec "$NS_DUT" taskset -c "$DUT_CPU" "$BIN" run --config "$cfg" >"$RUN/tollgate.log" 2>&1 &
    TG_PID=$!
    for _ in $(seq 50); do
        [[ -S $RUN/ctl.sock ]] && return 0
        kill -0 "$TG_PID" 2>/dev/null || { cat "$RUN/tollgate.log" >&2; die "tollgate exited"; }
        sleep 0.1
    done
    die "tollgate did not start: $(cat "$RUN/tollgate.log")"
}

tollgate_down() {
    kill "$TG_PID" 2>/dev/null && wait "$TG_PID" 2>/dev/null || true
    TG_PID=
}

# dut_ticks: irq+softirq ticks of DUT_CPU, of GEN_CPU, and the DUT process's utime+stime.
dut_ticks() {
    local dut gen proc=0
    dut=$(awk -v c="cpu$DUT_CPU" '$1 == c { print $7 + $8 }' /proc/stat)
    gen=$(awk -v c="cpu$GEN_CPU" '$1 == c { print $7 + $8 }' /proc/stat)
    # `ip netns exec` and taskset exec, so the pid started is tollgate's.
    if [[ -n $TG_PID && -r /proc/$TG_PID/stat ]]; then
        proc=$(awk '{ print $14 + $15 }' "/proc/$TG_PID/stat")
    fi
    echo "$dut $gen $proc"
}

# trial RATE: one generator run; prints its JSON with the DUT's CPU ticks added.
trial() {
    local rate=$1 before after
    before=$(dut_ticks)
    nsx "$NS_GEN" taskset -c "$GEN_CPU" "$BIN" pktgen --backend af-packet \
        --access-if gen-acc --core-if gen-core --gateway-mac "$ACC_MAC,$CORE_MAC" \
        --protocol udp --target "$VIP:$PORT" --subscribers "$SUBSCRIBERS" --flows "$FLOWS" \
        --sizes "$SIZE" --rate "$rate" --seconds "$TRIAL_SECONDS" --json >"$RUN/trial.json"
    after=$(dut_ticks)
    python3 - "$RUN/trial.json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b, a, hz = sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4])
r["dut_softirq_s"] = (int(a[0]) - int(b[0])) / hz
r["gen_softirq_s"] = (int(a[1]) - int(b[1])) / hz
r["dut_process_s"] = (int(a[2]) - int(b[2])) / hz
print(json.dumps(r))
PY
}

# search MODE: the overload point (a trial at the generator's maximum), then the loss-free
# rate by bisection; prints one line per trial on stderr and, on stdout, the best trial
# (with "rate_pps") and the overload trial as {"best": ..., "max": ...}.
search() {
    local mode=$1 probe lo=0 hi best='' mid r loss
    probe=$(trial max)
    hi=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(int(r["sent"]/r["seconds"]*1.05)+1)' "$probe")
    echo "$mode  max      $(summary "$probe")" >&2
    for _ in $(seq "$ITERATIONS"); do
        mid=$(( (lo + hi) / 2 ))
        ((mid > 0)) || break
        r=$(trial "$mid")
        loss=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(1 if r["sent"] and r["lost"] / r["sent"] <= float(sys.argv[2]) else 0)' "$r" "$LOSS_TOLERANCE")
        echo "$mode  $(printf '%8d' "$mid") $(summary "$r") $([[ $loss == 1 ]] && echo ok || echo LOSS)" >&2
        if [[ $loss == 1 ]]; then
            lo=$mid
            best=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["rate_pps"]=int(sys.argv[2]); print(json.dumps(r))' "$r" "$mid")
        else
            hi=$mid
        fi
    done
    [[ -n $best ]] || best='{"rate_pps": 0, "received": 0, "dut_softirq_s": 0, "gen_softirq_s": 0, "dut_process_s": 0}'
    # Overload the DUT without overloading the generator: OVERLOAD x the loss-free rate
    # (where that is above what the generator can offer, this is its maximum again).
    over=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["rate_pps"] * float(sys.argv[2])))' "$best" "$OVERLOAD")
    if ((over > 0)); then
        r=$(trial "$over")
        echo "$mode  $(printf '%8d' "$over") $(summary "$r") (${OVERLOAD}x loss-free)" >&2
    else
        r=$probe
    fi
    printf '{"best": %s, "max": %s, "over": %s}\n' "$best" "$probe" "$r"
}

summary() {
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
cpu = r["dut_softirq_s"] + r["gen_softirq_s"] + r["dut_process_s"]
gen_drop = sum(p.get("rx_dropped", 0) for p in r.get("ports", {}).values())
print("sent {:>9} lost {:>6} (up {}, down {}, generator rings {}) rx {:7.1f} kpps  p99 {:8.1f} us  cpu {:5.2f} s".format(
    r["sent"], r["lost"], r.get("uplink", {}).get("lost", "-"), r.get("downlink", {}).get("lost", "-"),
    gen_drop, r["rx_mpps"] * 1e3, r["latency_us"]["p99"], cpu))' "$1"
}

echo "compare-kernel: $SUBSCRIBERS subscribers x $FLOWS UDP flows, $SIZE B frames, half each way," \
    "$TRIAL_SECONDS s trials, loss tolerance $LOSS_TOLERANCE; generator on CPU $GEN_CPU, DUT on CPU $DUT_CPU;" \
    "modes $MODES, $RUNS interleaved runs"
topology
RESULTS=$RUN/results.jsonl
: >"$RESULTS"
for run in $(seq "$RUNS"); do
    for mode in $MODES; do
        case $mode in
        kernel) kernel_up ;;
        af_xdp | af_packet) tollgate_up "$mode" ;;
        af_packet_steered) dut_rps "$GEN_CPU" && tollgate_up af_packet ;;
        *) die "unknown mode $mode (kernel, af_xdp, af_packet, af_packet_steered)" ;;
        esac
        echo "run $run: $mode" >&2
        r=$(search "$mode")
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["run"]=int(sys.argv[2]); r["mode"]=sys.argv[3]; print(json.dumps(r))' \
            "$r" "$run" "$mode" >>"$RESULTS"
        case $mode in
        kernel) kernel_down ;;
        af_packet_steered) tollgate_down && dut_rps "$DUT_CPU" ;;
        *) tollgate_down ;;
        esac
    done
done

mkdir -p "$(dirname "$OUT")"
python3 - "$OUT" "$RESULTS" <<PY
import json, statistics, sys
out, path = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path)]
def figures(r):
    b, m, o = r["best"], r["max"], r.get("over") or r["max"]
    pkts = b.get("received", 0)
    cpu_dut = b["dut_softirq_s"] + b["dut_process_s"]
    cpu_all = cpu_dut + b["gen_softirq_s"]
    lf = b["rate_pps"]
    delivered = m["received"] / m["seconds"] if m.get("seconds") else 0
    return {"run": r["run"], "mode": r["mode"], "loss_free_pps": lf,
            "cpu_ns_per_packet": cpu_all * 1e9 / pkts if pkts else None,
            "cpu_ns_per_packet_dut_core": cpu_dut * 1e9 / pkts if pkts else None,
            "dut_process_s": b["dut_process_s"], "dut_softirq_s": b["dut_softirq_s"],
            "gen_softirq_s": b["gen_softirq_s"],
            "latency_p99_us_loss_free": b.get("latency_us", {}).get("p99"),
            "offered_max_pps": m["sent"] / m["seconds"] if m.get("seconds") else 0,
            "delivered_at_max_pps": delivered,
            "latency_p99_us_at_max": m.get("latency_us", {}).get("p99"),
            "overload_ratio": delivered / lf if lf else None,
            "offered_over_pps": o["sent"] / o["seconds"] if o.get("seconds") else 0,
            "delivered_over_pps": o["received"] / o["seconds"] if o.get("seconds") else 0,
            "latency_p99_us_over": o.get("latency_us", {}).get("p99"),
            "over_ratio": (o["received"] / o["seconds"]) / lf if lf and o.get("seconds") else None}
runs = [figures(r) for r in rows]
modes = list(dict.fromkeys(r["mode"] for r in runs))
def spread(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
summary = {}
for m in modes:
    rs = [r for r in runs if r["mode"] == m]
    summary[m] = {k: spread([r[k] for r in rs]) for k in
                  ("loss_free_pps", "cpu_ns_per_packet", "cpu_ns_per_packet_dut_core",
                   "offered_max_pps", "delivered_at_max_pps", "latency_p99_us_at_max", "overload_ratio",
                   "offered_over_pps", "delivered_over_pps", "latency_p99_us_over", "over_ratio")}
ratios = {}
for m in modes:
    if m == "kernel":
        continue
    rate, cpu = [], []
    for r in (x for x in runs if x["mode"] == m):
        k = next((x for x in runs if x["mode"] == "kernel" and x["run"] == r["run"]), None)
        if not k:
            continue
        if k["loss_free_pps"]:
            rate.append(r["loss_free_pps"] / k["loss_free_pps"])
        if k["cpu_ns_per_packet"] and r["cpu_ns_per_packet"]:
            cpu.append(k["cpu_ns_per_packet"] / r["cpu_ns_per_packet"])
    ratios[m] = {"rate_vs_kernel": spread(rate), "kernel_cpu_over_tollgate_cpu": spread(cpu)}
def fmt(s, scale=1.0, f="{:.1f}"):
    if not s:
        return "-"
    return (f + " (" + f + "-" + f + ")").format(s["median"] * scale, s["min"] * scale, s["max"] * scale)
print()
print("median (min-max) of %d runs" % max(r["run"] for r in runs))
print(f"{'':<12} {'loss-free kpps':>24} {'CPU ns/pkt, both cores':>26} {'DUT core only':>22} "
      f"{'at max offered: kpps':>24} {'p99 us':>26} {'/ loss-free':>20}")
names = {"kernel": "kernel+nft", "af_xdp": "af_xdp", "af_packet": "af_packet", "af_packet_steered": "af_pkt+rps"}
for m in modes:
    s = summary[m]
    print(f"{names.get(m, m):<12} {fmt(s['loss_free_pps'], 1e-3):>24} {fmt(s['cpu_ns_per_packet'], 1, '{:.0f}'):>26} "
          f"{fmt(s['cpu_ns_per_packet_dut_core'], 1, '{:.0f}'):>22} {fmt(s['delivered_at_max_pps'], 1e-3):>24} "
          f"{fmt(s['latency_p99_us_at_max'], 1, '{:.0f}'):>26} {fmt(s['overload_ratio'], 1, '{:.2f}'):>20}")
print()
print(f"{'':<12} {'offered %sx loss-free, kpps' % '$OVERLOAD':>30} {'delivered kpps':>24} {'p99 us':>26} {'/ loss-free':>20}")
for m in modes:
    s = summary[m]
    print(f"{names.get(m, m):<12} {fmt(s['offered_over_pps'], 1e-3):>30} {fmt(s['delivered_over_pps'], 1e-3):>24} "
          f"{fmt(s['latency_p99_us_over'], 1, '{:.0f}'):>26} {fmt(s['over_ratio'], 1, '{:.2f}'):>20}")
for m, r in ratios.items():
    print(f"{names.get(m, m)} / kernel, same run: loss-free rate {fmt(r['rate_vs_kernel'], 1, '{:.2f}')}x, "
          f"kernel CPU per packet / {m}'s {fmt(r['kernel_cpu_over_tollgate_cpu'], 1, '{:.2f}')}x")
res = {"subscribers": $SUBSCRIBERS, "flows_each": $FLOWS, "frame_bytes": $SIZE,
       "trial_seconds": $TRIAL_SECONDS, "loss_tolerance": $LOSS_TOLERANCE, "runs": runs,
       "summary": summary, "ratios_vs_kernel": ratios}
json.dump(res, open(out, "w"), indent=2)
print(f"written to {out}")
PY
