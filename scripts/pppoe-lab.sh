#!/usr/bin/env bash
# PPPoE subscribers against Tollgate in network namespaces (issue 14), with real clients:
#
#   tgp-sub: tgp-s0 ── tgp-a0 [tgp-gw: tollgate, AF_PACKET] tgp-c0 ── tgp-v0 :tgp-srv
#            (no address: PPPoE)      10.10.0.1   192.0.2.1     192.0.2.10 (UDP counter)
#
#   1. rp-pppoe's `pppoe -A` (discovery only) gets the gateway's PADO (AC-Name tg-lab).
#   2. A scapy PPPoE client (scripts/pppoe-client.py, independent of Tollgate's PPP engine;
#      the kernel has no PPP driver, so pppd cannot run) does discovery, LCP, CHAP against
#      the local store (secret in the 0600 .chap file), IPCP, then sends UDP datagrams to
#      the server namespace: the server counts them, and `ctl show session` counts the
#      same packets and bytes (IP total length).
#      Its TCP SYN offers MSS 1460; the server's tcpdump sees 1452 (ACC-5 clamp at
#      MRU 1492 - 40).
#   3. The same on a QinQ line (S-VLAN 100 0x88a8, C-VLAN 7), then a CoA
#      Disconnect-Request (radclient): the gateway sends LCP Terminate-Request and PADT.
#   4. The same with PAP for a subscriber with Session-Timeout 2 s: the gateway sends LCP
#      Terminate-Request and PADT when it expires, and the session record says why.
#   5. Dual stack (issue 16) with `[ipv6]` on: the scapy client negotiates IPv6CP too
#      (the gateway's Interface-Identifier is its access MAC's EUI-64), sends a Router
#      Solicitation over PPP, gets the RA (source fe80::<that identifier>, its /64 with
#      the A flag, RDNSS, no link-layer option), makes its SLAAC address, pings6 the
#      server namespace (2001:db8:ff::10) and sends UDP over IPv4: `ctl show session`
#      counts both families and the IPv6 share exactly.
#   6. DHCPv6 over PPP (`dhcpv6 = true`): the RA carries M and O; the client's SOLICIT
#      over PPP gets a REPLY with IA_NA (::1 of its /64) and IA_PD (a /56 of the
#      delegated pool), and pings6 from inside the delegated prefix: routed to the
#      session both ways, counted exactly.
#
# Usage (root; shares namespaces with nothing else, but run it under the lab lock):
#   flock /tmp/tollgate-netns.lock scripts/pppoe-lab.sh test
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)
RUNDIR=${TOLLGATE_PPPOE_LAB_DIR:-/tmp/tollgate-pppoe-lab}
TG_BIN=${TOLLGATE_BIN:-$REPO_DIR/target/release/tollgate}
PY=/usr/bin/python3
NS_GW=tgp-gw
NS_SUB=tgp-sub
NS_SRV=tgp-srv
SRV6=2001:db8:ff::10
SOCK="$RUNDIR/ctl.sock"
FAILED=0

LAB=pppoe-lab
# log, die, pass, fail, nsx, ctl, wait_for
# shellcheck source=scripts/lab-common.sh
source "$SCRIPT_DIR/lab-common.sh"

