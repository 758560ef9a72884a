#!/usr/bin/env bash
# IPoE subscribers by DHCPv4 against Tollgate in network namespaces (issue 16), with the
# real Debian client (isc-dhcp-client's dhclient):
#
#   tgd-sub: tgd-s0 ── tgd-a0 [tgd-gw: tollgate, AF_PACKET] tgd-c0 ── tgd-v0 :tgd-srv
#            (DHCP)            10.77.0.1     192.0.2.1      192.0.2.10 (UDP counter)
#
#   1. `dhclient -4` in the subscriber namespace gets an address from the pool (its MAC is
#      a subscriber in the local store), with the gateway as router and the DNS server
#      of [dhcp]; `ctl show sessions` shows that session, user and address.
#   2. UDP datagrams and pings through it reach the server namespace, and `ctl show
#      session` counts exactly those packets and bytes (IP total lengths) both ways.
#   3. The gateway restarts: the lease file brings the lease back and the session with
#      the same address logs in again; traffic flows without dhclient doing anything.
#   4. `dhclient -r` releases the lease: the session ends with cause user_request, its
#      accounting Stop (in the spool: no RADIUS accounting server here) carries the
#      counters, and the address is free.
#   5. A scapy client (scripts/dhcp-client.py; the kernel here has no 8021q) on an 802.1Q
#      line (VLAN 100) and a QinQ line (S-VLAN 200 802.1ad, C-VLAN 7): an address, the
#      session, traffic counted exactly, RELEASE. A small RADIUS accounting server
#      (scripts/acct-server.py) has every Start and Stop, with the counters shown.
#   6. With login_by = "circuit_id": option 82's circuit-id is the user name.
#   7. Relay mode to Kea (kea-dhcp4 in the server namespace): dhclient gets Kea's address
#      through the gateway, the session starts on Kea's ACK, traffic is counted, and
#      dhclient -r (unicast to Kea) goes through the relay and ends the session.
#
# dhclient gets its own lease and pid files per run and a small -sf script (the default
# dhclient-script would rewrite /etc/resolv.conf, shared with the host): it sets the
# address and default route and writes what the server gave to a file the checks read.
#
# Usage (root; under the lab lock):
#   flock /tmp/tollgate-netns.lock scripts/ipoe-lab.sh test
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)
RUNDIR=${TOLLGATE_IPOE_LAB_DIR:-/tmp/tollgate-ipoe-lab}
TG_BIN=${TOLLGATE_BIN:-$REPO_DIR/target/release/tollgate}
PY=/usr/bin/python3
NS_GW=tgd-gw
NS_SUB=tgd-sub
NS_SRV=tgd-srv
SUB_MAC=02:00:5e:10:00:42
SOCK="$RUNDIR/ctl.sock"
FAILED=0

LAB=ipoe-lab
# log, die, pass, fail, nsx, ctl, wait_for
# shellcheck source=scripts/lab-common.sh
source "$SCRIPT_DIR/lab-common.sh"

# json EXPR JSON...: evaluates the Python expression EXPR with j = the parsed JSON
# (and a = the further arguments); prints the result.
json() {
    local expr=$1
    shift
    "$PY" -c "import json, sys; j = json.loads(sys.argv[1]); a = sys.argv[2:]; print($expr)" "$@"
}

