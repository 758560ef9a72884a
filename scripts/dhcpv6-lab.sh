#!/usr/bin/env bash
# DHCPv6 for an IPoE subscriber against Tollgate in network namespaces (issue 16, V6-1),
# with isc-dhcp-client's `dhclient -6` as the client:
#
#   tgd6-sub: tgd6-s0 ── tgd6-a0 [tgd6-gw: tollgate, AF_PACKET, 2 workers] tgd6-c0 ── tgd6-v0 :tgd6-srv
#   02:d6:00:00:00:11      fe80::(access MAC)   2001:db8:ff::1     2001:db8:ff::10
#   accept_ra=2, autoconf=0   pool 2001:db8:100::/48, delegated_pool 2001:db8:200::/48 (/56s)
#
#   1. `dhclient -6 -N -P` (IA_NA and IA_PD; its own lease and pid files, once the
#      link-local address is past DAD) from a MAC without a session: its SOLICIT logs it
#      in by MAC against the local store (IPv6 first), and the four messages bind it.
#      The session (10.10.0.101) is worker 1's of 2, and IPv6 is steered by the /56, so
#      the lease has the IA_NA address 2001:db8:100:100::1 (::1 in the session's /64, the
#      first of worker 1's /56s) and the delegated prefix 2001:db8:200:100::/56 (likewise);
#      `ctl show session` names both, and the RA the
#      host got carries the M and O flags (tshark checks the DHCPv6 exchange and the RA).
#   2. `ping -6` to the server namespace from the IA_NA address, and (dhclient-script
#      ignores IA_PD: the test puts 2001:db8:200:142::1 on loopback itself)
#      from an address in the delegated prefix (a /64 that a steering by the /64 would
#      give to worker 0): both answered, both counted exactly in
#      the one session.
#   3. `dhclient -6 -r`: RELEASE; the delegated prefix is no longer the session's (the
#      server's echoes to it are `ipv6_no_session`), the session itself stays.
#
# Usage (root; run it under the lab lock):
#   flock /tmp/tollgate-netns.lock scripts/dhcpv6-lab.sh test
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)
RUNDIR=${TOLLGATE_DHCPV6_LAB_DIR:-/tmp/tollgate-dhcpv6-lab}
TG_BIN=${TOLLGATE_BIN:-$REPO_DIR/target/release/tollgate}
PY=/usr/bin/python3
NS_GW=tgd6-gw
NS_SUB=tgd6-sub
NS_SRV=tgd6-srv
SUB_MAC=02:d6:00:00:00:11
SRV6=2001:db8:ff::10
IA_NA=2001:db8:100:100::1
PD=2001:db8:200:100::/56
LAN6=2001:db8:200:142::1
SOCK="$RUNDIR/ctl.sock"
FAILED=0

LAB=dhcpv6-lab
# log, die, pass, fail, nsx, ctl, wait_for
# shellcheck source=scripts/lab-common.sh
source "$SCRIPT_DIR/lab-common.sh"

# dhclient6 SECONDS ARGS...: dhclient -6 in the subscriber namespace with this lab's own
# lease and pid files, for at most SECONDS (it stays as a daemon once bound).
dhclient6() {
    timeout "$1" ip netns exec "$NS_SUB" dhclient -6 -v -lf "$RUNDIR/dhclient6.leases" \
        -pf "$RUNDIR/dhclient6.pid" "${@:2}"
}

kill_pidfile() {
    [[ -f $1 ]] && kill "$(cat "$1")" 2>/dev/null || true
    rm -f "$1"
}

