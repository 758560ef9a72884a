#!/usr/bin/env bash
# NAT64 for an IPv6-only subscriber against Tollgate in network namespaces (issue 16,
# V6-2), with the kernel's own SLAAC, ping -6, curl -6 and a small UDP client:
#
#   tgn-sub: tgn-s0 ── tgn-a0 [tgn-gw: tollgate, AF_PACKET, 2 workers] tgn-c0 ── tgn-v0 :tgn-srv
#   IPv6 only, SLAAC    pool 2001:db8:100::/48    NAT64 pool 192.0.2.64      192.0.2.10 (HTTP :80,
#                       [nat64] 64:ff9b::/96      NAT address 192.0.2.1      UDP echo :7)
#                       VIP 203.0.113.80:80 ->                              192.0.2.21-23 (HTTP :8080)
#                                                                            2001:db8:ff::10 (next hop)
#
#   1. The subscriber's RS logs it in by MAC; the RA gives it a /64 (global address past
#      DAD) and a default route. It has no IPv4 address at all.
#   2. ping -6 64:ff9b::192.0.2.10: 5 echoes become ICMP echoes from 192.0.2.64 and the
#      replies come back as ICMPv6; nat64_up, nat64_down and the session's counters are
#      exact (5 x 84 bytes each way, the IPv4 length), one binding.
#   3. curl -6 http://[64:ff9b::192.0.2.10]/ gets the IPv4 server's page; the server saw
#      the connection from the pool address 192.0.2.64.
#   4. UDP through NAT64: a datagram to [64:ff9b::192.0.2.10]:7 comes back echoed.
#   5. curl -6 http://[64:ff9b::203.0.113.80]/ three times: the VIP's service balances the
#      three connections round robin over its three servers (each page names its server),
#      which see them from the NAT address 192.0.2.1.
#   6. The connections' flow records: the plain one with service "nat64" and the
#      subscriber's IPv6 address, the VIP's three as the service "web".
#   7. ICMP errors through NAT64 (RFC 7915): behind the server namespace, acting as an
#      IPv4 router, a far host 198.51.100.10 sits on a link of MTU 1400.
#      `ping -6 -M do -s 1400` to it: the router's fragmentation needed (MTU 1400) comes
#      back as Packet Too Big for 1420, the subscriber's kernel takes that path MTU, and
#      a ping of exactly 1420 bytes then goes through; UDP to a closed port of the server
#      gets the port unreachable (ECONNREFUSED); and the subscriber's own port
#      unreachable, for a datagram to a socket it closed, reaches the IPv4 server as ICMP
#      (its connected socket gets ECONNREFUSED). nat64_icmp_errors counts them.
#   8. No nat64_* drop anywhere.
#
# Usage (root; run it under the lab lock):
#   flock /tmp/tollgate-netns.lock scripts/nat64-lab.sh test
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)
RUNDIR=${TOLLGATE_NAT64_LAB_DIR:-/tmp/tollgate-nat64-lab}
TG_BIN=${TOLLGATE_BIN:-$REPO_DIR/target/release/tollgate}
PY=/usr/bin/python3
NS_GW=tgn-gw
NS_SUB=tgn-sub
NS_SRV=tgn-srv
NS_FAR=tgn-far
FAR=198.51.100.10
SUB_MAC=02:16:00:00:00:64
SRV6=2001:db8:ff::10
SRV=192.0.2.10
WEB=(192.0.2.21 192.0.2.22 192.0.2.23)
POOL64=192.0.2.64
SOCK="$RUNDIR/ctl.sock"
FAILED=0

LAB=nat64-lab
# log, die, pass, fail, nsx, ctl, wait_for
# shellcheck source=scripts/lab-common.sh
source "$SCRIPT_DIR/lab-common.sh"