down() {
    for f in "$RUNDIR"/dhclient*.pid; do
        [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
    done
    [[ -f $RUNDIR/tollgate.pid ]] && kill "$(cat "$RUNDIR/tollgate.pid")" 2>/dev/null || true
    for f in server acct kea; do
        [[ -f $RUNDIR/$f.pid ]] && kill "$(cat "$RUNDIR/$f.pid")" 2>/dev/null || true
    done
    rm -f "$RUNDIR/tollgate.pid" "$RUNDIR/server.pid" "$RUNDIR/acct.pid" "$RUNDIR/kea.pid" \
        "$RUNDIR"/dhclient*.pid
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
    ip link add tgd-a0 netns "$NS_GW" type veth peer name tgd-s0 netns "$NS_SUB"
    ip link add tgd-c0 netns "$NS_GW" type veth peer name tgd-v0 netns "$NS_SRV"
    nsx "$NS_GW" ip link set tgd-a0 up
    nsx "$NS_GW" ip link set tgd-c0 up
    nsx "$NS_SUB" ip link set tgd-s0 address "$SUB_MAC"
    nsx "$NS_SUB" ip link set tgd-s0 up
    nsx "$NS_SRV" ip addr add 192.0.2.10/24 dev tgd-v0
    nsx "$NS_SRV" ip link set tgd-v0 up
    nsx "$NS_SRV" ip route add 10.77.0.0/24 via 192.0.2.1
}

# write_config [LOGIN_BY [MODE]]: a fresh config, store, spool and lease file.
write_config() {
    local login_by=${1:-mac} mode=${2:-server}
    cat >"$RUNDIR/tollgate.toml" <<EOF
[engine]
workers = 1
[control]
socket = "$SOCK"
[access]
backend = "af_packet"
interface = "tgd-a0"
address = "10.77.0.1/24"
[core]
backend = "af_packet"
interface = "tgd-c0"
address = "192.0.2.1/24"
[subscribers]
session_log = "$RUNDIR/sessions.jsonl"
[aaa]
store = "$RUNDIR/subscribers.db"
spool = "$RUNDIR/accounting.db"
[aaa.radius]
accounting_message_authenticator = false
[[aaa.radius.acct_server]]
address = "127.0.0.1:1813"
secret = "acct-lab"
[[pool]]
name = "ipoe"
[[pool.range]]
first = "10.77.0.100"
last = "10.77.0.120"
[dhcp]
enabled = true
mode = "$mode"
servers = ["192.0.2.20"]
login_by = "$login_by"
lease_time_s = 300
dns = ["192.0.2.53"]
lease_file = "$RUNDIR/leases.dhcp"
EOF
    rm -f "$RUNDIR"/subscribers.db* "$RUNDIR"/accounting.db* "$RUNDIR/sessions.jsonl" \
        "$RUNDIR/leases.dhcp"
    cat >"$RUNDIR/subs.toml" <<EOF
[[subscriber]]
user_id = "carol"
mac = ["$SUB_MAC"]

[[subscriber]]
user_id = "olt1-pon3"
EOF
    "$TG_BIN" subscriber --db "$RUNDIR/subscribers.db" import "$RUNDIR/subs.toml" >/dev/null
    # dhclient's script: address, default route, and what was given, to a file.
    cat >"$RUNDIR/dhclient-script" <<'EOF'
#!/bin/sh
out="${TGD_OUT:?}"
case "$reason" in
BOUND | RENEW | REBIND | REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    ip route replace default via "$new_routers" dev "$interface"
    printf 'reason=%s\naddress=%s\nmask=%s\nrouter=%s\ndns=%s\nlease=%s\n' "$reason" \
        "$new_ip_address" "$new_subnet_mask" "$new_routers" \
        "$new_domain_name_servers" "$new_dhcp_lease_time" >"$out"
    ;;
RELEASE | EXPIRE | FAIL | STOP)
    ip addr flush dev "$interface"
    printf 'reason=%s\n' "$reason" >"$out"
    ;;
esac
exit 0
EOF
    chmod 0755 "$RUNDIR/dhclient-script"
}

start_gateway() {
    rm -f "$SOCK"
    setsid ip netns exec "$NS_GW" "$TG_BIN" run --config "$RUNDIR/tollgate.toml" \
        </dev/null >>"$RUNDIR/tollgate.log" 2>&1 &
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
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.10", 5001))
n = 0
while True:
    s.recv(2048)
    n += 1
    open(sys.argv[1] + ".tmp", "w").write(str(n))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
' "$RUNDIR/received" </dev/null >"$RUNDIR/server.log" 2>&1 &
    echo $! >"$RUNDIR/server.pid"
    rm -f "$RUNDIR/received"
    wait_for 10 server_listening || die "the UDP server did not start: $(cat "$RUNDIR/server.log")"
}