down() {
    kill_pidfile "$RUNDIR/dhclient6.pid"
    kill_pidfile "$RUNDIR/tshark.pid"
    kill_pidfile "$RUNDIR/tollgate.pid"
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

up() {
    down
    mkdir -p "$RUNDIR"
    rm -f "$RUNDIR"/dhclient6.* "$RUNDIR/capture.pcap"
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
    done
    nsx "$NS_GW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add tgd6-a0 netns "$NS_GW" type veth peer name tgd6-s0 netns "$NS_SUB"
    ip link add tgd6-c0 netns "$NS_GW" type veth peer name tgd6-v0 netns "$NS_SRV"
    nsx "$NS_GW" ip link set tgd6-a0 up
    nsx "$NS_GW" ip link set tgd6-c0 up
    # The subscriber: its default route from RAs, its global address only from DHCPv6
    # (no SLAAC), so that what it has is what IA_NA gave it; no RS, so that its DHCPv6
    # SOLICIT is what logs it in (its session's RAs then come unsolicited). Its link is
    # up from the start, for the capture.
    nsx "$NS_SUB" sysctl -qw net.ipv6.conf.tgd6-s0.accept_ra=2 net.ipv6.conf.tgd6-s0.autoconf=0 \
        net.ipv6.conf.tgd6-s0.router_solicitations=0
    nsx "$NS_SUB" ip link set tgd6-s0 address "$SUB_MAC"
    nsx "$NS_SUB" ip link set tgd6-s0 up
    nsx "$NS_SRV" sysctl -qw net.ipv6.conf.tgd6-v0.accept_dad=0
    nsx "$NS_SRV" ip -6 addr add "$SRV6/64" dev tgd6-v0 nodad
    nsx "$NS_SRV" ip link set tgd6-v0 up
    nsx "$NS_SRV" ip -6 route add 2001:db8:100::/48 via 2001:db8:ff::1
    nsx "$NS_SRV" ip -6 route add 2001:db8:200::/48 via 2001:db8:ff::1
}

write_config() {
    # Two workers: IPv6 is steered by the /56, so every /64 of the delegated /56 reaches
    # the session's worker (docs/ipoe.md).
    cat >"$RUNDIR/tollgate.toml" <<EOF
[engine]
workers = 2
[control]
socket = "$SOCK"
[access]
backend = "af_packet"
interface = "tgd6-a0"
address = "10.10.0.1/24"
[core]
backend = "af_packet"
interface = "tgd6-c0"
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
dhcpv6 = true
dhcpv6_rapid_commit = false
delegated_pool = "2001:db8:200::/48"
delegated_length = 56
EOF
    rm -f "$RUNDIR"/subscribers.db* "$RUNDIR"/accounting.db* "$RUNDIR/sessions.jsonl"
    cat >"$RUNDIR/subs.toml" <<EOF
[[subscriber]]
user_id = "dhcpv6"
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

start_capture() {
    setsid ip netns exec "$NS_SUB" tshark -i tgd6-s0 -w "$RUNDIR/capture.pcap" -q \
        </dev/null >"$RUNDIR/tshark.log" 2>&1 &
    echo $! >"$RUNDIR/tshark.pid"
    wait_for 20 grep -q "Capturing on" "$RUNDIR/tshark.log" || log "tshark did not say it captures"
}

link_local_ready() {
    nsx "$NS_SUB" ip -6 -o addr show dev tgd6-s0 scope link | grep -v tentative | grep -q fe80::
}

# Reads a field of the first open session: session_field KEY.
session_field() {
    "$PY" -c '
import json, sys
v = json.loads(sys.stdin.read())
v = v if isinstance(v, list) else v.get("sessions", v)
o = [s for s in v if s.get("state", "open") == "open"]
print(o[0].get(sys.argv[1], "") if o else "")' "$1" < <(ctl show sessions)
}

has_address() {
    nsx "$NS_SUB" ip -6 -o addr show dev tgd6-s0 scope global | grep -v tentative | grep -q "$IA_NA/"
}

# The counter named $1 of `ctl show counters`' ipv6 map.
ipv6_count() {
    ctl show counters | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["ipv6"].get(sys.argv[1], 0))' "$1"
}

check_bind() {
    if ! wait_for 30 link_local_ready; then
        fail "no link-local address past DAD on tgd6-s0"
        return 1
    fi
    # -1: try once (the gateway answers, or dhclient gives up), then stay as a daemon.
    if ! dhclient6 60 -1 -N -P tgd6-s0 >"$RUNDIR/dhclient6.log" 2>&1; then
        fail "dhclient -6 -N -P got no lease: $(tail -n 15 "$RUNDIR/dhclient6.log")"
        return 1
    fi
    local leased pd
    leased=$(grep -o 'iaaddr [0-9a-f:]*' "$RUNDIR/dhclient6.leases" | tail -n 1 | cut -d' ' -f2)
    pd=$(grep -o 'iaprefix [0-9a-f:/]*' "$RUNDIR/dhclient6.leases" | tail -n 1 | cut -d' ' -f2)
    if [[ $leased == "$IA_NA" && $pd == "$PD" ]]; then
        pass "dhclient -6 -N -P bound IA_NA $leased and IA_PD $pd"
    else
        fail "dhclient's lease has IA_NA '$leased' and IA_PD '$pd', expected $IA_NA and $PD"
        return 1
    fi
    if wait_for 10 has_address; then
        pass "dhclient-script put $IA_NA on tgd6-s0, past DAD"
    else
        fail "$IA_NA not on tgd6-s0: $(nsx "$NS_SUB" ip -6 addr show dev tgd6-s0)"
        return 1
    fi
    local addr dp user
    addr=$(session_field ipv6_address)
    dp=$(session_field delegated_prefix)
    user=$(session_field user)
    if [[ $addr == "$IA_NA" && $dp == "$PD" && $user == dhcpv6 && $(ipv6_count dhcpv6_logins) == 1 &&
        $(ipv6_count nd_rs) == 0 ]]; then
        pass "the SOLICIT logged $SUB_MAC in by MAC (user $user, dhcpv6_logins 1, no RS); ctl show session names $addr and $dp"
    else
        fail "ctl show session: user '$user' ipv6_address '$addr' delegated_prefix '$dp'; dhcpv6_logins $(ipv6_count dhcpv6_logins) nd_rs $(ipv6_count nd_rs)"
    fi
    # The subscriber's router numbers its LAN from the delegated prefix (dhclient-script
    # does not): here one address of it on loopback stands for the LAN.
    nsx "$NS_SUB" ip -6 addr add "$LAN6/128" dev lo
    if wait_for 20 bash -c "ip netns exec $NS_SUB ip -6 route show default | grep -q 'via fe80::'"; then
        pass "default route from the RA: $(nsx "$NS_SUB" ip -6 route show default | head -n 1)"
    else
        fail "no default route from the RA: $(nsx "$NS_SUB" ip -6 route)"
        return 1
    fi
}

# ping -6 -c N from $1 to the server; the session's counters must move by exactly N
# echoes of 104 bytes each way.
check_ping_from() {
    local src=$1 what=$2 n=4 out c0 c1 id
    id=$(session_field session)
    c0=$(ctl show session "$id")
    out=$(nsx "$NS_SUB" ping -6 -c "$n" -i 0.2 -w 20 -I "$src" "$SRV6" 2>&1) || true
    c1=$(ctl show session "$id")
    if ! grep -q "$n received" <<<"$out"; then
        fail "ping -6 -I $src $SRV6 ($what): $out"
        return
    fi
    if "$PY" -c '
import json, sys
a = json.loads(sys.argv[1])["counters"]; b = json.loads(sys.argv[2])["counters"]; n = int(sys.argv[3])
d = {k: b[k] - a[k] for k in a}
want = {"tx_packets": n, "tx_bytes": n * 104, "rx_packets": n, "rx_bytes": n * 104}
sys.exit(0 if d == want else print(d, want) or 1)' "$c0" "$c1" "$n"; then
        pass "ping -6 from $src ($what): $n of $n answered, counted exactly in session $id ($((n * 104)) bytes each way)"
    else
        fail "ping -6 from $src ($what): session counters $c0 -> $c1"
    fi
}

drop_count() {
    ctl show counters | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["drops"].get(sys.argv[1], 0))' "$1"
}