down() {
    [[ -f $RUNDIR/tollgate.pid ]] && kill "$(cat "$RUNDIR/tollgate.pid")" 2>/dev/null || true
    [[ -f $RUNDIR/server.pid ]] && kill "$(cat "$RUNDIR/server.pid")" 2>/dev/null || true
    [[ -f $RUNDIR/tcpdump.pid ]] && kill "$(cat "$RUNDIR/tcpdump.pid")" 2>/dev/null || true
    rm -f "$RUNDIR/tollgate.pid" "$RUNDIR/server.pid" "$RUNDIR/tcpdump.pid"
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

up() {
    down
    mkdir -p "$RUNDIR"
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV"; do
        ip netns add "$ns"
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        nsx "$ns" ip link set lo up
    done
    ip link add tgp-a0 netns "$NS_GW" type veth peer name tgp-s0 netns "$NS_SUB"
    ip link add tgp-c0 netns "$NS_GW" type veth peer name tgp-v0 netns "$NS_SRV"
    nsx "$NS_GW" ip link set tgp-a0 up
    nsx "$NS_GW" ip link set tgp-c0 up
    nsx "$NS_SUB" ip link set tgp-s0 up
    nsx "$NS_SRV" ip addr add 192.0.2.10/24 dev tgp-v0
    # IPv6 in the server namespace only (the gateway's ports are the engine's, the
    # subscriber is the scapy client): on-link with the gateway's core address, the
    # subscribers' /64s behind it.
    nsx "$NS_SRV" sysctl -qw net.ipv6.conf.tgp-v0.disable_ipv6=0 net.ipv6.conf.tgp-v0.accept_dad=0
    nsx "$NS_SRV" ip -6 addr add "$SRV6/64" dev tgp-v0 nodad
    nsx "$NS_SRV" ip link set tgp-v0 up
    nsx "$NS_SRV" ip route add 10.10.0.0/24 via 192.0.2.1
    nsx "$NS_SRV" ip -6 route add 2001:db8:100::/48 via 2001:db8:ff::1
    nsx "$NS_SRV" ip -6 route add 2001:db8:200::/48 via 2001:db8:ff::1
}

write_config() {
    cat >"$RUNDIR/tollgate.toml" <<EOF
[engine]
workers = 1
[control]
socket = "$SOCK"
[access]
backend = "af_packet"
interface = "tgp-a0"
address = "10.10.0.1/24"
[core]
backend = "af_packet"
interface = "tgp-c0"
address = "192.0.2.1/24"
[subscribers]
session_log = "$RUNDIR/sessions.jsonl"
[aaa]
store = "$RUNDIR/subscribers.db"
spool = "$RUNDIR/accounting.db"
[[pool]]
name = "ppp"
[[pool.range]]
first = "10.10.0.100"
last = "10.10.0.120"
[pppoe]
enabled = true
ac_name = "tg-lab"
auth = ["$1"]
dns = ["192.0.2.53", "192.0.2.54"]
echo_interval_s = 1
[aaa.coa]
listen = "127.0.0.1:3799"
[[aaa.coa.client]]
address = "127.0.0.1"
secret = "coa-lab"
EOF
    if [[ ${2:-} == v6 ]]; then
        cat >>"$RUNDIR/tollgate.toml" <<EOF
[ipv6]
enabled = true
pool = "2001:db8:100::/48"
core_address = "2001:db8:ff::1"
next_hop = "$SRV6"
dns = ["2001:db8:ff::53"]
login_on_rs = false
EOF
    fi
    if [[ ${2:-} == v6dhcp ]]; then
        cat >>"$RUNDIR/tollgate.toml" <<EOF
[ipv6]
enabled = true
pool = "2001:db8:100::/48"
core_address = "2001:db8:ff::1"
next_hop = "$SRV6"
dns = ["2001:db8:ff::53"]
login_on_rs = false
dhcpv6 = true
delegated_pool = "2001:db8:200::/48"
delegated_length = 56
EOF
    fi
    rm -f "$RUNDIR"/subscribers.db* "$RUNDIR"/accounting.db* "$RUNDIR/sessions.jsonl"
    cat >"$RUNDIR/subs.toml" <<EOF
[[subscriber]]
user_id = "alice"
password = "wonderland"
chap_secret = "s3cret"

[[subscriber]]
user_id = "bob"
password = "builder"
session_time_s = 2
EOF
    "$TG_BIN" subscriber --db "$RUNDIR/subscribers.db" import "$RUNDIR/subs.toml" >/dev/null
}

start_gateway() {
    rm -f "$SOCK"
    setsid ip netns exec "$NS_GW" "$TG_BIN" run --config "$RUNDIR/tollgate.toml" \
        </dev/null >"$RUNDIR/tollgate.log" 2>&1 &
    echo $! >"$RUNDIR/tollgate.pid"
    wait_for 20 ctl show status || {
        tail -n 30 "$RUNDIR/tollgate.log"
        die "tollgate did not start"
    }
}

stop_gateway() {
    local pid
    pid=$(cat "$RUNDIR/tollgate.pid")
    kill "$pid" 2>/dev/null || true
    wait_for 10 bash -c "! kill -0 $pid" || true
    rm -f "$RUNDIR/tollgate.pid"
}

start_server() {
    # Counts the UDP datagrams to 192.0.2.10:5001 into a file.
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

check_pado() {
    local out
    out=$(nsx "$NS_SUB" timeout 10 pppoe -A -I tgp-s0 2>&1) || true
    if grep -q "Access-Concentrator: tg-lab" <<<"$out"; then
        pass "rp-pppoe's pppoe -A got the PADO (AC-Name tg-lab)"
    else
        fail "pppoe -A got no PADO from tg-lab:"
        sed 's/^/      /' <<<"$out"
    fi
}

# Captures the first TCP SYN that reaches the server namespace (tcpdump -v prints its
# options, the MSS among them).
start_syn_capture() {
    rm -f "$RUNDIR/syn.txt" "$RUNDIR/syn.err"
    setsid ip netns exec "$NS_SRV" timeout 90 tcpdump -i tgp-v0 -n -v -l -c 1 \
        'tcp[tcpflags] & tcp-syn != 0 and dst port 5002' \
        </dev/null >"$RUNDIR/syn.txt" 2>"$RUNDIR/syn.err" &
    echo $! >"$RUNDIR/tcpdump.pid"
    wait_for 10 grep -q "listening on" "$RUNDIR/syn.err" ||
        fail "tcpdump did not start: $(cat "$RUNDIR/syn.err")"
}

check_chap_traffic() {
    local out addr n=20 v
    start_syn_capture
    out=$(nsx "$NS_SUB" timeout 60 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgp-s0 alice s3cret chap \
        --syn 192.0.2.10:5002 --send "$n" --to 192.0.2.10:5001) || {
        fail "scapy CHAP client: $out"
        return
    }
    if wait_for 15 grep -qE "cksum 0x[0-9a-f]+ \(correct\).*mss 1452\]" "$RUNDIR/syn.txt"; then
        pass "the client's SYN offered MSS 1460 and reached the server with MSS 1452, checksum correct"
    else
        fail "the SYN at the server: $(cat "$RUNDIR/syn.txt" "$RUNDIR/syn.err")"
    fi
    addr=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["address"])' "$out")
    pass "scapy client: discovery, LCP, CHAP (local store), IPCP: $out"
    if wait_for 15 received_is "$n"; then
        pass "the server received all $n datagrams"
    else
        fail "the server received $(cat "$RUNDIR/received" 2>/dev/null || echo 0) of $n datagrams"
    fi
    v=$(ctl show session "$addr")
    # tx = from the subscriber: the SYN (20 + 24 bytes, IP total length) and n datagrams
    # of 20 + 8 + 100 bytes.
    if "$PY" -c '
import json, sys
v = json.loads(sys.argv[1]); n = int(sys.argv[2])
c = v["counters"]
ok = (c["tx_packets"], c["tx_bytes"]) == (n + 1, n * 128 + 44) and v["auth"] == "chap/accepted" and v["ppp_phase"] == "network"
sys.exit(0 if ok else 1)' "$v" "$n"; then
        pass "ctl show session counts $((n + 1)) packets, $((n * 128 + 44)) bytes up, chap/accepted"
    else
        fail "ctl show session: $v"
    fi
}

check_chap_qinq() {
    local out
    out=$(nsx "$NS_SUB" timeout 60 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgp-s0 alice s3cret chap \
        --vlan 100.7 --send 5 --to 192.0.2.10:5001) || {
        fail "scapy CHAP client on QinQ 100.7: $out"
        return
    }
    pass "scapy client on QinQ (S-VLAN 100 0x88a8, C-VLAN 7): $out"
    if wait_for 15 received_is 25; then
        pass "the server received its 5 datagrams from the QinQ line"
    else
        fail "the server has $(cat "$RUNDIR/received" 2>/dev/null || echo 0) datagrams, expected 20 + 5"
    fi
    if ctl show sessions | grep -q '"vlans":"100.7"' ||
        ctl show session "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["address"])' "$out")" |
        grep -q '"vlans": *"100.7"'; then
        pass "ctl show session names the line 100.7"
    else
        fail "ctl show session does not show VLANs 100.7"
    fi
}

session_of() { ctl show sessions | grep -q "\"user\": *\"$1\"" || ctl show sessions | grep -q "\"user\":\"$1\""; }

check_coa_disconnect() {
    local out
    nsx "$NS_SUB" timeout 60 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgp-s0 alice s3cret chap \
        --expect-end 30 >"$RUNDIR/coa-client.out" 2>&1 &
    local cpid=$!
    if ! wait_for 20 session_of alice; then
        fail "CoA: alice's session did not come up: $(cat "$RUNDIR/coa-client.out")"
        kill "$cpid" 2>/dev/null || true
        return
    fi
    out=$(printf 'User-Name = "alice"\nEvent-Timestamp = %s\n' "$(date +%s)" |
        nsx "$NS_GW" radclient -r 3 -t 2 127.0.0.1:3799 disconnect coa-lab 2>&1) || true
    if grep -q "Disconnect-ACK" <<<"$out"; then
        pass "CoA Disconnect-Request for alice: Disconnect-ACK"
    else
        fail "CoA Disconnect-Request: $out"
    fi
    wait "$cpid" || true
    out=$(cat "$RUNDIR/coa-client.out")
    if "$PY" -c '
import json, sys
e = json.loads(sys.argv[1])["events"]
t = [i for i, x in enumerate(e) if x.startswith("terminate ")]
sys.exit(0 if t and "padt" in e[t[0]:] else 1)' "$out" 2>/dev/null; then
        pass "CoA Disconnect: the gateway sent Terminate-Request, then PADT: $out"
    else
        fail "CoA Disconnect: no Terminate-Request then PADT: $out"
    fi
}

check_pap_session_timeout() {
    local out rec
    out=$(nsx "$NS_SUB" timeout 60 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgp-s0 bob builder pap \
        --expect-end 20) || {
        fail "scapy PAP client (session timeout): $out"
        return
    }
    if "$PY" -c '
import json, sys
e = json.loads(sys.argv[1])["events"]
t = [i for i, x in enumerate(e) if x == "terminate session_timeout"]
sys.exit(0 if t and "padt" in e[t[0]:] else 1)' "$out"; then
        pass "PAP subscriber with Session-Timeout 2: the gateway sent Terminate-Request, then PADT: $out"
    else
        fail "no Terminate-Request then PADT at the session timeout: $out"
    fi
    if wait_for 10 grep -q '"cause":"session_timeout"' "$RUNDIR/sessions.jsonl"; then
        pass "the session record's cause is session_timeout"
    else
        fail "no session record with cause session_timeout: $(cat "$RUNDIR/sessions.jsonl" 2>/dev/null)"
    fi
}

# The modified EUI-64 of the gateway's access port MAC (its IPv6CP identifier).
access_iid() {
    "$PY" -c '
import sys
m = bytes.fromhex(sys.argv[1].replace(":", ""))
print((bytes([m[0] ^ 2]) + m[1:3] + b"\xff\xfe" + m[3:]).hex())' "$(nsx "$NS_GW" cat /sys/class/net/tgp-a0/address)"
}

next_hop_learned() {
    ctl show counters | "$PY" -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["ipv6"]["ipv6_next_hop_learned"] >= 1 else 1)'
}