server_listening() { nsx "$NS_SRV" ss -Huln | grep -q '192.0.2.10:5001'; }

received() { cat "$RUNDIR/received" 2>/dev/null || echo 0; }
received_is() { [[ $(received) == "$1" ]]; }

# dhclient_run NAME IFACE ARGS...: dhclient with NAME's own lease, pid and output files.
dhclient_run() {
    local name=$1 iface=$2
    shift 2
    nsx "$NS_SUB" timeout 60 dhclient -4 -v -e TGD_OUT="$RUNDIR/$name.out" "$@" \
        -lf "$RUNDIR/$name.leases" -pf "$RUNDIR/dhclient-$name.pid" -sf "$RUNDIR/dhclient-script" \
        "$iface" >>"$RUNDIR/$name.log" 2>&1
}

given() { sed -n "s/^$2=//p" "$RUNDIR/$1.out" 2>/dev/null; }

# The open session with address $1, as `show session` answers it.
session_json() { ctl show session "$1"; }
session_open() { [[ $(json 'j.get("state")' "$(session_json "$1")") == open ]]; }
session_gone() { ! ctl show sessions | grep -q "\"$1\""; }

# send_udp IFACE N: N datagrams of 100 bytes to the server from the subscriber.
send_udp() {
    nsx "$NS_SUB" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b"x" * 100, ("192.0.2.10", 5001))
' "$1"
}

# check_counters ADDR TXP TXB RXP RXB: the session's counters, exactly.
counters_are() {
    local v
    v=$(session_json "$1")
    [[ $(json '"%d %d %d %d" % tuple(j["counters"][k] for k in ("tx_packets", "tx_bytes", "rx_packets", "rx_bytes"))' "$v") == "$2 $3 $4 $5" ]]
}

# check_lease NAME IFACE WHAT: dhclient gets an address from the pool; the session is
# shown with it. Prints the address.
check_lease() {
    local name=$1 iface=$2 what=$3 addr v
    if ! dhclient_run "$name" "$iface" -1; then
        fail "$what: dhclient got no lease: $(tail -n 5 "$RUNDIR/$name.log" | tr '\n' ' ')"
        return 1
    fi
    addr=$(given "$name" address)
    if [[ $addr =~ ^10\.77\.0\.1[0-2][0-9]$ && $(given "$name" router) == 10.77.0.1 &&
        $(given "$name" mask) == 255.255.255.0 && $(given "$name" dns) == 192.0.2.53 &&
        $(given "$name" lease) == 300 ]]; then
        pass "$what: dhclient -4 got $addr/24 from the pool, router 10.77.0.1, DNS 192.0.2.53, lease 300 s"
    else
        fail "$what: dhclient was given: $(tr '\n' ' ' <"$RUNDIR/$name.out")"
        return 1
    fi
    if ! wait_for 10 session_open "$addr"; then
        fail "$what: no open session for $addr: $(ctl show sessions)"
        return 1
    fi
    v=$(ctl show sessions)
    if [[ $(json '[(s["user"], s.get("mac")) for s in (j if isinstance(j, list) else j["sessions"]) if s["address"] == a[0]]' "$v" "$addr") == "[('carol', '$SUB_MAC')]" ]]; then
        pass "$what: ctl show sessions shows carol's session at $addr with MAC $SUB_MAC"
    else
        fail "$what: ctl show sessions: $v"
    fi
    echo "$addr" >"$RUNDIR/$name.addr"
}

