#!/usr/bin/env bash
# Tollgate as LNS terminating real PPP from another vendor's LAC (issue 15 items 1 and 4),
# in network namespaces:
#
#   tgl-sub: tgl-s0 ── tgl-p0 [tgl-lac: l2tpns, PPPoE server + LAC] tgl-l0 ── tgl-a0 [tgl-gw: tollgate] tgl-c0 ── tgl-v0 :tgl-srv
#            (PPPoE)                                     172.16.0.1    172.16.0.2   192.0.2.1    192.0.2.10 (UDP counter)
#   The subscribers' pool (172.16.0.100-120) is in Tollgate's access subnet, as pools are.
#
#   1. A scapy PPPoE client (scripts/pppoe-client.py; the kernel has no PPP driver, so
#      pppd cannot run) does discovery and LCP with l2tpns, then PAP as
#      alice@isp.example. l2tpns forwards the realm isp.example to Tollgate
#      (`setforward`): it opens the tunnel (SCCRQ..SCCCN, Challenge/Response with the
#      shared secret) on the first PAP request and the call (ICRQ..ICCN) on its
#      retransmission. Tollgate runs PPP for the call: LCP again with the client (l2tpns
#      sends no proxy LCP), PAP against its local store, IPCP with an address from its
#      pool.
#   2. The client sends UDP datagrams to the server namespace behind Tollgate: the server
#      counts them, and Tollgate's `ctl show session` has the user's name, the address and
#      exactly the packets and bytes sent (IP total length).
#   3. `ctl session remove`: Tollgate sends LCP Terminate-Request in the session, then the
#      CDN (the client sees the Terminate-Request through l2tpns, which forwards it only
#      while the session stands).
#   4. A second call, then SIGTERM: Terminate-Request (gateway shutdown), CDN, StopCCN.
#   5. Tollgate again with two workers (issue 15 item 1): the LAC (172.16.0.1) and the
#      subscriber (172.16.0.100) belong to different workers, and the fanout program
#      takes the LAC's data messages to the subscriber's worker by the packet inside:
#      steps 1-3 again, the same exact counters (steered by the LAC's address, the uplink
#      would reach the server but miss the session's counters).
#
# l2tpns needs a cluster interface that exists (a veth pair in its namespace, with an
# address), its own log
# and pid files, and some 15 s to declare itself cluster master before it answers PPPoE.
#
# Usage (root; run it under the lab lock):
#   flock /tmp/tollgate-netns.lock scripts/l2tpns-lab.sh test
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)
RUNDIR=${TOLLGATE_L2TPNS_LAB_DIR:-/tmp/tollgate-l2tpns-lab}
TG_BIN=${TOLLGATE_BIN:-$REPO_DIR/target/release/tollgate}
PY=/usr/bin/python3
NS_SUB=tgl-sub
NS_LAC=tgl-lac
NS_GW=tgl-gw
NS_SRV=tgl-srv
SOCK="$RUNDIR/ctl.sock"
SECRET=tgl-tunnel-secret
FAILED=0

LAB=l2tpns-lab
# log, die, pass, fail, nsx, ctl, wait_for
# shellcheck source=scripts/lab-common.sh
source "$SCRIPT_DIR/lab-common.sh"

kill_pidfile() {
    local f=$1
    if [[ -f $f ]]; then
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    fi
}