down() {
    local f
    for f in "$RUNDIR"/*.pid; do
        [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV" "$NS_FAR"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

up() {
    down
    mkdir -p "$RUNDIR"
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV" "$NS_FAR"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
    done
    nsx "$NS_GW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add tgn-a0 netns "$NS_GW" type veth peer name tgn-s0 netns "$NS_SUB"
    ip link add tgn-c0 netns "$NS_GW" type veth peer name tgn-v0 netns "$NS_SRV"
    nsx "$NS_GW" ip link set tgn-a0 up
    nsx "$NS_GW" ip link set tgn-c0 up
    # The subscriber: IPv6 only, SLAAC from the gateway's RAs.
    nsx "$NS_SUB" sysctl -qw net.ipv6.conf.tgn-s0.accept_ra=2 net.ipv6.conf.tgn-s0.autoconf=1 \
        net.ipv6.conf.tgn-s0.router_solicitations=10 net.ipv6.conf.tgn-s0.router_solicitation_interval=1
    nsx "$NS_SUB" ip link set tgn-s0 address "$SUB_MAC"
    # The servers: IPv4 on the core subnet (the pool address and the NAT address are the
    # gateway's there, answered by ARP), and the gateway's IPv6 next hop.
    nsx "$NS_SRV" sysctl -qw net.ipv6.conf.tgn-v0.accept_dad=0
    nsx "$NS_SRV" ip addr add "$SRV/24" dev tgn-v0
    local w
    for w in "${WEB[@]}"; do
        nsx "$NS_SRV" ip addr add "$w/24" dev tgn-v0
    done
    nsx "$NS_SRV" ip -6 addr add "$SRV6/64" dev tgn-v0 nodad
    nsx "$NS_SRV" ip link set tgn-v0 up
    nsx "$NS_SRV" ip -6 route add 2001:db8:100::/48 via 2001:db8:ff::1
    # The server namespace routes to a far host over a link of MTU 1400.
    ip link add tgn-r0 netns "$NS_SRV" type veth peer name tgn-f0 netns "$NS_FAR"
    nsx "$NS_SRV" sysctl -qw net.ipv4.ip_forward=1
    nsx "$NS_SRV" ip link set tgn-r0 mtu 1400 up
    nsx "$NS_SRV" ip addr add 198.51.100.1/24 dev tgn-r0
    nsx "$NS_FAR" ip link set tgn-f0 mtu 1400 up
    nsx "$NS_FAR" ip addr add "$FAR/24" dev tgn-f0
    nsx "$NS_FAR" ip route add default via 198.51.100.1
}

start_servers() {
    local w
    mkdir -p "$RUNDIR/www-plain"
    echo "plain-10" >"$RUNDIR/www-plain/index.html"
    serve "$SRV" 80 plain
    for w in "${WEB[@]}"; do
        mkdir -p "$RUNDIR/www-${w##*.}"
        echo "web-${w##*.}" >"$RUNDIR/www-${w##*.}/index.html"
        serve "$w" 8080 "${w##*.}"
    done
    # UDP echo on 192.0.2.10:7.
    setsid ip netns exec "$NS_SRV" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("'"$SRV"'", 7))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)' </dev/null >"$RUNDIR/echo.log" 2>&1 &
    echo $! >"$RUNDIR/echo.pid"
    for w in "$SRV:80" "${WEB[0]}:8080" "${WEB[1]}:8080" "${WEB[2]}:8080"; do
        wait_for 10 nsx "$NS_SRV" bash -c "exec 3<>/dev/tcp/${w%:*}/${w#*:}" ||
            die "the HTTP server on $w did not start"
    done
}

# serve ADDRESS PORT NAME: an HTTP server in the server namespace for www-NAME, logging
# its clients' addresses.
serve() {
    setsid ip netns exec "$NS_SRV" "$PY" -m http.server --bind "$1" --directory "$RUNDIR/www-$3" "$2" \
        </dev/null >"$RUNDIR/http-$3.log" 2>&1 &
    echo $! >"$RUNDIR/http-$3.pid"
}

write_config() {
    cat >"$RUNDIR/tollgate.toml" <<EOF
[engine]
workers = 2
[control]
socket = "$SOCK"
[access]
backend = "af_packet"
interface = "tgn-a0"
address = "10.10.0.1/24"
[core]
backend = "af_packet"
interface = "tgn-c0"
address = "192.0.2.1/24"
[subscribers]
session_log = "$RUNDIR/sessions.jsonl"
flow_records = "$RUNDIR/flows.jsonl"
[nat]
tcp_closing_timeout_s = 1
[aaa]
store = "$RUNDIR/subscribers.db"
spool = "$RUNDIR/accounting.db"
[[pool]]
name = "ipoe"
[[pool.range]]
first = "10.10.0.101"
last = "10.10.0.120"
[ipv6]
enabled = true
pool = "2001:db8:100::/48"
core_address = "2001:db8:ff::1"
next_hop = "$SRV6"
[nat64]
enabled = true
pool = ["$POOL64"]
[[route]]
prefix = "198.51.100.0/24"
via = "$SRV"
[[service]]
name = "web"
vip = "203.0.113.80"
protocol = "tcp"
port = 80
[[service.server]]
address = "${WEB[0]}"
port = 8080
[[service.server]]
address = "${WEB[1]}"
port = 8080
[[service.server]]
address = "${WEB[2]}"
port = 8080
EOF
    rm -f "$RUNDIR"/subscribers.db* "$RUNDIR"/accounting.db* "$RUNDIR/sessions.jsonl" "$RUNDIR/flows.jsonl"
    cat >"$RUNDIR/subs.toml" <<EOF
[[subscriber]]
user_id = "v6only"
mac = ["$SUB_MAC"]
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

global_address() {
    nsx "$NS_SUB" ip -6 -o addr show dev tgn-s0 scope global |
        grep -v tentative | grep -o '2001:db8:100:[0-9a-f:]*' | head -n 1
}
has_global_address() { [[ -n $(global_address) ]]; }
has_default_route() { [[ -n $(nsx "$NS_SUB" ip -6 route show default) ]]; }

session_id() {
    ctl show sessions | "$PY" -c '
import json, sys
v = json.loads(sys.stdin.read())
v = v if isinstance(v, list) else v.get("sessions", v)
o = [s for s in v if s.get("state", "open") == "open"]
print(o[0]["session"] if o else "")'
}
has_session() { [[ -n $(session_id) ]]; }

# The engine counter or drop named $1 from `ctl show counters` (drops under "drops").
counter() {
    ctl show counters | "$PY" -c '
import json, sys
c = json.load(sys.stdin)
name = sys.argv[1]
def find(o):
    if isinstance(o, dict):
        if name in o and isinstance(o[name], int):
            return o[name]
        for v in o.values():
            r = find(v)
            if r is not None:
                return r
    return None
r = find(c.get("drops", {}))
print(r if r is not None else find(c))' "$1"
}

check_login() {
    nsx "$NS_SUB" ip link set tgn-s0 up
    if wait_for 30 has_session && wait_for 30 has_global_address && wait_for 10 has_default_route; then
        pass "IPv6-only subscriber logged in by its RS: session $(session_id), SLAAC $(global_address), default route by the RA"
    else
        fail "no session, address or default route: $(ctl show sessions) $(nsx "$NS_SUB" ip -6 addr show dev tgn-s0)"
        return 1
    fi
    if [[ -z $(nsx "$NS_SUB" ip -4 -o addr show dev tgn-s0) ]]; then
        pass "the subscriber has no IPv4 address"
    else
        fail "the subscriber has IPv4: $(nsx "$NS_SUB" ip -4 -o addr show dev tgn-s0)"
    fi
}

check_ping() {
    local n=5 out id c0 c1 u0 d0 b0
    id=$(session_id)
    c0=$(ctl show session "$id")
    u0=$(counter nat64_up)
    d0=$(counter nat64_down)
    b0=$(counter nat64_bindings_opened)
    # The first echo may wait for ARP for the server; -w bounds it all.
    out=$(nsx "$NS_SUB" ping -6 -c "$n" -i 0.2 -w 20 "64:ff9b::$SRV" 2>&1) || true
    if grep -q "$n received" <<<"$out"; then
        pass "ping -6 64:ff9b::$SRV through NAT64: $n of $n answered"
    else
        fail "ping -6 64:ff9b::$SRV: $out"
        return
    fi
    c1=$(ctl show session "$id")
    local up=$(($(counter nat64_up) - u0)) dn=$(($(counter nat64_down) - d0)) b=$(($(counter nat64_bindings_opened) - b0))
    if [[ $up == "$n" && $dn == "$n" && $b == 1 ]]; then
        pass "nat64_up +$up, nat64_down +$dn, one binding for the echo identifier"
    else
        fail "nat64_up +$up nat64_down +$dn bindings +$b, want $n $n 1"
    fi
    # 20 (IPv4) + 8 (ICMP) + 56 = 84 bytes a packet each way, the translated length.
    if "$PY" -c '
import json, sys
a = json.loads(sys.argv[1])["counters"]; b = json.loads(sys.argv[2])["counters"]; n = int(sys.argv[3])
d = {k: b[k] - a[k] for k in a}
want = {"tx_packets": n, "tx_bytes": n * 84, "rx_packets": n, "rx_bytes": n * 84}
sys.exit(0 if d == want else print(d, want) or 1)' "$c0" "$c1" "$n"; then
        pass "the session counts $n echoes up and $n replies down, $((n * 84)) bytes each way"
    else
        fail "session counters before $c0 after $c1"
    fi
}

check_curl_plain() {
    local out b0
    b0=$(counter nat64_bindings_opened)
    out=$(nsx "$NS_SUB" curl -6 -sS --max-time 10 "http://[64:ff9b::$SRV]/" 2>&1) || true
    if [[ $out == plain-10 ]] && grep -q "^$POOL64 .*GET / " "$RUNDIR/http-plain.log"; then
        pass "curl -6 http://[64:ff9b::$SRV]/ got the IPv4 server's page, which saw $POOL64"
    else
        fail "curl -6 http://[64:ff9b::$SRV]/: '$out'; server log: $(cat "$RUNDIR/http-plain.log")"
    fi
    local b=$(($(counter nat64_bindings_opened) - b0))
    if [[ $b == 1 ]]; then
        pass "one binding for the connection"
    else
        fail "bindings opened +$b for one connection"
    fi
}

check_udp() {
    local out
    out=$(nsx "$NS_SUB" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
for _ in range(5):
    s.sendto(b"nat64-udp", ("64:ff9b::'"$SRV"'", 7))
    try:
        d, a = s.recvfrom(2048)
        print(d.decode(), a[0], a[1])
        break
    except socket.timeout:
        pass' 2>&1) || true
    if [[ $out == "nat64-udp 64:ff9b::c000:20a 7" ]]; then
        pass "UDP to [64:ff9b::$SRV]:7 came back echoed from $out"
    else
        fail "UDP echo through NAT64: '$out'"
    fi
}

check_vip() {
    local k out pages=()
    for k in 1 2 3; do
        out=$(nsx "$NS_SUB" curl -6 -sS --max-time 10 "http://[64:ff9b::203.0.113.80]/" 2>&1) || true
        pages+=("$out")
    done
    local sorted
    sorted=$(printf '%s\n' "${pages[@]}" | sort | tr '\n' ' ')
    if [[ $sorted == "web-21 web-22 web-23 " ]]; then
        pass "curl -6 to the VIP [64:ff9b::203.0.113.80] three times: round robin over its servers (${pages[*]})"
    else
        fail "curl -6 to the VIP: ${pages[*]}"
    fi
    local w ok=1
    for w in "${WEB[@]}"; do
        grep -q "^192.0.2.1 .*GET / " "$RUNDIR/http-${w##*.}.log" || ok=0
    done
    if ((ok)); then
        pass "each server saw its connection from the NAT address 192.0.2.1"
    else
        fail "server logs: $(cat "$RUNDIR"/http-2?.log)"
    fi
}

# The closed connections' flow records (FINs both ways, then [nat] tcp_closing_timeout_s):
# the plain one as "nat64" with the subscriber's IPv6 address and the pool's port, the
# VIP's three as the service "web" from the pool address.
has_records() {
    "$PY" -c '
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
plain = [r for r in rs if r["service"] == "nat64" and r["protocol"] == "tcp"]
web = [r for r in rs if r["service"] == "web"]
sys.exit(0 if len(plain) == 1 and len(web) == 3 else 1)' "$RUNDIR/flows.jsonl"
}

check_records() {
    if ! wait_for 20 has_records; then
        fail "flow records: $(cat "$RUNDIR/flows.jsonl" 2>/dev/null)"
        return
    fi
    if "$PY" -c '
import json, sys
addr, pool = sys.argv[2], sys.argv[3]
rs = [json.loads(l) for l in open(sys.argv[1])]
p = [r for r in rs if r["service"] == "nat64" and r["protocol"] == "tcp"][0]
ok = (p["subscriber"].startswith("[" + addr + "]:") and p["vip"] == "192.0.2.10:80"
      and p["server"] == "192.0.2.10:80" and p["nat"].startswith(pool + ":")
      and p["close"] == "fin" and p["up_packets"] > 0 and p["down_packets"] > 0)
web = [r for r in rs if r["service"] == "web"]
ok = ok and sorted(r["server"] for r in web) == ["192.0.2.21:8080", "192.0.2.22:8080", "192.0.2.23:8080"]
ok = ok and all(r["subscriber"].startswith(pool + ":") and r["vip"] == "203.0.113.80:80" for r in web)
sys.exit(0 if ok else 1)' "$RUNDIR/flows.jsonl" "$(global_address)" "$POOL64"; then
        pass "flow records: the plain connection as nat64 from $(global_address), the VIP's three as web from $POOL64"
    else
        fail "flow records: $(cat "$RUNDIR/flows.jsonl")"
    fi
}

check_icmp_errors() {
    local out e0 mtu
    e0=$(counter nat64_icmp_errors)
    # 1448 bytes of IPv6, 1428 of IPv4 with DF (over 1260): too big for the far link.
    out=$(nsx "$NS_SUB" ping -6 -M do -c 3 -i 0.5 -w 10 -s 1400 "64:ff9b::$FAR" 2>&1) || true
    mtu=$(nsx "$NS_SUB" ip -6 route get "64:ff9b::$FAR" 2>&1 | grep -o 'mtu [0-9]*' || true)
    if grep -q "mtu=1420" <<<"$out" && [[ $mtu == "mtu 1420" ]]; then
        pass "ping -6 -M do -s 1400 64:ff9b::$FAR: the router's fragmentation needed (1400) came back as Packet Too Big, the kernel's path MTU is 1420"
    else
        fail "no Packet Too Big for 1420: ping: $out; route: $mtu"
    fi
    # 1420 bytes of IPv6 are 1400 of IPv4: they fit.
    out=$(nsx "$NS_SUB" ping -6 -M do -c 2 -i 0.3 -w 10 -s 1372 "64:ff9b::$FAR" 2>&1) || true
    if grep -q "2 received" <<<"$out"; then
        pass "ping -6 -M do -s 1372 (1420 bytes, 1400 translated) to 64:ff9b::$FAR answered"
    else
        fail "ping -6 of the path MTU: $out"
    fi
    out=$(nsx "$NS_SUB" "$PY" -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.connect(("64:ff9b::'"$SRV"'", 9))
s.settimeout(1)
for _ in range(5):
    try:
        s.send(b"anyone?")
        s.recv(100)
        print("answered")
        break
    except ConnectionRefusedError:
        print("refused")
        break
    except socket.timeout:
        pass' 2>&1) || true
    if [[ $out == refused ]]; then
        pass "UDP to [64:ff9b::$SRV]:9 (closed): the port unreachable came back as ICMPv6, ECONNREFUSED"
    else
        fail "UDP to a closed port through NAT64: '$out'"
    fi
    # The other way: the server sends to the subscriber's socket after it closed.
    setsid ip netns exec "$NS_SRV" "$PY" -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("'"$SRV"'", 7777))
s.settimeout(20)
d, a = s.recvfrom(100)
s.connect(a)
s.settimeout(1)
for _ in range(5):
    try:
        s.send(b"still there?")
        s.recv(100)
    except ConnectionRefusedError:
        print("refused", a[0]); break
    except socket.timeout:
        pass
' </dev/null >"$RUNDIR/refused.log" 2>&1 &
    echo $! >"$RUNDIR/refused.pid"
    wait_for 10 nsx "$NS_SRV" bash -c "ss -uln | grep -q '$SRV:7777'" || true
    nsx "$NS_SUB" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.sendto(b"hello, then gone", ("64:ff9b::'"$SRV"'", 7777))
s.close()'
    if wait_for 15 grep -q "^refused $POOL64" "$RUNDIR/refused.log"; then
        pass "the subscriber's port unreachable reached the IPv4 server as ICMP: its socket got ECONNREFUSED from $POOL64's binding"
    else
        fail "the server saw no port unreachable: $(cat "$RUNDIR/refused.log")"
    fi
    local e=$(($(counter nat64_icmp_errors) - e0))
    # One fragmentation needed (the kernel then sends 1420 at most), one port
    # unreachable each way; Linux may send more than one fragmentation needed before the
    # first reaches the subscriber.
    if ((e >= 3)); then
        pass "nat64_icmp_errors +$e"
    else
        fail "nat64_icmp_errors +$e, want at least 3"
    fi
}

check_no_drops() {
    local r bad=""
    for r in nat64_unsupported nat64_icmp_error nat64_no_binding nat64_no_port nat64_table_full nat64_bad_destination nat64_packet_too_big; do
        [[ $(counter "$r") == 0 ]] || bad+="$r=$(counter "$r") "
    done
    if [[ -z $bad ]]; then
        pass "no nat64_* drops"
    else
        fail "NAT64 drops: $bad"
    fi
}

test_all() {
    [[ ${EUID:-$(id -u)} -eq 0 ]] || die "needs root (network namespaces)"
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    trap down EXIT
    up
    start_servers
    write_config
    start_gateway
    if check_login; then
        check_ping
        check_curl_plain
        check_udp
        check_vip
        check_records
        check_icmp_errors
        check_no_drops
    fi
    if ((FAILED > 0)); then
        log "nat64 lab: $FAILED check(s) failed; gateway log: $RUNDIR/tollgate.log"
        tail -n 20 "$RUNDIR/tollgate.log"
        exit 1
    fi
    log "nat64 lab: all checks passed"
}

case ${1:-help} in
test) test_all ;;
down) down ;;
*) log "usage: $0 test|down   (root; run under flock /tmp/tollgate-netns.lock)" ;;
esac