# check_traffic ADDR UDP_SO_FAR WHAT: 10 datagrams and 3 pings, counted exactly.
check_traffic() {
    local addr=$1 before=$2 what=$3 n=10 tx rx
    send_udp "$n"
    if wait_for 15 received_is $((before + n)); then
        pass "$what: the server received the $n datagrams"
    else
        fail "$what: the server has $(received) datagrams, expected $((before + n))"
    fi
    if nsx "$NS_SUB" ping -c 3 -i 0.2 -W 2 -s 56 192.0.2.10 >/dev/null; then
        pass "$what: 3 pings to 192.0.2.10 answered"
    else
        fail "$what: ping through the session failed"
    fi
    # Up: n x (20 + 8 + 100) and 3 x 84; down: 3 x 84 (IP total lengths).
    tx=$((n * 128 + 3 * 84))
    rx=$((3 * 84))
    if wait_for 10 counters_are "$addr" $((n + 3)) "$tx" 3 "$rx"; then
        pass "$what: ctl show session counts $((n + 3)) packets, $tx bytes up, 3 packets, $rx bytes down"
    else
        fail "$what: counters: $(session_json "$addr")"
    fi
}

# check_release NAME IFACE ADDR WHAT: dhclient -r ends the session with a Stop.
check_release() {
    local name=$1 iface=$2 addr=$3 what=$4 stop
    dhclient_run "$name" "$iface" -r || true
    if wait_for 10 session_gone "$addr"; then
        pass "$what: dhclient -r: the session at $addr ended"
    else
        fail "$what: the session at $addr is still open after dhclient -r"
        return
    fi
    if wait_for 10 grep -q "\"address\":\"$addr\".*\"cause\":\"user_request\"" "$RUNDIR/sessions.jsonl"; then
        pass "$what: the session record says user_request"
    else
        fail "$what: no session record for $addr with cause user_request: $(tail -n 2 "$RUNDIR/sessions.jsonl")"
    fi
}

# check_vlan_line S[.C] UDP_SO_FAR: scripts/dhcp-client.py leases on the line, sends 10
# datagrams and 3 pings, the session is shown and counted exactly, then it releases.
check_vlan_line() {
    local line=$1 before=$2 what="VLAN $1" out addr n=10 tx rx trig="$RUNDIR/release-$1"
    rm -f "$trig"
    nsx "$NS_SUB" timeout 90 "$PY" "$SCRIPT_DIR/dhcp-client.py" tgd-s0 --vlan "$line" \
        --send "$n" --to 192.0.2.10:5001 --ping 3 --release-when "$trig" \
        >"$RUNDIR/vlan$line.out" 2>&1 &
    local cpid=$!
    if ! wait_for 30 grep -q '"ok": true' "$RUNDIR/vlan$line.out"; then
        fail "$what: no lease: $(cat "$RUNDIR/vlan$line.out")"
        touch "$trig"
        wait "$cpid" || true
        return
    fi
    out=$(head -n 1 "$RUNDIR/vlan$line.out")
    addr=$(json 'j["address"]' "$out")
    if [[ $(json '"%s %s %s %s %s" % (j["router"], j["mask"], j["dns"], j["lease"], j["echo_replies"])' "$out") == "10.77.0.1 255.255.255.0 192.0.2.53 300 3" ]]; then
        pass "$what: the scapy client got $addr/24, router 10.77.0.1, DNS 192.0.2.53, lease 300 s; 3 pings answered on the line"
    else
        fail "$what: the client was given: $out"
    fi
    if wait_for 15 received_is $((before + n)); then
        pass "$what: the server received the $n datagrams"
    else
        fail "$what: the server has $(received) datagrams, expected $((before + n))"
    fi
    tx=$((n * 128 + 3 * 84))
    rx=$((3 * 84))
    if wait_for 10 session_open "$addr" && wait_for 10 counters_are "$addr" $((n + 3)) "$tx" 3 "$rx"; then
        pass "$what: the session at $addr counts $((n + 3)) packets, $tx bytes up, 3 packets, $rx bytes down"
    else
        fail "$what: session: $(session_json "$addr" 2>&1)"
    fi
    touch "$trig"
    wait "$cpid" || true
    if wait_for 10 session_gone "$addr"; then
        pass "$what: RELEASE ended the session at $addr"
    else
        fail "$what: the session at $addr is still open after RELEASE"
    fi
    echo "$addr" >"$RUNDIR/vlan$line.addr"
}

