#!/usr/bin/env bash
# IPv6 for an IPoE subscriber against Tollgate in network namespaces (issue 16, V6-1), with
# the kernel's own SLAAC as the client:
#
#   tg6-sub: tg6-s0 ── tg6-a0 [tg6-gw: tollgate, AF_PACKET, 2 workers] tg6-c0 ── tg6-v0 :tg6-srv
#   02:16:00:00:00:11      fe80::(access MAC)  2001:db8:ff::1     2001:db8:ff::10
#   accept_ra=2, SLAAC      pool 2001:db8:100::/48                  route 2001:db8:100::/48
#
#   1. The subscriber's RS (a MAC without a session) logs it in by MAC against the local
#      store (IPv6 first): the session gets an IPv4 address from the pool and a /64, and
#      `ctl show session` names the /64.
#   2. The RA with that /64 gives the kernel a global address (waited for past DAD), and a
#      default route through the gateway's link-local address (NS answered by the gateway).
#   3. `ping -6` to the server namespace: the gateway resolves the server (its IPv6 next
#      hop) by NS, the server resolves the gateway's core address by NS, the echoes go
#      through; the session's counters are exact (tx and rx: n packets of 40 + 64 bytes).
#   3b. Routes (issue 16 item 4): `ping -6` to 2001:db8:500::10, routed by
#      `[[ipv6.route]]` through the server, and to 2001:db8:ff::20, a host of the
#      `connected` prefix the gateway resolves by NS on the first echo.
#   4. `ping -6 -t 1`: the gateway answers ICMPv6 Time Exceeded.
#   5. The session removed: its record is written, the final RA withdraws the host's
#      default route, and the server's echoes to the old address are `ipv6_no_session`.
#   6. IPv4 first: `ctl session add` for the same MAC gets a /64 and sends the RA; the
#      host's new address pings the server, counted exactly in that session.
#
# Usage (root; run it under the lab lock):
#   flock /tmp/tollgate-netns.lock scripts/ipv6-lab.sh test
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)
RUNDIR=${TOLLGATE_IPV6_LAB_DIR:-/tmp/tollgate-ipv6-lab}
TG_BIN=${TOLLGATE_BIN:-$REPO_DIR/target/release/tollgate}
PY=/usr/bin/python3
NS_GW=tg6-gw
NS_SUB=tg6-sub
NS_SRV=tg6-srv
SUB_MAC=02:16:00:00:00:11
SRV6=2001:db8:ff::10
ROUTED6=2001:db8:500::10
HOST6=2001:db8:ff::20
SOCK="$RUNDIR/ctl.sock"
FAILED=0

LAB=ipv6-lab
# log, die, pass, fail, nsx, ctl, wait_for
# shellcheck source=scripts/lab-common.sh
source "$SCRIPT_DIR/lab-common.sh"

