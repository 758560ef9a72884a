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
#   4. Relay mode (`[ipv6] dhcpv6_mode = "relay"`) to a real Kea (kea-dhcp6 in its own
#      namespace, reached over a kernel link from the gateway's namespace, where the
#      relay's UDP 547 socket is), in namespaces of its own (prefix s9e):
#
#        tgr6-sub: tgr6-s0 ── tgr6-a0 [tgr6-gw: tollgate] tgr6-c0 ── tgr6-v0 :tgr6-srv 2001:db8:ff::10
#                                   tgr6-k0 2001:db8:fe::1 ── tgr6-k1 :tgr6-kea 2001:db8:fe::20
#
#      No `[ipv6] pool` (optional in relay mode: the sessions' /64s are Kea's).
#      `dhclient -6 -N -P` gets Kea's address (pool 2001:db8:100:1::1000-10ff, in the
#      subnet Kea picks by the relay's Link-Address 2001:db8:100:1::1) and a /56 of Kea's
#      2001:db8:200::/48; Kea saw Interface-Id and Remote-Id; the session (logged in by
#      MAC on Kea's REPLY) shows both; ping -6 from the address and from the delegated
#      prefix is counted exactly; `dhclient -6 -r` is relayed to Kea, which releases
#      both, and the session ends with a Stop (user_request, with its counters).
#      Then over a restart of the gateway: `dhclient -6 -N -P` binds again, the gateway
#      stops (SIGTERM: the binding stays in the lease file, with Kea's DUID and address)
#      and starts again; the session comes back with the same address and prefix, and
#      `ctl session remove` makes the gateway RELEASE the binding at Kea, which releases
#      the address and the prefix (it discards a RELEASE without its Server Identifier).
#
# Usage (root; run it under the lab lock):
#   flock /tmp/tollgate-netns.lock scripts/dhcpv6-lab.sh test
#   flock /tmp/tollgate-netns.lock scripts/dhcpv6-lab.sh relay    (step 4 alone)
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

# dhclient-script writes the DNS servers it is given to /etc/resolv.conf, which a
# namespace shares with the host unless /etc/netns/NS/resolv.conf exists (ip netns exec
# then mounts that one over it): each client namespace gets its own, so the lab's
# 2001:db8:ff::53 never becomes the host's resolver.
private_resolv() {
    mkdir -p "/etc/netns/$1"
    : >"/etc/netns/$1/resolv.conf"
}

drop_resolv() {
    rm -rf "/etc/netns/$1"
    rmdir /etc/netns 2>/dev/null || true
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
    drop_resolv "$NS_SUB"
}

