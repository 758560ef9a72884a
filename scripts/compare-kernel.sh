#!/usr/bin/env bash
# Side by side: the Linux kernel forwarding with nftables NAT to the servers, against
# Tollgate (AF_PACKET) doing the same translation, in the same veth topology, driven by
# the same generator (tollgate pktgen) with the same mix. For each: the loss-free rate
# (binary search, RFC 2544 style) and the CPU time per packet on the device-under-test
# core at that rate. Ratios are printed from the same run.
#
#   [tgk-gen] gen-acc ──veth── dut-acc [tgk-dut] dut-core ──veth── gen-core [tgk-gen]
#             subscribers      10.10.0.1   192.0.2.1             servers
#
# The generator plays N subscribers (10.10.0.100 and up) with F UDP flows each to the
# VIP 203.0.113.10:5000, balanced per flow over 192.0.2.21-23:5000, and the servers'
# answers (half the packets go each way). The generator runs on GEN_CPU; the device
# under test on DUT_CPU: the kernel through RPS (both dut-* interfaces steered to
# DUT_CPU), Tollgate pinned there. CPU per packet on the DUT core: kernel = softirq+irq
# time of DUT_CPU; Tollgate = its process's CPU time + softirq+irq of DUT_CPU (the
# kernel's share of delivering to and sending from its AF_PACKET rings).
# "Loss-free" allows LOSS_TOLERANCE of the packets lost (default 1 in 10^4): on a shared
# VM a zero-loss search ends wherever a neighbour's burst of work preempts the DUT core;
# LOSS_TOLERANCE=0 gives RFC 2544's strict definition. Both DUTs are measured by the
# same rule, and the generator's own receive-ring drops are reported apart.
#
# Usage: scripts/compare-kernel.sh          (root; `make compare-kernel` builds and
#                                            installs nftables first)
# Environment:
#   TOLLGATE_BIN   [target/release/tollgate]     SUBSCRIBERS [100]   FLOWS [4]
#   SIZE [64]      TRIAL_SECONDS [3]             ITERATIONS [7]      LOSS_TOLERANCE [0.0001]
#   GEN_CPU [0]    DUT_CPU [1]                   OUT [target/compare-kernel.json]
#   MODES ["kernel tollgate"]
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
MODES=${MODES:-kernel tollgate}
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
for t in ip nft taskset python3; do
    command -v "$t" >/dev/null || die "$t missing: run make perf-deps (installs nftables)"
done
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
    local rps_dut rps_gen
    rps_dut=$(printf '%x' $((1 << DUT_CPU)))
    rps_gen=$(printf '%x' $((1 << GEN_CPU)))
    for i in acc core; do
        nsx "$NS_DUT" ip link set "dut-$i" up
        nsx "$NS_GEN" ip link set "gen-$i" up
        nsx "$NS_DUT" sh -c "echo $rps_dut > /sys/class/net/dut-$i/queues/rx-0/rps_cpus"
        nsx "$NS_GEN" sh -c "echo $rps_gen > /sys/class/net/gen-$i/queues/rx-0/rps_cpus"
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

tollgate_up() {
    local cfg=$RUN/tollgate.toml
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
backend = "af_packet"
interface = "dut-acc"
address = "10.10.0.1/24"

[core]
backend = "af_packet"
interface = "dut-core"
address = "192.0.2.1/24"

[log]
level = "warn"

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

# cpu_ticks: softirq+irq ticks of DUT_CPU, and the DUT process's utime+stime.
dut_ticks() {
    local cpu proc=0
    cpu=$(awk -v c="cpu$DUT_CPU" '$1 == c { print $7 + $8 }' /proc/stat)
    # `ip netns exec` and taskset exec, so the pid started is tollgate's.
    if [[ -n $TG_PID && -r /proc/$TG_PID/stat ]]; then
        proc=$(awk '{ print $14 + $15 }' "/proc/$TG_PID/stat")
    fi
    echo "$cpu $proc"
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
r["dut_process_s"] = (int(a[1]) - int(b[1])) / hz
print(json.dumps(r))
PY
}

# search MODE: the loss-free rate by bisection; prints one JSON line per trial on stderr
# and the best trial (with "rate_pps") on stdout.
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
    [[ -n $best ]] || best='{"rate_pps": 0, "received": 0, "dut_softirq_s": 0, "dut_process_s": 0}'
    echo "$best"
}