# check_stops: the accounting records the RADIUS accounting server received, in order:
# each session's Start and Stop with its counters (packets and octets in = from the
# subscriber). The first session ended at the restart (NAS-Request, 10), the one the
# lease brought back by RELEASE (User-Request, 1), then the VLAN and QinQ sessions.
check_stops() {
    local got want
    got=$(json '"; ".join("%s %s %s %s %s %s %s %s %s" % (r["status"], r["user"], r["framed_ip"], r["calling_station_id"], r["terminate_cause"], r["packets_in"], r["octets_in"], r["packets_out"], r["octets_out"]) for r in j)' \
        "$("$PY" -c 'import json, sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' "$RUNDIR/acct.jsonl" 2>/dev/null || echo '[]')")
    local a=10.77.0.100 m=$SUB_MAC
    want="start carol $a $m None None None None None; stop carol $a $m 10 13 1532 3 252"
    want+="; start carol $a $m None None None None None; stop carol $a $m 1 2 168 2 168"
    want+="; start carol $a $m None None None None None; stop carol $a $m 1 13 1532 3 252"
    want+="; start carol $a $m None None None None None; stop carol $a $m 1 13 1532 3 252"
    if [[ $got == "$want" ]]; then
        pass "accounting: Start and Stop of every session, the Stops with exactly the counters shown (RELEASE: User-Request; the restart: NAS-Request)"
    else
        fail "accounting records: got '$got', want '$want'"
    fi
    # The line of each (NAS-Port-Id), and no Framed-Protocol: IPoE, not PPP.
    got=$(json '" ".join("%s/%s" % (r["nas_port_id"], r["framed_protocol"]) for r in j)' \
        "$("$PY" -c 'import json, sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' "$RUNDIR/acct.jsonl" 2>/dev/null || echo '[]')")
    want="tgd-a0/None tgd-a0/None tgd-a0/None tgd-a0/None tgd-a0.100/None tgd-a0.100/None tgd-a0.200.7/None tgd-a0.200.7/None"
    if [[ $got == "$want" ]]; then
        pass "accounting: NAS-Port-Id names each line (tgd-a0, tgd-a0.100, tgd-a0.200.7), no Framed-Protocol"
    else
        fail "accounting NAS-Port-Id/Framed-Protocol: got '$got', want '$want'"
    fi
}

start_acct_server() {
    rm -f "$RUNDIR/acct.jsonl"
    setsid ip netns exec "$NS_GW" "$PY" "$SCRIPT_DIR/acct-server.py" 127.0.0.1:1813 acct-lab \
        "$RUNDIR/acct.jsonl" </dev/null >"$RUNDIR/acct-server.log" 2>&1 &
    echo $! >"$RUNDIR/acct.pid"
    wait_for 10 bash -c "ip netns exec $NS_GW ss -Huln | grep -q 127.0.0.1:1813" ||
        die "the accounting server did not start: $(cat "$RUNDIR/acct-server.log")"
}

# check_option82: with login_by = "circuit_id", a DISCOVER with option 82's circuit-id
# logs in as that user (no password: the local store's rule for a login by name).
check_option82() {
    local out addr trig="$RUNDIR/release-o82"
    rm -f "$trig"
    nsx "$NS_SUB" timeout 60 "$PY" "$SCRIPT_DIR/dhcp-client.py" tgd-s0 --circuit-id olt1-pon3 \
        --ping 1 --release-when "$trig" >"$RUNDIR/o82.out" 2>&1 &
    local cpid=$!
    if ! wait_for 30 grep -q '"ok": true' "$RUNDIR/o82.out"; then
        fail "option 82: no lease: $(cat "$RUNDIR/o82.out")"
        touch "$trig"
        wait "$cpid" || true
        return
    fi
    out=$(head -n 1 "$RUNDIR/o82.out")
    addr=$(json 'j["address"]' "$out")
    if wait_for 10 session_open "$addr" &&
        [[ $(json 'j["user"]' "$(session_json "$addr")") == olt1-pon3 ]]; then
        pass "option 82: circuit-id olt1-pon3 logged in as user olt1-pon3 at $addr (option 82 echoed in OFFER and ACK)"
    else
        fail "option 82: session at $addr: $(session_json "$addr" 2>&1)"
    fi
    touch "$trig"
    wait "$cpid" || true
    if wait_for 10 session_gone "$addr"; then
        pass "option 82: RELEASE ended the session"
    else
        fail "option 82: the session at $addr is still open after RELEASE"
    fi
}