no_delegated_prefix() { [[ -z $(session_field delegated_prefix) ]]; }

check_release() {
    local id out before
    id=$(session_field session)
    kill_pidfile "$RUNDIR/dhclient6.pid"
    if dhclient6 30 -r -N -P tgd6-s0 >>"$RUNDIR/dhclient6.log" 2>&1 &&
        wait_for 10 no_delegated_prefix; then
        pass "dhclient -6 -r: RELEASE took the binding and the delegated prefix from session $id"
    else
        fail "after dhclient -6 -r session $id still has '$(session_field delegated_prefix)'"
        return
    fi
    if [[ $(session_field session) == "$id" ]]; then
        pass "the session stays after the DHCPv6 release"
    else
        fail "session $id ended with the DHCPv6 release"
    fi
    before=$(drop_count ipv6_no_session)
    out=$(nsx "$NS_SRV" ping -6 -c 3 -i 0.2 -W 1 "$LAN6" 2>&1) || true
    if grep -q " 0 received" <<<"$out" && [[ $(drop_count ipv6_no_session) == $((before + 3)) ]]; then
        pass "the released prefix is not forwarded: 3 echoes to $LAN6 are ipv6_no_session"
    else
        fail "ping to $LAN6 after the release: $out; ipv6_no_session $before -> $(drop_count ipv6_no_session)"
    fi
}