# fe80:: and the 16 hex digits $1 as an address, compressed.
ll_of() { "$PY" -c 'import ipaddress,sys; print(ipaddress.ip_address(bytes.fromhex("fe80" + "00" * 6 + sys.argv[1])))' "$1"; }

check_dual_stack() {
    local out v addr before n=3 pings=5 iid
    before=$(cat "$RUNDIR/received" 2>/dev/null || echo 0)
    iid=$(access_iid)
    # The core side's next hop (the server) resolved by NS first: echoes are forwarded.
    wait_for 15 next_hop_learned || fail "the IPv6 next hop $SRV6 was not resolved: $(ctl show counters)"

    out=$(nsx "$NS_SUB" timeout 60 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgp-s0 alice s3cret chap \
        --ipv6 --ping6 "$SRV6" --ping6-count "$pings" --send "$n" --to 192.0.2.10:5001) || {
        fail "scapy dual-stack client: $out"
        return
    }
    pass "scapy client: LCP, CHAP, IPCP and IPv6CP, RS over PPP: $out"
    addr=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["address"])' "$out")
    v=$(ctl show session "$addr")
    if "$PY" -c '
import ipaddress, json, sys
o = json.loads(sys.argv[1])["ipv6"]; v = json.loads(sys.argv[2]); iid, gw_ll = sys.argv[3], sys.argv[4]
ll = lambda h: ipaddress.ip_address(bytes.fromhex("fe80" + "00" * 6 + h))
ok = (o["gateway_iid"] == iid
      and ipaddress.ip_address(o["ra_source"]) == ll(iid)
      and ipaddress.ip_address(o["ra_dst"]) == ll(o["iid"])
      and o["hlim"] == 255 and o["router_lifetime"] == 1800 and (o["managed"], o["other"]) == (0, 0)
      and o["autonomous"] == 1 and o["rdnss"] == ["2001:db8:ff::53"] and not o["source_link_layer"]
      and o["prefix"] == v.get("ipv6_prefix")
      and ipaddress.ip_address(o["address"]) in ipaddress.ip_network(v["ipv6_prefix"])
      and v.get("ipv6cp") == "opened")