# Kea (kea-dhcp4-server) in the server namespace at 192.0.2.20, serving 10.77.0.0/24 to
# relayed clients only, with its own lease file, pid and lock paths.
start_kea() {
    nsx "$NS_SRV" ip addr add 192.0.2.20/24 dev tgd-v0
    cat >"$RUNDIR/kea-dhcp4.conf" <<EOF
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["tgd-v0/192.0.2.20"], "dhcp-socket-type": "udp"},
  "lease-database": {"type": "memfile", "persist": true, "name": "$RUNDIR/kea-leases.csv",
                     "lfc-interval": 0},
  "valid-lifetime": 600,
  "subnet4": [{"id": 1, "subnet": "10.77.0.0/24",
               "pools": [{"pool": "10.77.0.150 - 10.77.0.160"}],
               "option-data": [{"name": "routers", "data": "10.77.0.1"},
                               {"name": "domain-name-servers", "data": "192.0.2.53"}]}],
  "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}],
               "severity": "INFO"}]
}}
EOF
    rm -f "$RUNDIR/kea-leases.csv"
    setsid ip netns exec "$NS_SRV" env KEA_PIDFILE_DIR="$RUNDIR" KEA_LOCKFILE_DIR="$RUNDIR" \
        kea-dhcp4 -c "$RUNDIR/kea-dhcp4.conf" </dev/null >"$RUNDIR/kea.log" 2>&1 &
    echo $! >"$RUNDIR/kea.pid"
    wait_for 15 bash -c "ip netns exec $NS_SRV ss -Huln | grep -q '192.0.2.20:67'" ||
        die "Kea did not start: $(tail -n 5 "$RUNDIR/kea.log")"
}

# check_relay: with mode = "relay", dhclient's DISCOVER goes to Kea with option 82; the
# session starts on Kea's ACK with Kea's address; traffic is counted; dhclient -r is
# relayed to Kea, which frees the lease, and the session ends.
check_relay() {
    local addr
    if ! dhclient_run relay tgd-s0 -1; then
        fail "relay: dhclient got no lease through the relay: $(tail -n 5 "$RUNDIR/relay.log" | tr '\n' ' ')"
        return
    fi
    addr=$(given relay address)
    if [[ $addr =~ ^10\.77\.0\.1(5[0-9]|60)$ && $(given relay router) == 10.77.0.1 &&
        $(given relay lease) == 600 ]]; then
        pass "relay: dhclient -4 got $addr from Kea's pool (lease 600 s, Kea's) through the gateway's relay"
    else
        fail "relay: dhclient was given: $(tr '\n' ' ' <"$RUNDIR/relay.out")"
        return
    fi
    if grep -q 'DHCP4_LEASE_ALLOC' "$RUNDIR/kea.log" && grep -q "$addr" "$RUNDIR/kea-leases.csv"; then
        pass "relay: Kea allocated $addr (its lease file has it)"
    else
        fail "relay: Kea's log or lease file does not show $addr"
    fi
    if wait_for 10 session_open "$addr"; then
        pass "relay: the session at $addr started on Kea's ACK"
    else
        fail "relay: no session at $addr: $(ctl show sessions)"
        return
    fi
    if nsx "$NS_SUB" ping -c 2 -i 0.2 -W 2 192.0.2.10 >/dev/null &&
        wait_for 10 counters_are "$addr" 2 168 2 168; then
        pass "relay: 2 pings through, counted"
    else
        fail "relay: traffic: $(session_json "$addr")"
    fi
    dhclient_run relay tgd-s0 -r || true
    if wait_for 10 session_gone "$addr"; then
        pass "relay: dhclient -r ended the session"
    else
        fail "relay: the session at $addr is still open after dhclient -r"
    fi
    local c
    c=$(ctl show counters)
    # The unicast RELEASE to Kea went through the relay (punted, relayed), not around it.
    if wait_for 10 grep -q 'DHCP4_RELEASE' "$RUNDIR/kea.log" &&
        [[ $(json 'j["dhcp"]["dhcp_release"]' "$c") == 1 ]]; then
        pass "relay: the RELEASE went through the relay (dhcp_release 1) and Kea released the lease"
    else
        fail "relay: RELEASE: gateway dhcp_release $(json 'j["dhcp"].get("dhcp_release")' "$c"); Kea: $(tail -n 3 "$RUNDIR/kea.log")"
    fi
    log "relay counters: engine dhcp_server=$(json 'j["engine"].get("dhcp_server")' "$c"); $(json '{k: v for k, v in j.get("dhcp", {}).items() if v and "relayed" in k}' "$c")"
}