up() {
    down
    mkdir -p "$RUNDIR"
    rm -f "$RUNDIR"/dhclient6.* "$RUNDIR/capture.pcap"
    for ns in "$NS_GW" "$NS_SUB" "$NS_SRV"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
    done
    private_resolv "$NS_SUB"
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

# --- 4. relay mode to Kea -------------------------------------------------------------

R_GW=tgr6-gw
R_SUB=tgr6-sub
R_SRV=tgr6-srv
R_KEA=tgr6-kea
R_MAC=02:d6:00:00:00:21
R_KEA6=2001:db8:fe::20
R_LINK=2001:db8:100:1::1

relay_down() {
    kill_pidfile "$RUNDIR/relay-dhclient6.pid"
    kill_pidfile "$RUNDIR/kea6.pid"
    kill_pidfile "$RUNDIR/tollgate.pid"
    for ns in "$R_GW" "$R_SUB" "$R_SRV" "$R_KEA"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    drop_resolv "$R_SUB"
}

relay_up() {
    relay_down
    mkdir -p "$RUNDIR"
    rm -f "$RUNDIR"/relay-dhclient6.* "$RUNDIR"/kea6*
    for ns in "$R_GW" "$R_SUB" "$R_SRV" "$R_KEA"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
    done
    private_resolv "$R_SUB"
    # The ports Tollgate owns carry no kernel IPv6; the relay's link to Kea does.
    nsx "$R_GW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add tgr6-a0 netns "$R_GW" type veth peer name tgr6-s0 netns "$R_SUB"
    ip link add tgr6-c0 netns "$R_GW" type veth peer name tgr6-v0 netns "$R_SRV"
    ip link add tgr6-k0 netns "$R_GW" type veth peer name tgr6-k1 netns "$R_KEA"
    nsx "$R_GW" sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 net.ipv6.conf.tgr6-k0.disable_ipv6=0 \
        net.ipv6.conf.tgr6-k0.accept_dad=0
    nsx "$R_GW" ip -6 addr add 2001:db8:fe::1/64 dev tgr6-k0 nodad
    for i in tgr6-a0 tgr6-c0 tgr6-k0; do nsx "$R_GW" ip link set "$i" up; done
    nsx "$R_KEA" sysctl -qw net.ipv6.conf.tgr6-k1.accept_dad=0
    nsx "$R_KEA" ip -6 addr add "$R_KEA6/64" dev tgr6-k1 nodad
    nsx "$R_KEA" ip link set tgr6-k1 up
    nsx "$R_SUB" sysctl -qw net.ipv6.conf.tgr6-s0.accept_ra=2 net.ipv6.conf.tgr6-s0.autoconf=0 \
        net.ipv6.conf.tgr6-s0.router_solicitations=0
    nsx "$R_SUB" ip link set tgr6-s0 address "$R_MAC"
    nsx "$R_SUB" ip link set tgr6-s0 up
    nsx "$R_SRV" sysctl -qw net.ipv6.conf.tgr6-v0.accept_dad=0
    nsx "$R_SRV" ip -6 addr add "$SRV6/64" dev tgr6-v0 nodad
    nsx "$R_SRV" ip link set tgr6-v0 up
    nsx "$R_SRV" ip -6 route add 2001:db8:100::/48 via 2001:db8:ff::1
    nsx "$R_SRV" ip -6 route add 2001:db8:200::/48 via 2001:db8:ff::1
}

# Kea (kea-dhcp6-server) at $R_KEA6, for relayed clients only, with its own lease file,
# pid and lock paths and a server DUID it does not keep (not in /var/lib/kea); it logs packets at DEBUG so that the test sees the relay's options.
start_kea6() {
    cat >"$RUNDIR/kea-dhcp6.conf" <<KEA
{"Dhcp6": {
  "interfaces-config": {"interfaces": ["tgr6-k1/$R_KEA6"]},
  "server-id": {"type": "LLT", "persist": false},
  "lease-database": {"type": "memfile", "persist": true, "name": "$RUNDIR/kea6-leases.csv",
                     "lfc-interval": 0},
  "preferred-lifetime": 300, "valid-lifetime": 600, "renew-timer": 150, "rebind-timer": 240,
  "subnet6": [{"id": 1, "subnet": "2001:db8:100:1::/64",
               "pools": [{"pool": "2001:db8:100:1::1000 - 2001:db8:100:1::10ff"}],
               "pd-pools": [{"prefix": "2001:db8:200::", "prefix-len": 48, "delegated-len": 56}],
               "option-data": [{"name": "dns-servers", "data": "2001:db8:ff::53"}]}],
  "loggers": [{"name": "kea-dhcp6", "output_options": [{"output": "stdout"}],
               "severity": "DEBUG", "debuglevel": 55}]
}}
KEA
    setsid ip netns exec "$R_KEA" env KEA_PIDFILE_DIR="$RUNDIR" KEA_LOCKFILE_DIR="$RUNDIR" \
        kea-dhcp6 -c "$RUNDIR/kea-dhcp6.conf" </dev/null >"$RUNDIR/kea6.log" 2>&1 &
    echo $! >"$RUNDIR/kea6.pid"
    wait_for 15 bash -c "ip netns exec $R_KEA ss -Huln | grep -q ':547 '" ||
        die "Kea did not start: $(tail -n 5 "$RUNDIR/kea6.log")"
}

relay_config() {
    cat >"$RUNDIR/tollgate.toml" <<TOML
[engine]
workers = 1
[control]
socket = "$SOCK"
[access]
backend = "af_packet"
interface = "tgr6-a0"
address = "10.10.0.1/24"
[core]
backend = "af_packet"
interface = "tgr6-c0"
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
access_addresses = ["$R_LINK"]
core_address = "2001:db8:ff::1"
next_hop = "$SRV6"
dhcpv6 = true
dhcpv6_mode = "relay"
dhcpv6_servers = ["$R_KEA6"]
TOML
    rm -f "$RUNDIR"/subscribers.db* "$RUNDIR"/accounting.db* "$RUNDIR/sessions.jsonl" "$RUNDIR"/leases.dhcp*
    cat >"$RUNDIR/subs.toml" <<TOML
[[subscriber]]
user_id = "relay6"
mac = ["$R_MAC"]
TOML
    "$TG_BIN" subscriber --db "$RUNDIR/subscribers.db" import "$RUNDIR/subs.toml" >/dev/null
}

relay_dhclient6() {
    timeout "$1" ip netns exec "$R_SUB" dhclient -6 -v -lf "$RUNDIR/relay-dhclient6.leases" \
        -pf "$RUNDIR/relay-dhclient6.pid" "${@:2}"
}

relay_ll_ready() {
    nsx "$R_SUB" ip -6 -o addr show dev tgr6-s0 scope link | grep -v tentative | grep -q fe80::
}

relay_has() { nsx "$R_SUB" ip -6 -o addr show dev tgr6-s0 scope global | grep -v tentative | grep -q "$1/"; }

no_open_session() { [[ -z $(session_field session) ]]; }

has_delegated() { [[ -n $(session_field delegated_prefix) ]]; }

# The Stop of session $2 in the session log $1: cause user_request, at least $3 packets.
stop_logged() {
    "$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("session") == int(sys.argv[2]) and r["cause"] == "user_request" and r["tx_packets"] >= int(sys.argv[3]):
        sys.exit(0)
sys.exit(1)' "$@" 2>/dev/null
}

check_relay() {
    local leased pd id c0 c1 n=4 out lan src ok=1 addr dp user
    if ! wait_for 30 relay_ll_ready; then
        fail "relay: no link-local address past DAD on tgr6-s0"
        return
    fi
    if ! relay_dhclient6 60 -1 -N -P tgr6-s0 >"$RUNDIR/relay-dhclient6.log" 2>&1; then
        fail "relay: dhclient -6 -N -P got no lease through the relay: $(tail -n 15 "$RUNDIR/relay-dhclient6.log")"
        return
    fi
    leased=$(grep -o 'iaaddr [0-9a-f:]*' "$RUNDIR/relay-dhclient6.leases" | tail -n 1 | cut -d' ' -f2)
    pd=$(grep -o 'iaprefix [0-9a-f:/]*' "$RUNDIR/relay-dhclient6.leases" | tail -n 1 | cut -d' ' -f2)
    if [[ $leased =~ ^2001:db8:100:1::10[0-9a-f][0-9a-f]$ && $pd =~ ^2001:db8:200:([0-9a-f]+:)?:/56$ ]]; then
        pass "relay: dhclient -6 -N -P got IA_NA $leased and IA_PD $pd from Kea's pools through the gateway"
    else
        fail "relay: dhclient's lease has IA_NA '$leased' and IA_PD '$pd', not from Kea's pools"
        return
    fi
    if grep -q "$leased" "$RUNDIR/kea6-leases.csv" && grep -q "${pd%/*}" "$RUNDIR/kea6-leases.csv"; then
        pass "relay: Kea's lease file has $leased and $pd"
    else
        fail "relay: Kea's lease file: $(cat "$RUNDIR/kea6-leases.csv")"
    fi
    # Kea logs each packet's options at DEBUG: the Interface-Id (18) with the line's
    # name and the Remote-Id (37) the relay added.
    if grep -q 'type=00018' "$RUNDIR/kea6.log" && grep -q 'type=00037' "$RUNDIR/kea6.log"; then
        pass "relay: Kea received RELAY-FORWs with Interface-Id and Remote-Id options"
    else
        fail "relay: Kea's log shows no Interface-Id / Remote-Id option: $(grep -m3 -i 'type=000' "$RUNDIR/kea6.log")"
    fi
    if wait_for 10 relay_has "$leased"; then
        pass "relay: dhclient-script put $leased on tgr6-s0"
    else
        fail "relay: $leased not on tgr6-s0: $(nsx "$R_SUB" ip -6 addr show dev tgr6-s0)"
        return
    fi
    wait_for 10 has_delegated || true
    addr=$(session_field ipv6_address)
    dp=$(session_field delegated_prefix)
    user=$(session_field user)
    if [[ $addr == "$leased" && $dp == "$pd" && $user == relay6 ]]; then
        pass "relay: the session (user $user, logged in by MAC on Kea's REPLY) shows $addr and $dp"
    else
        fail "relay: ctl show session: user '$user' ipv6_address '$addr' delegated_prefix '$dp'"
        return
    fi
    lan=${pd%%::/56}:42::1
    nsx "$R_SUB" ip -6 addr add "$lan/128" dev lo
    if ! wait_for 20 bash -c "ip netns exec $R_SUB ip -6 route show default | grep -q 'via fe80::'"; then
        fail "relay: no default route from the RA: $(nsx "$R_SUB" ip -6 route)"
        return
    fi
    id=$(session_field session)
    c0=$(ctl show session "$id")
    for src in "$leased" "$lan"; do
        out=$(nsx "$R_SUB" ping -6 -c "$n" -i 0.2 -w 20 -I "$src" "$SRV6" 2>&1) || true
        grep -q "$n received" <<<"$out" || {
            ok=0
            fail "relay: ping -6 -I $src $SRV6: $out"
        }
    done
    c1=$(ctl show session "$id")
    if ((ok)) && "$PY" -c '
import json, sys
a = json.loads(sys.argv[1])["counters"]; b = json.loads(sys.argv[2])["counters"]; n = int(sys.argv[3])
d = {k: b[k] - a[k] for k in a}
want = {"tx_packets": n, "tx_bytes": n * 104, "rx_packets": n, "rx_bytes": n * 104}
sys.exit(0 if d == want else print(d, want) or 1)' "$c0" "$c1" $((2 * n)); then
        pass "relay: ping -6 from $leased and from $lan (the delegated prefix): $((2 * n)) echoes each way, counted exactly in session $id"
    else
        fail "relay: session counters $c0 -> $c1"
    fi
    kill_pidfile "$RUNDIR/relay-dhclient6.pid"
    relay_dhclient6 30 -r -N -P tgr6-s0 >>"$RUNDIR/relay-dhclient6.log" 2>&1 || true
    if wait_for 10 no_open_session; then
        pass "relay: dhclient -6 -r ended session $id"
    else
        fail "relay: session $id still open after dhclient -6 -r: $(ctl show sessions)"
    fi
    if wait_for 10 stop_logged "$RUNDIR/sessions.jsonl" "$id" $((2 * n)); then
        pass "relay: the Stop is in the session log (cause user_request, with its counters)"
    else
        fail "relay: session log: $(cat "$RUNDIR/sessions.jsonl" 2>/dev/null)"
    fi
    if wait_for 10 grep -q 'DHCP6_RELEASE_NA' "$RUNDIR/kea6.log" &&
        grep -q 'DHCP6_RELEASE_PD' "$RUNDIR/kea6.log"; then
        pass "relay: the RELEASE went through the relay and Kea released the address and the prefix"
    else
        fail "relay: Kea logged no release: $(grep -i release "$RUNDIR/kea6.log" | tail -n 3)"
    fi
    check_relay_restart
    log "relay counters: $(ctl show counters | "$PY" -c 'import json, sys; j = json.load(sys.stdin)["ipv6"]; print({k: v for k, v in j.items() if v and k.startswith("dhcpv6")})')"
}

kea_count() { grep -c "$1" "$RUNDIR/kea6.log" || true; }

# The relay's binding in the lease file keeps its server end: the last `put v6.` record
# (kind 0x76, version 2) ends with flag 1 and a server-end record naming Kea's address.
binding_kept_with_server() {
    "$PY" -c '
import sys, ipaddress
recs = [l.split()[2] for l in open(sys.argv[1]) if l.startswith("put v6.")]
b = bytes.fromhex(recs[-1])
n = int.from_bytes(b[11:13], "big")
end = b[13 + n:]
sys.exit(0 if b[:2] == b"\x76\x02" and end[:3] == b"\x01\x67\x01" and ipaddress.IPv6Address(sys.argv[2]).packed in end else 1)' \
        "$RUNDIR/leases.dhcp" "$R_KEA6" 2>/dev/null
}

session_back_with() { [[ $(session_field ipv6_address) == "$1" && $(session_field delegated_prefix) == "$2" ]]; }

# Over a restart of the gateway: bind again, stop and start the gateway, the session is
# back with the binding; the gateway's own end RELEASEs it at Kea (with Kea's DUID).
check_relay_restart() {
    local leased pd id na0 pd0
    kill_pidfile "$RUNDIR/relay-dhclient6.pid"
    rm -f "$RUNDIR/relay-dhclient6.leases"
    if ! relay_dhclient6 60 -1 -N -P tgr6-s0 >>"$RUNDIR/relay-dhclient6.log" 2>&1; then
        fail "relay restart: dhclient -6 -N -P got no second lease: $(tail -n 15 "$RUNDIR/relay-dhclient6.log")"
        return
    fi
    leased=$(grep -o 'iaaddr [0-9a-f:]*' "$RUNDIR/relay-dhclient6.leases" | tail -n 1 | cut -d' ' -f2)
    pd=$(grep -o 'iaprefix [0-9a-f:/]*' "$RUNDIR/relay-dhclient6.leases" | tail -n 1 | cut -d' ' -f2)
    if ! wait_for 10 session_back_with "$leased" "$pd"; then
        fail "relay restart: no session with $leased and $pd: $(ctl show sessions)"
        return
    fi
    stop_gateway
    if binding_kept_with_server; then
        pass "relay restart: the gateway stopped; the binding ($leased, $pd) is in the lease file with Kea's address and DUID"
    else
        fail "relay restart: the lease file has no binding with its server end: $(grep 'v6\.' "$RUNDIR/leases.dhcp" 2>/dev/null)"
        return
    fi
    setsid ip netns exec "$R_GW" "$TG_BIN" run --config "$RUNDIR/tollgate.toml" \
        </dev/null >>"$RUNDIR/tollgate.log" 2>&1 &
    echo $! >"$RUNDIR/tollgate.pid"
    if ! wait_for 20 ctl show status; then
        fail "relay restart: tollgate did not start again"
        return
    fi
    if wait_for 20 session_back_with "$leased" "$pd"; then
        id=$(session_field session)
        pass "relay restart: the session is back (session $id) with $leased and $pd from the kept binding"
    else
        fail "relay restart: after the restart: $(ctl show sessions)"
        return
    fi
    na0=$(kea_count DHCP6_RELEASE_NA)
    pd0=$(kea_count DHCP6_RELEASE_PD)
    ctl session remove "$id" --cause admin_reset >/dev/null
    if wait_for 10 bash -c "(( \$(grep -c DHCP6_RELEASE_NA $RUNDIR/kea6.log) > $na0 && \$(grep -c DHCP6_RELEASE_PD $RUNDIR/kea6.log) > $pd0 ))"; then
        pass "relay restart: ctl session remove: the gateway's RELEASE (with Kea's Server Identifier) made Kea release $leased and $pd"
    else
        fail "relay restart: Kea did not release after the gateway's end: $(grep -i -e release -e 'server-id' -e DROP "$RUNDIR/kea6.log" | tail -n 5)"
    fi
}

test_relay() {
    if ! command -v kea-dhcp6 >/dev/null; then
        fail "relay: kea-dhcp6 is not installed (apt-get install kea-dhcp6-server; make deps)"
        return
    fi
    trap relay_down EXIT
    relay_up
    start_kea6
    relay_config
    setsid ip netns exec "$R_GW" "$TG_BIN" run --config "$RUNDIR/tollgate.toml" \
        </dev/null >"$RUNDIR/tollgate.log" 2>&1 &
    echo $! >"$RUNDIR/tollgate.pid"
    if wait_for 20 ctl show status; then
        check_relay
    else
        tail -n 30 "$RUNDIR/tollgate.log"
        fail "relay: tollgate did not start"
    fi
    stop_gateway
    relay_down
    trap - EXIT
}

test_all() {
    [[ ${EUID:-$(id -u)} -eq 0 ]] || die "needs root (network namespaces)"
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    command -v dhclient >/dev/null || die "no dhclient (isc-dhcp-client: make deps)"
    trap down EXIT
    local resolv_before
    resolv_before=$(sha256sum /etc/resolv.conf 2>/dev/null || true)
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
    down
    # 4: relay mode to Kea.
    test_relay
    if [[ $(sha256sum /etc/resolv.conf 2>/dev/null || true) == "$resolv_before" ]]; then
        pass "the host's /etc/resolv.conf is as it was (dhclient-script wrote the namespaces' own)"
    else
        fail "the host's /etc/resolv.conf changed: $(cat /etc/resolv.conf)"
    fi
    if ((FAILED > 0)); then
        log "dhcpv6 lab: $FAILED check(s) failed; gateway log: $RUNDIR/tollgate.log"
        tail -n 20 "$RUNDIR/tollgate.log"
        exit 1
    fi
    log "dhcpv6 lab: all checks passed"
}

case ${1:-help} in
test) test_all ;;
relay)
    [[ ${EUID:-$(id -u)} -eq 0 ]] || die "needs root (network namespaces)"
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    test_relay
    ((FAILED == 0)) || {
        tail -n 20 "$RUNDIR/tollgate.log"
        exit 1
    }
    log "dhcpv6 lab (relay): all checks passed"
    ;;
down)
    down
    relay_down
    ;;
*) log "usage: $0 test|relay|down   (root; run under flock /tmp/tollgate-netns.lock)" ;;
esac