summary() {
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
cpu = r["dut_softirq_s"] + r["dut_process_s"]
gen_drop = sum(p.get("rx_dropped", 0) for p in r.get("ports", {}).values())
print("sent {:>9} lost {:>6} (up {}, down {}, generator rings {}) rx {:7.1f} kpps  p99 {:8.1f} us  DUT cpu {:5.2f} s".format(
    r["sent"], r["lost"], r.get("uplink", {}).get("lost", "-"), r.get("downlink", {}).get("lost", "-"),
    gen_drop, r["rx_mpps"] * 1e3, r["latency_us"]["p99"], cpu))' "$1"
}

echo "compare-kernel: $SUBSCRIBERS subscribers x $FLOWS UDP flows, $SIZE B frames, half each way," \
    "$TRIAL_SECONDS s trials, loss tolerance $LOSS_TOLERANCE; generator on CPU $GEN_CPU, DUT on CPU $DUT_CPU"
topology
declare -A RESULT
for mode in $MODES; do
    case $mode in
    kernel) kernel_up ;;
    tollgate) tollgate_up ;;
    *) die "unknown mode $mode" ;;
    esac
    RESULT[$mode]=$(search "$mode")
    case $mode in
    kernel) kernel_down ;;
    tollgate) tollgate_down ;;
    esac
done

mkdir -p "$(dirname "$OUT")"
python3 - "$OUT" "${RESULT[kernel]:-null}" "${RESULT[tollgate]:-null}" <<PY
import json, sys
out, k, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
def row(name, r):
    if not r:
        return None
    pkts = r.get("received", 0)
    cpu = r["dut_softirq_s"] + r["dut_process_s"]
    d = {"loss_free_pps": r["rate_pps"], "received": pkts,
         "dut_cpu_s": cpu, "dut_softirq_s": r["dut_softirq_s"], "dut_process_s": r["dut_process_s"],
         "cpu_ns_per_packet": cpu * 1e9 / pkts if pkts else None,
         "latency_p99_us": r.get("latency_us", {}).get("p99")}
    c = d["cpu_ns_per_packet"]
    print(f"{name:<24} {d['loss_free_pps']/1e3:10.1f} kpps {('%8.0f ns' % c) if c else '       -':>12}")
    return d
print(f"{'':<24} {'loss-free':>15} {'CPU/packet':>12}")
res = {"subscribers": $SUBSCRIBERS, "flows_each": $FLOWS, "frame_bytes": $SIZE,
       "trial_seconds": $TRIAL_SECONDS, "loss_tolerance": $LOSS_TOLERANCE,
       "kernel": row("kernel + nftables NAT", k), "tollgate": row("tollgate (af_packet)", t)}
if res["kernel"] and res["tollgate"]:
    K, T = res["kernel"], res["tollgate"]
    if K["loss_free_pps"]:
        res["rate_ratio"] = T["loss_free_pps"] / K["loss_free_pps"]
        print(f"tollgate / kernel: loss-free rate {res['rate_ratio']:.2f}x", end="")
    if K["cpu_ns_per_packet"] and T["cpu_ns_per_packet"]:
        res["cpu_ratio"] = K["cpu_ns_per_packet"] / T["cpu_ns_per_packet"]
        c = res["cpu_ratio"]
        print(f", CPU per packet {c:.2f}x less" if c >= 1 else f", CPU per packet {1 / c:.2f}x more", end="")
    print()
json.dump(res, open(out, "w"), indent=2)
print(f"written to {out}")
PY