sys.exit(0 if ok else print(o, v.get("ipv6_prefix"), v.get("ipv6cp"), iid) or 1)' "$out" "$v" "$iid" "$(ll_of "$iid")"; then
        pass "IPv6CP with the access MAC's identifier $iid; the solicited RA from $(ll_of "$iid") to the client's link-local: its /64 with A, RDNSS, no link-layer option; ctl: ipv6cp opened"
    else
        fail "IPv6CP / RA over PPP: $out / $v"
    fi
    if "$PY" -c 'import json,sys; o = json.loads(sys.argv[1])["ipv6"]; sys.exit(0 if o["replies"] == o["pings"] == int(sys.argv[2]) else 1)' "$out" "$pings"; then
        pass "ping6 $SRV6 over PPPoE from the SLAAC address: $pings of $pings answered"
    else
        fail "ping6 over PPPoE: $out"
    fi
    if wait_for 15 received_is "$((before + n))"; then
        pass "the server received the $n IPv4 datagrams of the same session"
    else
        fail "the server has $(cat "$RUNDIR/received" 2>/dev/null || echo 0) datagrams, expected $before + $n"
    fi
    # Up: n UDP datagrams (20 + 8 + 100 = 128 bytes) and the echoes (40 + 8 + 56 = 104
    # bytes); down: the replies. The IPv6 share: echoes and replies alone. RS and RA stay
    # on the PPP link (not counted).
    v=$(ctl show session "$addr")
    if "$PY" -c '