down() {
    [[ -f $RUNDIR/tollgate.pid ]] && kill "$(cat "$RUNDIR/tollgate.pid")" 2>/dev/null || true
    rm -f "$RUNDIR/tollgate.pid"
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

up() {
    down
    mkdir -p "$RUNDIR"
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
    done
    # The gateway's ports are the engine's: the kernel keeps off them.
    nsx "$NS_GW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add tg6-a0 netns "$NS_GW" type veth peer name tg6-s0 netns "$NS_SUB"
    ip link add tg6-c0 netns "$NS_GW" type veth peer name tg6-v0 netns "$NS_SRV"
    nsx "$NS_GW" ip link set tg6-a0 up
    nsx "$NS_GW" ip link set tg6-c0 up
    # The subscriber: SLAAC from RAs (accept_ra=2 even if forwarding were on), no DAD
    # shortcut; the link comes up only once the gateway runs, so its first RS finds it.
    nsx "$NS_SUB" sysctl -qw net.ipv6.conf.tg6-s0.accept_ra=2 net.ipv6.conf.tg6-s0.autoconf=1 \
        net.ipv6.conf.tg6-s0.router_solicitations=10 net.ipv6.conf.tg6-s0.router_solicitation_interval=1
    nsx "$NS_SUB" ip link set tg6-s0 address "$SUB_MAC"
    # The server: on-link with the gateway's core address; the subscribers' pool behind it.
    nsx "$NS_SRV" sysctl -qw net.ipv6.conf.tg6-v0.accept_dad=0
    nsx "$NS_SRV" ip -6 addr add "$SRV6/64" dev tg6-v0 nodad
    # A second host of the core link, and a prefix behind the server (item 4's routes).
    nsx "$NS_SRV" ip -6 addr add "$HOST6/64" dev tg6-v0 nodad
    nsx "$NS_SRV" ip link set lo up
    nsx "$NS_SRV" ip -6 addr add "$ROUTED6/128" dev lo
    nsx "$NS_SRV" ip link set tg6-v0 up
    nsx "$NS_SRV" ip -6 route add 2001:db8:100::/48 via 2001:db8:ff::1
}

write_config() {
    cat >"$RUNDIR/tollgate.toml" <<EOF
[engine]
workers = 2
[control]
socket = "$SOCK"
[access]
backend = "af_packet"
interface = "tg6-a0"
address = "10.10.0.1/24"
[core]
backend = "af_packet"
interface = "tg6-c0"
address = "192.0.2.1/24"
[subscribers]
session_log = "$RUNDIR/sessions.jsonl"
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
dns = ["2001:db8:ff::53"]
# Issue 16 item 4: the core link's prefix, its hosts resolved on demand, and a route
# to a prefix behind the server (which stands in for a router).
connected = ["2001:db8:ff::/64"]
[[ipv6.route]]
prefix = "2001:db8:500::/48"
via = "$SRV6"
EOF
    rm -f "$RUNDIR"/subscribers.db* "$RUNDIR"/accounting.db* "$RUNDIR/sessions.jsonl"
    cat >"$RUNDIR/subs.toml" <<EOF
[[subscriber]]
user_id = "slaac"
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

stop_gateway() {
    local pid
    pid=$(cat "$RUNDIR/tollgate.pid")
    kill "$pid" 2>/dev/null || true
    wait_for 10 bash -c "! kill -0 $pid" || true
    rm -f "$RUNDIR/tollgate.pid"
}

# The subscriber's global address inside the /64, once past DAD (not tentative).
global_address() {
    nsx "$NS_SUB" ip -6 -o addr show dev tg6-s0 scope global |
        grep -v tentative | grep -o '2001:db8:100:[0-9a-f:]*' | head -n 1
}
has_global_address() { [[ -n $(global_address) ]]; }

session_json() { ctl show sessions; }

# Reads a field of the first open session: session_field KEY.
session_field() {
    "$PY" -c '
import json, sys
v = json.loads(sys.stdin.read())
v = v if isinstance(v, list) else v.get("sessions", v)
o = [s for s in v if s.get("state", "open") == "open"]
print(o[0][sys.argv[1]] if o else "")' "$1" < <(session_json)
}
has_session() { [[ -n $(session_field session) ]]; }

check_slaac_login() {
    nsx "$NS_SUB" ip link set tg6-s0 up
    if wait_for 30 has_session; then
        pass "the subscriber's RS logged it in by MAC: session $(session_field session), IPv4 $(session_field address)"
    else
        fail "no session after the subscriber's RS: $(session_json)"
        return 1
    fi
    local prefix
    prefix=$(session_field ipv6_prefix)
    # Its IPv4 address, 10.10.0.101, is worker 1's of 2: so is its /64 (the first one in
    # a /56 steered to worker 1: IPv6 goes by the /56), and the fanout programs steer its
    # IPv6 there.
    if [[ $prefix == 2001:db8:100:100::/64 && $(session_field worker) == 1 ]]; then
        pass "ctl show session names its /64 on worker 1: $prefix"
    else
        fail "ctl show session's ipv6_prefix is '$prefix' on worker $(session_field worker), expected 2001:db8:100:100::/64 on 1"
    fi
    if wait_for 30 has_global_address; then
        pass "kernel SLAAC: global address $(global_address) past DAD"
    else
        fail "no global address in 2001:db8:100::/48: $(nsx "$NS_SUB" ip -6 addr show dev tg6-s0)"
        return 1
    fi
    if wait_for 10 bash -c "ip netns exec $NS_SUB ip -6 route show default | grep -q 'via fe80::'"; then
        pass "default route from the RA: $(nsx "$NS_SUB" ip -6 route show default | head -n 1)"
    else
        fail "no default route from the RA: $(nsx "$NS_SUB" ip -6 route)"
    fi
}

check_ping() {
    local n=5 out c0 c1 id
    id=$(session_field session)
    c0=$(ctl show session "$id")
    # The first echo may wait for neighbour resolution on both sides; -w bounds it all.
    out=$(nsx "$NS_SUB" ping -6 -c "$n" -i 0.2 -w 20 "$SRV6" 2>&1) || true
    if grep -q "$n received" <<<"$out"; then
        pass "ping -6 $SRV6 through the gateway: $n of $n answered"
    else
        fail "ping -6 $SRV6: $out"
        return
    fi
    c1=$(ctl show session "$id")
    # ping -6's default 56 bytes: 40 (IPv6) + 8 (ICMPv6) + 56 = 104 bytes a packet, each
    # way. Nothing else of the subscriber's is forwarded (ND and MLD stay on the link).
    if "$PY" -c '
import json, sys
a = json.loads(sys.argv[1])["counters"]; b = json.loads(sys.argv[2])["counters"]; n = int(sys.argv[3])
d = {k: b[k] - a[k] for k in a}
want = {"tx_packets": n, "tx_bytes": n * 104, "rx_packets": n, "rx_bytes": n * 104}
sys.exit(0 if d == want else print(d, want) or 1)' "$c0" "$c1" "$n"; then
        pass "the session counts $n echoes up and $n replies down, $((n * 104)) bytes each way"
    else
        fail "session counters before $c0 after $c1"
    fi
}

# The IPv6 counter named $1 from `ctl show counters`' ipv6 map.
ipv6_count() {
    ctl show counters | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["ipv6"][sys.argv[1]])' "$1"
}

# Issue 16 item 4: a prefix routed through a next hop (the server's 2001:db8:500::10
# behind $SRV6), and a host of the connected prefix that nothing has resolved yet
# (2001:db8:ff::20, the server's second address): the gateway solicits it when the
# first echo to it arrives (that echo is dropped, ipv6_next_hop_unresolved: no hold
# queue for IPv6), learns it from the NA, and forwards the rest.
check_routes() {
    local out learned
    out=$(nsx "$NS_SUB" ping -6 -c 3 -i 0.2 -w 20 "$ROUTED6" 2>&1) || true
    if grep -q "3 received" <<<"$out"; then
        pass "ping -6 $ROUTED6 through [[ipv6.route]] via $SRV6: 3 of 3 answered"
    else
        fail "ping -6 $ROUTED6 (routed via $SRV6): $out"
    fi
    learned=$(ipv6_count ipv6_neighbor_learned)
    out=$(nsx "$NS_SUB" ping -6 -c 4 -i 0.5 -w 20 "$HOST6" 2>&1) || true
    if grep -qE "[34] received" <<<"$out" && [[ $(ipv6_count ipv6_neighbor_learned) == $((learned + 1)) ]] &&
        [[ $(ipv6_count ipv6_neighbor_solicits) -ge 2 ]]; then
        pass "ping -6 $HOST6 (connected, resolved on demand by NS): $(grep -oE '[0-9]+ received' <<<"$out"), one neighbour learnt"
    else
        fail "ping -6 $HOST6 (connected): $out; ipv6_neighbor_learned $(ipv6_count ipv6_neighbor_learned) (was $learned)"
    fi
}

no_default_route() { [[ -z $(nsx "$NS_SUB" ip -6 route show default) ]]; }

# The drop counter named $1 from `ctl show counters`.
drop_count() {
    ctl show counters | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["drops"][sys.argv[1]])' "$1"
}