check_capture() {
    local msgs ra pid
    # tshark writes out what it has on SIGINT; wait for it to be gone.
    pid=$(cat "$RUNDIR/tshark.pid")
    kill -INT "$pid" 2>/dev/null || true
    wait_for 10 bash -c "! kill -0 $pid" || log "tshark did not stop"
    rm -f "$RUNDIR/tshark.pid"
    # (not the copies quoted in ICMPv6 errors: dhclient -r may close its port before
    # the last REPLY arrives)
    msgs=$(tshark -r "$RUNDIR/capture.pcap" -Y 'dhcpv6 && !icmpv6' -T fields -e dhcpv6.msgtype 2>/dev/null | tr '\n' ' ') || true
    # SOLICIT(1) ADVERTISE(2) REQUEST(3) REPLY(7), then RELEASE(8) REPLY(7); a client may
    # retransmit a SOLICIT while the login is decided.
    if [[ $msgs =~ ^(1 )+2\ 3\ 7\ 8\ 7\ $ ]]; then
        pass "tshark: DHCPv6 $msgs(SOLICIT ADVERTISE REQUEST REPLY RELEASE REPLY)"
    else
        fail "tshark: DHCPv6 message types '$msgs'"
    fi
    ra=$(tshark -r "$RUNDIR/capture.pcap" -Y 'icmpv6.type == 134' -T fields \
        -e icmpv6.nd.ra.flag.m -e icmpv6.nd.ra.flag.o 2>/dev/null | head -n 1 | tr '\t' ' ') || true
    if [[ $ra =~ ^(1|True)\ (1|True)$ ]]; then
        pass "tshark: the RA carries the M and O flags"
    else
        fail "tshark: RA flags M O '$ra'"
    fi
}

test_all() {
    [[ ${EUID:-$(id -u)} -eq 0 ]] || die "needs root (network namespaces)"
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    command -v dhclient >/dev/null || die "no dhclient (isc-dhcp-client: make deps)"
    trap down EXIT
    up
    write_config
    start_gateway
    start_capture
    if check_bind; then
        check_ping_from "$IA_NA" "the IA_NA address"
        check_ping_from "$LAN6" "inside the delegated prefix"
        check_release
        check_capture
    fi
    stop_gateway
    if ((FAILED > 0)); then
        log "dhcpv6 lab: $FAILED check(s) failed; gateway log: $RUNDIR/tollgate.log"
        tail -n 20 "$RUNDIR/tollgate.log"
        exit 1
    fi
    log "dhcpv6 lab: all checks passed"
}

case ${1:-help} in
test) test_all ;;
down) down ;;
*) log "usage: $0 test|down   (root; run under flock /tmp/tollgate-netns.lock)" ;;
esac