import json, sys
v = json.loads(sys.argv[1]); n = int(sys.argv[2]); p = int(sys.argv[3])
both = {"tx_packets": n + p, "tx_bytes": n * 128 + p * 104, "rx_packets": p, "rx_bytes": p * 104}
six = {"tx_packets": p, "tx_bytes": p * 104, "rx_packets": p, "rx_bytes": p * 104}
c = {k: v["counters"][k] for k in both}; c6 = {k: (v.get("counters_ipv6") or {}).get(k) for k in six}
sys.exit(0 if (c, c6) == (both, six) else print(c, c6, both, six) or 1)' "$v" "$n" "$pings"; then
        pass "ctl show session: $((n + pings)) packets up, $pings down; the IPv6 share $pings packets, $((pings * 104)) bytes each way"
    else
        fail "per-family counters in ctl show session: $v"
    fi
}

check_dhcpv6_over_ppp() {
    local out v pings=4
    wait_for 15 next_hop_learned || fail "the IPv6 next hop $SRV6 was not resolved: $(ctl show counters)"
    out=$(nsx "$NS_SUB" timeout 60 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgp-s0 alice s3cret chap \
        --ipv6 --dhcpv6 --ping6 "$SRV6" --ping6-count "$pings") || {
        fail "scapy DHCPv6-over-PPP client: $out"
        return
    }
    v=$(ctl show session "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["address"])' "$out")")
    if "$PY" -c '
import ipaddress, json, sys
o = json.loads(sys.argv[1]); v = json.loads(sys.argv[2]); p = int(sys.argv[3])
r, d = o["ipv6"], o["dhcpv6"]
net = ipaddress.ip_network(v["ipv6_prefix"])
six = {"tx_packets": p, "tx_bytes": p * 104, "rx_packets": p, "rx_bytes": p * 104}
ok = ((r["managed"], r["other"]) == (1, 1)
      and ipaddress.ip_address(d["ia_na"]) == net[1]
      and ipaddress.ip_network(d["ia_pd"]).subnet_of(ipaddress.ip_network("2001:db8:200::/48"))
      and ipaddress.ip_network(d["ia_pd"]).prefixlen == 56
      and ipaddress.ip_address(d["reply_source"]) == ipaddress.ip_address(r["ra_source"])
      and ipaddress.ip_address(d["reply_dst"]).is_link_local
      and r["replies"] == r["pings"] == p
      and {k: (v.get("counters_ipv6") or {}).get(k) for k in six} == six)
sys.exit(0 if ok else print(o, v) or 1)' "$out" "$v" "$pings"; then
        pass "DHCPv6 over PPP: RA with M and O, REPLY from the gateway's link-local with IA_NA $("$PY" -c 'import json,sys; d = json.loads(sys.argv[1])["dhcpv6"]; print(d["ia_na"], "and IA_PD", d["ia_pd"])' "$out"); $pings pings from the delegated prefix answered, counted exactly"
    else
        fail "DHCPv6 over PPP: $out / $v"
    fi
}