check_time_exceeded() {
    local out
    # Hop limit 1: the gateway is the first hop, and answers from its link-local address.
    out=$(nsx "$NS_SUB" ping -6 -c 1 -t 1 -W 2 "$SRV6" 2>&1) || true
    if grep -q "Time exceeded: Hop limit" <<<"$out" && [[ $(drop_count ipv6_hop_limit_exceeded) == 1 ]]; then
        pass "ping -6 -t 1: ICMPv6 Time Exceeded from the gateway, one ipv6_hop_limit_exceeded"
    else
        fail "ping -6 -t 1: $out; ipv6_hop_limit_exceeded $(drop_count ipv6_hop_limit_exceeded)"
    fi
}

check_end() {
    local id out addr
    id=$(session_field session)
    addr=$(global_address)
    ctl session remove "$id" >/dev/null || { fail "ctl session remove $id"; return; }
    if wait_for 10 grep -q "\"session\":$id" "$RUNDIR/sessions.jsonl"; then
        pass "session $id ended, its record written"
    else
        fail "no record of session $id: $(cat "$RUNDIR/sessions.jsonl" 2>/dev/null)"
    fi
    # The final RA (router lifetime 0) takes the gateway out of the host's default routes.
    if wait_for 10 no_default_route; then
        pass "the final RA withdrew the subscriber's default route"
    else
        fail "the subscriber still has a default route: $(nsx "$NS_SUB" ip -6 route show default)"
    fi
    # Its /64 is no longer forwarded: the server's echoes to it are counted drops.
    out=$(nsx "$NS_SRV" ping -6 -c 3 -i 0.2 -W 1 "$addr" 2>&1) || true
    if grep -q " 0 received" <<<"$out" && [[ $(drop_count ipv6_no_session) == 3 ]]; then
        pass "after the session ended its /64 is not forwarded: 3 echoes to $addr are ipv6_no_session"
    else
        fail "ping to $addr after the session ended: $out; ipv6_no_session $(drop_count ipv6_no_session)"
    fi
}