down() {
    kill_pidfile "$RUNDIR/tollgate.pid"
    kill_pidfile "$RUNDIR/server.pid"
    kill_pidfile "$RUNDIR/l2tpns.pid"
    for ns in "$NS_SUB" "$NS_LAC" "$NS_GW" "$NS_SRV"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

up() {
    down
    mkdir -p "$RUNDIR"
    for ns in "$NS_SUB" "$NS_LAC" "$NS_GW" "$NS_SRV"; do
        ip netns add "$ns"
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        nsx "$ns" ip link set lo up
    done
    ip link add tgl-s0 netns "$NS_SUB" type veth peer name tgl-p0 netns "$NS_LAC"
    ip link add tgl-l0 netns "$NS_LAC" type veth peer name tgl-a0 netns "$NS_GW"
    ip link add tgl-c0 netns "$NS_GW" type veth peer name tgl-v0 netns "$NS_SRV"
    # l2tpns's cluster interface: it must exist and have an address; nothing else is on it.
    ip link add tgl-k0 netns "$NS_LAC" type veth peer name tgl-k1 netns "$NS_LAC"
    nsx "$NS_SUB" ip link set tgl-s0 up
    nsx "$NS_LAC" ip link set tgl-p0 up
    nsx "$NS_LAC" ip addr add 10.98.0.1/30 dev tgl-k0
    nsx "$NS_LAC" ip link set tgl-k0 up
    nsx "$NS_LAC" ip link set tgl-k1 up
    nsx "$NS_LAC" ip addr add 172.16.0.1/24 dev tgl-l0
    nsx "$NS_LAC" ip link set tgl-l0 up
    nsx "$NS_GW" ip link set tgl-a0 up
    nsx "$NS_GW" ip link set tgl-c0 up
    nsx "$NS_SRV" ip addr add 192.0.2.10/24 dev tgl-v0
    nsx "$NS_SRV" ip link set tgl-v0 up
    nsx "$NS_SRV" ip route add 172.16.0.0/24 via 192.0.2.1
}

# Tollgate's config with $1 workers (default 1).
write_config() {
    mkdir -p "$RUNDIR/state"
    rm -f "$RUNDIR"/state/* "$RUNDIR/sessions.jsonl"
    cat >"$RUNDIR/tollgate.toml" <<EOF
[engine]
workers = ${1:-1}
[control]
socket = "$SOCK"
[access]
backend = "af_packet"
interface = "tgl-a0"
address = "172.16.0.2/24"
[core]
backend = "af_packet"
interface = "tgl-c0"
address = "192.0.2.1/24"
[subscribers]
session_log = "$RUNDIR/sessions.jsonl"
[aaa]
store = "$RUNDIR/state/subscribers.db"
spool = "$RUNDIR/state/accounting.db"
[[pool]]
name = "ppp"
[[pool.range]]
first = "172.16.0.100"
last = "172.16.0.120"
# PPP of L2TP calls takes the [pppoe] section's PPP keys; PPPoE itself stays off.
[pppoe]
enabled = false
ac_name = "tgl-lns"
auth = ["pap"]
dns = ["192.0.2.53", "192.0.2.54"]
echo_interval_s = 5
[l2tp]
enabled = true
host_name = "tollgate-lns"
secret = "$SECRET"
accept = true
EOF
    cat >"$RUNDIR/subs.toml" <<EOF
[[subscriber]]
user_id = "alice@isp.example"
password = "wonderland"
EOF
    "$TG_BIN" subscriber --db "$RUNDIR/state/subscribers.db" import "$RUNDIR/subs.toml" >/dev/null
    "$TG_BIN" check-config "$RUNDIR/tollgate.toml" >/dev/null || die "tollgate.toml does not validate"
    cat >"$RUNDIR/l2tpns.cfg" <<EOF
set debug 3
set log_file "$RUNDIR/l2tpns.log"
set pid_file "$RUNDIR/l2tpns.own.pid"
set cluster_interface "tgl-k0"
set bind_address 172.16.0.1
set iftun_address 10.99.0.1
set tundevicename "tgl-tun"
set bind_address_remotelns 172.16.0.1
# Answering the LNS's Challenge takes the global secret, whatever setforward says.
set l2tp_secret "$SECRET"
set pppoe_if_to_bind "tgl-p0"
set pppoe_ac_name "tgl-lac"
set primary_radius 127.0.0.1
set radius_secret "unused"
set radius_authtypes "pap"
set cli_bind_address 127.0.0.1
set ppp_keepalive no
setforward isp.example 172.16.0.2 1701 $SECRET
EOF
}

start_gateway() {
    rm -f "$SOCK"
    setsid ip netns exec "$NS_GW" "$TG_BIN" run --config "$RUNDIR/tollgate.toml" \
        </dev/null >"$RUNDIR/tollgate.log" 2>&1 &
    echo $! >"$RUNDIR/tollgate.pid"
    wait_for 30 ctl show status || {
        tail -n 30 "$RUNDIR/tollgate.log"
        die "tollgate did not start"
    }
}

l2tpns_master() { grep -q -i "master" "$RUNDIR/l2tpns.log"; }

start_l2tpns() {
    rm -f "$RUNDIR/l2tpns.log"
    # In the foreground under setsid (-d would fork away from the pid noted here).
    setsid ip netns exec "$NS_LAC" l2tpns -c "$RUNDIR/l2tpns.cfg" -h tgl-lac \
        </dev/null >"$RUNDIR/l2tpns.out" 2>&1 &
    echo $! >"$RUNDIR/l2tpns.pid"
    wait_for 40 l2tpns_master || {
        tail -n 30 "$RUNDIR/l2tpns.log" "$RUNDIR/l2tpns.out" 2>/dev/null
        die "l2tpns did not become cluster master"
    }
}

start_server() {
    # Counts the UDP datagrams to 192.0.2.10:5001 into a file (from 0 at each start).
    kill_pidfile "$RUNDIR/server.pid"
    wait_for 10 bash -c "! ip netns exec $NS_SRV ss -Huln | grep -q 192.0.2.10:5001" || true
    setsid ip netns exec "$NS_SRV" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.10", 5001))
n = 0
while True:
    s.recv(2048)
    n += 1
    open(sys.argv[1] + ".tmp", "w").write(str(n))
    __import__("os").replace(sys.argv[1] + ".tmp", sys.argv[1])
' "$RUNDIR/received" </dev/null >"$RUNDIR/server.log" 2>&1 &
    echo $! >"$RUNDIR/server.pid"
    rm -f "$RUNDIR/received"
    wait_for 10 server_listening || die "the UDP server did not start: $(cat "$RUNDIR/server.log")"
}

server_listening() { nsx "$NS_SRV" ss -Huln | grep -q '192.0.2.10:5001'; }

received_is() { [[ -f $RUNDIR/received && $(cat "$RUNDIR/received") == "$1" ]]; }

down_counted() {
    ctl show session "$1" | "$PY" -c '
import json, sys
c = json.load(sys.stdin)["counters"]; n = int(sys.argv[1])
sys.exit(0 if (c["rx_packets"], c["rx_bytes"]) == (n, n * 128) else 1)' "$2"
}

session_of() { ctl show sessions | grep -q 'alice@isp.example'; }

check_call_and_traffic() {
    local n=20 addr v out cdns
    cdns=$(grep -c "Received CDN" "$RUNDIR/l2tpns.log" || true)
    nsx "$NS_SUB" timeout 90 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgl-s0 alice@isp.example wonderland pap \
        --send "$n" --to 192.0.2.10:5001 --expect-end 60 >"$RUNDIR/client.out" 2>&1 &
    local cpid=$!
    if ! wait_for 60 session_of; then
        fail "no session for alice@isp.example at Tollgate: $(cat "$RUNDIR/client.out")"
        kill "$cpid" 2>/dev/null || true
        return
    fi
    pass "l2tpns forwarded alice@isp.example to Tollgate; Tollgate's PPP (LCP, PAP, IPCP) installed the session"
    if wait_for 20 received_is "$n"; then
        pass "the server behind Tollgate received all $n datagrams"
    else
        fail "the server received $(cat "$RUNDIR/received" 2>/dev/null || echo 0) of $n datagrams"
    fi
    v=$(ctl show sessions)
    addr=$("$PY" -c '
import json, sys
v = json.loads(sys.argv[1])
s = v["sessions"] if isinstance(v, dict) else v
print([x for x in s if x.get("user") == "alice@isp.example"][0]["address"])' "$v") || addr=""
    v=$(ctl show session "$addr")
    # tx = from the subscriber: n packets of 20 + 8 + 100 bytes (IP total length).
    if "$PY" -c '
import json, sys
v = json.loads(sys.argv[1]); n = int(sys.argv[2])
c = v["counters"]
ok = (c["tx_packets"], c["tx_bytes"]) == (n, n * 128) and v["user"] == "alice@isp.example" and v["address"].startswith("172.16.0.1")
ok = ok and v["nas_port_id"].startswith("l2tp/") and "auth=pap/accepted" in v["ppp"] and v["proxy_lcp"] == "renegotiated"
sys.exit(0 if ok else 1)' "$v" "$n"; then
        pass "ctl show session: user alice@isp.example, address $addr, $n packets and $((n * 128)) bytes up; $("$PY" -c '
import json, sys
v = json.loads(sys.argv[1])
print(" ".join(f"{k}={v[k]}" for k in ("l2tp_tunnel", "l2tp_session", "lac", "nas_port_id", "proxy_lcp", "ppp")))' "$v")"
    else
        fail "ctl show session: $v"
    fi
    # Down: datagrams from the server to the subscriber, through Tollgate and l2tpns.
    nsx "$NS_SRV" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(bytes([i]) * 100, (sys.argv[1], 40000))' "$addr" 10
    if wait_for 10 down_counted "$addr" 10; then
        pass "ctl show session: 10 packets and 1280 bytes down"
    else
        fail "downlink not counted: $(ctl show session "$addr")"
    fi
    out=$(ctl session remove "$addr" 2>&1) || true
    wait "$cpid" || true
    out=$(cat "$RUNDIR/client.out")
    if "$PY" -c '
import json, sys
e = json.loads(sys.argv[1])["events"]
o = json.loads(sys.argv[1])
ok = any(x.startswith("terminate ") for x in e) and "lcp renegotiated" in e and o["received"] == 10
sys.exit(0 if ok else 1)' "$out" 2>/dev/null; then
        pass "the client received the 10 datagrams; ctl session remove: it got Tollgate's LCP Terminate-Request through l2tpns: $out"
    else
        fail "no Terminate-Request at the client: $out"
    fi
    if wait_for 10 bash -c "(( \$(grep -c 'Received CDN' '$RUNDIR/l2tpns.log') > $cdns ))"; then
        pass "l2tpns received the CDN"
    else
        fail "l2tpns logged no CDN"
    fi
}

stop_gateway() {
    local pid
    pid=$(cat "$RUNDIR/tollgate.pid")
    kill "$pid" 2>/dev/null || true
    wait_for 15 bash -c "! kill -0 $pid" || true
    rm -f "$RUNDIR/tollgate.pid"
}

# A second call in the same tunnel, then SIGTERM: Terminate-Request through l2tpns (which
# forwards it only while the session stands, so before the CDN), then the CDN.
check_shutdown() {
    local out cdns
    cdns=$(grep -c "Received CDN" "$RUNDIR/l2tpns.log" || true)
    nsx "$NS_SUB" timeout 90 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgl-s0 alice@isp.example wonderland pap \
        --expect-end 60 >"$RUNDIR/client2.out" 2>&1 &
    local cpid=$!
    if ! wait_for 60 session_of; then
        fail "no second session at Tollgate: $(cat "$RUNDIR/client2.out")"
        kill "$cpid" 2>/dev/null || true
        return
    fi
    stop_gateway
    wait "$cpid" || true
    out=$(cat "$RUNDIR/client2.out")
    if grep -q '"terminate gateway shutdown"' <<<"$out"; then
        pass "SIGTERM: the client got Tollgate's LCP Terminate-Request (gateway shutdown): $out"
    else
        fail "SIGTERM: no Terminate-Request at the client: $out"
    fi
    if wait_for 10 bash -c "(( \$(grep -c 'Received CDN' '$RUNDIR/l2tpns.log') > $cdns ))"; then
        pass "SIGTERM: l2tpns received the call's CDN (then the StopCCN)"
    else
        fail "SIGTERM: l2tpns logged no second CDN"
    fi
}

test_all() {
    if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
        log "l2tpns-lab: skipped (needs root for network namespaces)"
        exit 0
    fi
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    command -v l2tpns >/dev/null || die "l2tpns is not installed (apt-get install l2tpns)"
    "$PY" -c 'import scapy' 2>/dev/null || die "python3-scapy is not installed"
    trap down EXIT
    up
    write_config
    start_server
    start_gateway
    start_l2tpns
    check_call_and_traffic
    check_shutdown
    log "again with two workers"
    write_config 2
    start_server
    start_gateway
    if ctl show status | "$PY" -c 'import json, sys; sys.exit(json.load(sys.stdin)["workers"] != 2)'; then
        pass "Tollgate runs two workers (the LAC's address is worker 1's, the subscriber's worker 0's)"
    else
        fail "Tollgate does not run two workers: $(ctl show status)"
    fi
    check_call_and_traffic
    stop_gateway
    if ((FAILED > 0)); then
        log "l2tpns lab: $FAILED check(s) failed; logs in $RUNDIR"
        tail -n 20 "$RUNDIR/tollgate.log"
        tail -n 40 "$RUNDIR/l2tpns.log"
        exit 1
    fi
    log "l2tpns lab: all checks passed"
}

case ${1:-help} in
test) test_all ;;
down) down ;;
*) log "usage: $0 test|down   (root; run under flock /tmp/tollgate-netns.lock)" ;;
esac