test_all() {
    [[ ${EUID:-$(id -u)} -eq 0 ]] || die "needs root (network namespaces)"
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    command -v pppoe >/dev/null || die "rp-pppoe's pppoe is not installed (apt-get install pppoe)"
    "$PY" -c 'import scapy' 2>/dev/null || die "python3-scapy is not installed"
    trap down EXIT
    up
    start_server
    write_config chap
    start_gateway
    check_pado
    check_chap_traffic
    stop_gateway
    write_config chap
    start_gateway
    check_chap_qinq
    stop_gateway
    # A fresh gateway: the QinQ session above still holds alice's MAC (one per MAC).
    start_gateway
    check_coa_disconnect
    stop_gateway
    write_config pap
    start_gateway
    check_pap_session_timeout
    stop_gateway
    write_config chap v6
    start_gateway
    check_dual_stack
    stop_gateway
    write_config chap v6dhcp
    start_gateway
    check_dhcpv6_over_ppp
    stop_gateway
    if ((FAILED > 0)); then
        log "pppoe lab: $FAILED check(s) failed; gateway log: $RUNDIR/tollgate.log"
        tail -n 20 "$RUNDIR/tollgate.log"
        exit 1
    fi
    log "pppoe lab: all checks passed"
}

case ${1:-help} in
test) test_all ;;
down) down ;;
*) log "usage: $0 test|down   (root; run under flock /tmp/tollgate-netns.lock)" ;;
esac