has_default_route() { [[ -n $(nsx "$NS_SUB" ip -6 route show default) ]]; }

# IPv4 first: a session opened by `ctl session add` for the same MAC (as a DHCPv4 login
# would) gets a /64 at once and sends the host its RA; the host's IPv6 then counts in
# that one session.
check_ipv4_first() {
    local id prefix c0 c1 out n=3
    id=$(ctl session add --user slaac --address 10.10.0.102 --mac "$SUB_MAC" |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)["session"])') || {
        fail "ctl session add for $SUB_MAC"
        return
    }
    prefix=$(ctl show session "$id" | "$PY" -c 'import json, sys; print(json.load(sys.stdin).get("ipv6_prefix"))')
    # 10.10.0.102 is worker 0's: the first /64 of worker 0's first /56.
    if [[ $prefix == 2001:db8:100::/64 ]]; then
        pass "an IPv4-first session of the same MAC got its /64: $prefix"
    else
        fail "the IPv4-first session's ipv6_prefix is '$prefix', expected 2001:db8:100::/64"
        return
    fi
    if wait_for 20 has_default_route &&
        wait_for 20 bash -c "ip netns exec $NS_SUB ip -6 -o addr show dev tg6-s0 | grep -v tentative | grep -q '2001:db8:100:0:'"; then
        pass "its RA gave the host a new address and default route"
    else
        fail "no address in 2001:db8:100::/64 or default route: $(nsx "$NS_SUB" ip -6 addr show dev tg6-s0)"
        return
    fi
    c0=$(ctl show session "$id")
    out=$(nsx "$NS_SUB" ping -6 -c "$n" -i 0.2 -w 20 "$SRV6" 2>&1) || true
    c1=$(ctl show session "$id")
    if grep -q "$n received" <<<"$out" && "$PY" -c '
import json, sys
a = json.loads(sys.argv[1])["counters"]; b = json.loads(sys.argv[2])["counters"]; n = int(sys.argv[3])
d = {k: b[k] - a[k] for k in a}
sys.exit(0 if d == {"tx_packets": n, "tx_bytes": n * 104, "rx_packets": n, "rx_bytes": n * 104} else 1)' "$c0" "$c1" "$n"; then
        pass "ping -6 through the IPv4-first session: $n answered, counted in it exactly"
    else
        fail "ping -6 through the IPv4-first session: $out; counters $c0 -> $c1"
    fi
}

test_all() {
    [[ ${EUID:-$(id -u)} -eq 0 ]] || die "needs root (network namespaces)"
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    trap down EXIT
    up
    write_config
    start_gateway
    if check_slaac_login; then
        check_ping
        check_routes
        check_time_exceeded
        check_end
        check_ipv4_first
    fi
    stop_gateway
    if ((FAILED > 0)); then
        log "ipv6 lab: $FAILED check(s) failed; gateway log: $RUNDIR/tollgate.log"
        tail -n 20 "$RUNDIR/tollgate.log"
        exit 1
    fi
    log "ipv6 lab: all checks passed"
}

case ${1:-help} in
test) test_all ;;
down) down ;;
*) log "usage: $0 test|down   (root; run under flock /tmp/tollgate-netns.lock)" ;;
esac