test_all() {
    [[ ${EUID:-$(id -u)} -eq 0 ]] || die "needs root (network namespaces)"
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    command -v dhclient >/dev/null || die "dhclient is not installed (apt-get install isc-dhcp-client)"
    trap down EXIT
    rm -rf "$RUNDIR"
    up
    start_server
    start_acct_server
    write_config
    start_gateway
    local addr stop
    # 1, 2: untagged.
    if check_lease plain tgd-s0 "untagged"; then
        addr=$(cat "$RUNDIR/plain.addr")
        check_traffic "$addr" 0 "untagged"
        # 3: a restart keeps the lease and brings the session back.
        stop_gateway
        start_gateway
        if wait_for 15 session_open "$addr"; then
            pass "restart: the lease came back from the lease file and $addr's session with it"
            if nsx "$NS_SUB" ping -c 2 -i 0.2 -W 2 192.0.2.10 >/dev/null &&
                wait_for 10 counters_are "$addr" 2 168 2 168; then
                pass "restart: traffic flows again without a new DHCP exchange, counted (2 pings)"
            else
                fail "restart: traffic after the restart: $(session_json "$addr")"
            fi
        else
            fail "restart: no session for $addr: $(ctl show sessions); $(grep -i dhcp "$RUNDIR/tollgate.log" | tail -n 3)"
        fi
        # 4: release.
        check_release plain tgd-s0 "$addr" "untagged"
    fi
    # 5: VLAN and QinQ lines (scapy: the kernel here has no 8021q).
    local sent=10 line
    for line in 100 200.7; do
        check_vlan_line "$line" "$sent"
        sent=$((sent + 10))
    done
    local c
    c=$(ctl show counters)
    log "counters: engine dhcp_client=$(json 'j["engine"].get("dhcp_client")' "$c"); dhcp: $(json 'j.get("dhcp")' "$c")"
    stop_gateway
    check_stops
    # 6: option 82 login.
    write_config circuit_id
    start_gateway
    check_option82
    stop_gateway
    # 7: relay mode to Kea.
    if command -v kea-dhcp4 >/dev/null; then
        start_kea
        write_config mac relay
        start_gateway
        check_relay
        stop_gateway
    else
        fail "relay: kea-dhcp4 is not installed (apt-get install kea-dhcp4-server)"
    fi
    if ((FAILED > 0)); then
        log "ipoe lab: $FAILED check(s) failed; gateway log: $RUNDIR/tollgate.log"
        tail -n 20 "$RUNDIR/tollgate.log"
        exit 1
    fi
    log "ipoe lab: all checks passed"
}

case ${1:-help} in
test) test_all ;;
down) down ;;
*) log "usage: $0 test|down   (root; run under flock /tmp/tollgate-netns.lock)" ;;
esac
