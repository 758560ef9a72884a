#!/usr/bin/env bash
# Tollgate as LAC switching a PPPoE subscriber's PPP to another vendor's LNS (issue 15
# item 2), in network namespaces:
#
#   tgc-sub: tgc-s0 ── tgc-a0 [tgc-gw: tollgate LAC] tgc-c0 ── tgc-l0 [tgc-lns: l2tpns + FreeRADIUS] tgc-n0 ── tgc-v0 :tgc-srv
#            (PPPoE)          10.10.0.1   172.16.0.1     172.16.0.2     192.0.2.1          192.0.2.10 (UDP counter)
#   l2tpns gives the subscriber 10.77.0.5 (RADIUS Framed-IP-Address) on its TUN device.
#
#   1. A scapy PPPoE client (scripts/pppoe-client.py; no kernel PPP) does discovery and
#      LCP with Tollgate, then PAP as alice@isp.example. The realm isp.example is a
#      `[[l2tp.lac_realm]]`: Tollgate hands the PPP off (no login here), opens a tunnel to
#      l2tpns (SCCRQ..SCCCN, Challenge/Response with the shared secret) and the call
#      (ICRQ..ICCN with proxy LCP and proxy authentication). l2tpns authenticates through
#      its FreeRADIUS and runs IPCP with the client; Tollgate's fast path switches every
#      PPP frame between PPPoE and L2TP.
#   2. The client sends UDP datagrams to the server behind l2tpns: the server counts them,
#      and Tollgate's `ctl show session alice@isp.example` (a switched session) has
#      exactly the packets and bytes sent (IP total length); datagrams back are counted
#      the same way.
#   3. `ctl tunnel session remove`: the CDN goes to l2tpns and PADT to the client.
#   4. bob@radius.example is no configured realm: Tollgate logs him in through its own
#      FreeRADIUS (in tgc-gw), whose Access-Accept carries RFC 2868 tunnel attributes
#      (Tunnel-Type L2TP, Medium IPv4, Server-Endpoint 172.16.0.2, Assignment-Id,
#      Preference, Tunnel-Password; tagged): his PPP goes to l2tpns the same way.
#      The tunnel secrets are per LNS: Tollgate's `l2tp.secret` is not l2tpns's; the
#      realm's `secret` (alice) and the decrypted Tunnel-Password (bob) are, so their
#      tunnels come up only when those are the ones used (Challenge/Response).
#   5. A third call, then SIGTERM: PADT to the client, the CDN to l2tpns.
#
# l2tpns needs a cluster interface that exists (a veth pair in its namespace, with an
# address), its own log and pid files, and some 15 s to declare itself cluster master;
# it authenticates only through RADIUS, so a FreeRADIUS with its own configuration
# directory answers on the namespace's loopback.
#
# Usage (root; run it under the lab lock):
#   flock /tmp/tollgate-netns.lock scripts/lac-lab.sh test
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)
RUNDIR=${TOLLGATE_LAC_LAB_DIR:-/tmp/tollgate-lac-lab}
TG_BIN=${TOLLGATE_BIN:-$REPO_DIR/target/release/tollgate}
PY=/usr/bin/python3
NS_SUB=tgc-sub
NS_GW=tgc-gw
NS_LNS=tgc-lns
NS_SRV=tgc-srv
SOCK="$RUNDIR/ctl.sock"
SECRET=tgc-tunnel-secret
RADIUS_SECRET=tgc-radius
RADIUS_PORT=18120
SUB_ADDR=10.77.0.5
BOB_ADDR=10.77.0.6
FAILED=0

LAB=lac-lab
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
    kill_pidfile "$RUNDIR/radius.pid"
    kill_pidfile "$RUNDIR/radius-lac.pid"
    for ns in "$NS_SUB" "$NS_GW" "$NS_LNS" "$NS_SRV"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

up() {
    down
    mkdir -p "$RUNDIR"
    for ns in "$NS_SUB" "$NS_GW" "$NS_LNS" "$NS_SRV"; do
        ip netns add "$ns"
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        nsx "$ns" ip link set lo up
    done
    ip link add tgc-s0 netns "$NS_SUB" type veth peer name tgc-a0 netns "$NS_GW"
    ip link add tgc-c0 netns "$NS_GW" type veth peer name tgc-l0 netns "$NS_LNS"
    ip link add tgc-n0 netns "$NS_LNS" type veth peer name tgc-v0 netns "$NS_SRV"
    # l2tpns's cluster interface: it must exist and have an address; nothing else is on it.
    ip link add tgc-k0 netns "$NS_LNS" type veth peer name tgc-k1 netns "$NS_LNS"
    nsx "$NS_SUB" ip link set tgc-s0 up
    nsx "$NS_GW" ip link set tgc-a0 up
    nsx "$NS_GW" ip link set tgc-c0 up
    nsx "$NS_LNS" ip addr add 10.98.1.1/30 dev tgc-k0
    nsx "$NS_LNS" ip link set tgc-k0 up
    nsx "$NS_LNS" ip link set tgc-k1 up
    nsx "$NS_LNS" ip addr add 172.16.0.2/24 dev tgc-l0
    nsx "$NS_LNS" ip link set tgc-l0 up
    nsx "$NS_LNS" ip addr add 192.0.2.1/24 dev tgc-n0
    nsx "$NS_LNS" ip link set tgc-n0 up
    nsx "$NS_LNS" sysctl -qw net.ipv4.ip_forward=1
    nsx "$NS_SRV" ip addr add 192.0.2.10/24 dev tgc-v0
    nsx "$NS_SRV" ip link set tgc-v0 up
    nsx "$NS_SRV" ip route add 10.77.0.0/24 via 192.0.2.1
}

# write_radius DIR USERS: a FreeRADIUS configuration in DIR answering on the loopback.
write_radius() {
    local d=$1
    rm -rf "$d"
    mkdir -p "$d/log" "$d/run" "$d/acct"
    : >"$d/dictionary"
    printf '%s\n' "$2" >"$d/users"
    cat >"$d/radiusd.conf" <<EOF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $d/log
raddbdir = $d
radacctdir = $d/acct
name = freeradius
confdir = $d
modconfdir = $d/mods-config
certdir = $d/certs
cadir = $d/certs
run_dir = $d/run
db_dir = $d
libdir = /usr/lib/freeradius
pidfile = $d/run/freeradius.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {
	destination = stdout
	colourise = no
	auth = yes
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}
proxy_requests = no
client loopback {
	ipaddr = 127.0.0.1
	secret = $RADIUS_SECRET
	require_message_authenticator = no
	nas_type = other
}
modules {
	pap {
		normalise = yes
	}
	chap {
	}
	files {
		filename = $d/users
	}
	always ok {
		rcode = ok
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $RADIUS_PORT
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = $((RADIUS_PORT + 1))
	}
	authorize {
		chap
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
		Auth-Type CHAP {
			chap
		}
	}
	preacct {
	}
	accounting {
		ok
		update reply {
			Message-Authenticator := 0x00
		}
	}
	post-auth {
		update reply {
			Message-Authenticator := 0x00
		}
	}
}
EOF
}

# l2tpns's users (it authenticates the switched subscribers) and Tollgate's (bob's
# Access-Accept names the tunnel).
LNS_USERS="\"alice@isp.example\"	Cleartext-Password := \"wonderland\"
	Framed-IP-Address = $SUB_ADDR,
	Framed-Protocol = PPP,
	Service-Type = Framed-User

\"bob@radius.example\"	Cleartext-Password := \"builder\"
	Framed-IP-Address = $BOB_ADDR,
	Framed-Protocol = PPP,
	Service-Type = Framed-User"
LAC_USERS="\"bob@radius.example\"	Cleartext-Password := \"builder\"
	Tunnel-Type:1 = L2TP,
	Tunnel-Medium-Type:1 = IPv4,
	Tunnel-Server-Endpoint:1 = \"172.16.0.2\",
	Tunnel-Assignment-Id:1 = \"from-radius\",
	Tunnel-Preference:1 = 1,
	Tunnel-Password:1 = \"$SECRET\",
	Tunnel-Client-Auth-Id:1 = \"tollgate-lac\""

write_config() {
    mkdir -p "$RUNDIR/state"
    rm -f "$RUNDIR"/state/* "$RUNDIR/sessions.jsonl"
    cat >"$RUNDIR/tollgate.toml" <<EOF
[engine]
workers = 1
[control]
socket = "$SOCK"
[access]
backend = "af_packet"
interface = "tgc-a0"
address = "10.10.0.1/24"
[core]
backend = "af_packet"
interface = "tgc-c0"
address = "172.16.0.1/24"
[subscribers]
session_log = "$RUNDIR/sessions.jsonl"
[aaa]
auth = "radius"
store = "$RUNDIR/state/subscribers.db"
spool = "$RUNDIR/state/accounting.db"
[[aaa.radius.auth_server]]
address = "127.0.0.1:$RADIUS_PORT"
secret = "$RADIUS_SECRET"
[[aaa.radius.acct_server]]
address = "127.0.0.1:$((RADIUS_PORT + 1))"
secret = "$RADIUS_SECRET"
[pppoe]
enabled = true
ac_name = "tgc-lac"
auth = ["pap"]
[l2tp]
enabled = true
host_name = "tollgate-lac"
# Not l2tpns's: the realm's secret and bob's Tunnel-Password are.
secret = "not-the-lns-secret"
sample_interval_ms = 200
[[l2tp.lac_realm]]
realm = "isp.example"
lns = ["172.16.0.2"]
secret = "$SECRET"
EOF
    "$TG_BIN" check-config "$RUNDIR/tollgate.toml" >/dev/null || die "tollgate.toml does not validate"
    cat >"$RUNDIR/l2tpns.cfg" <<EOF
set debug 3
set log_file "$RUNDIR/l2tpns.log"
set pid_file "$RUNDIR/l2tpns.own.pid"
set cluster_interface "tgc-k0"
set bind_address 172.16.0.2
set iftun_address 10.99.1.1
set tundevicename "tgc-tun"
set l2tp_secret "$SECRET"
set primary_radius 127.0.0.1
set primary_radius_port $RADIUS_PORT
set radius_secret "$RADIUS_SECRET"
set radius_accounting no
set radius_authtypes "pap"
set cli_bind_address 127.0.0.1
set ppp_keepalive no
EOF
    rm -f "$RUNDIR/l2tpns.log"
}

radius_ready() { grep -q "Ready to process requests" "$RUNDIR/$1.out"; }

# start_radius NAME NAMESPACE USERS
start_radius() {
    write_radius "$RUNDIR/$1" "$3"
    setsid ip netns exec "$2" freeradius -X -d "$RUNDIR/$1" \
        </dev/null >"$RUNDIR/$1.out" 2>&1 &
    echo $! >"$RUNDIR/$1.pid"
    wait_for 30 radius_ready "$1" || {
        tail -n 30 "$RUNDIR/$1.out"
        die "freeradius ($1) did not start"
    }
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
    # In the foreground under setsid (-d would fork away from the pid noted here).
    setsid ip netns exec "$NS_LNS" l2tpns -c "$RUNDIR/l2tpns.cfg" -h tgc-lns \
        </dev/null >"$RUNDIR/l2tpns.out" 2>&1 &
    echo $! >"$RUNDIR/l2tpns.pid"
    wait_for 40 l2tpns_master || {
        tail -n 30 "$RUNDIR/l2tpns.log" "$RUNDIR/l2tpns.out" 2>/dev/null
        die "l2tpns did not become cluster master"
    }
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

# counted tx|rx N [USER]: the switched session's counters in that direction are N
# packets of 128 bytes (20 + 8 + 100, IP total length).
counted() {
    ctl show session "${3:-alice@isp.example}" | "$PY" -c '
import json, sys
v = json.load(sys.stdin); d = sys.argv[1]; n = int(sys.argv[2])
sys.exit(0 if (v[d + "_packets"], v[d + "_bytes"]) == (n, n * 128) else 1)' "$1" "$2"
}

switched_up() {
    ctl show session "${1:-alice@isp.example}" | "$PY" -c '
import json, sys
sys.exit(0 if json.load(sys.stdin).get("state") == "established" else 1)'
}

check_switching() {
    local n=20 v out sid
    nsx "$NS_SUB" timeout 90 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgc-s0 alice@isp.example wonderland pap \
        --send "$n" --to 192.0.2.10:5001 --expect-end 60 >"$RUNDIR/client.out" 2>&1 &
    local cpid=$!
    if ! wait_for 60 switched_up; then
        fail "no switched session for alice@isp.example: $(ctl show session alice@isp.example 2>&1) $(cat "$RUNDIR/client.out")"
        kill "$cpid" 2>/dev/null || true
        return
    fi
    pass "Tollgate switched alice@isp.example to l2tpns (tunnel and call up)"
    if wait_for 40 received_is "$n"; then
        pass "l2tpns authenticated the client through FreeRADIUS, IPCP gave $SUB_ADDR, and the server behind l2tpns received all $n datagrams"
    else
        fail "the server received $(cat "$RUNDIR/received" 2>/dev/null || echo 0) of $n datagrams"
    fi
    if wait_for 10 counted tx "$n"; then
        v=$(ctl show session alice@isp.example)
        pass "ctl show session: $n packets and $((n * 128)) bytes from the subscriber: $v"
    else
        fail "uplink not counted exactly: $(ctl show session alice@isp.example)"
    fi
    # Down: datagrams from the server to the subscriber, through l2tpns and Tollgate.
    nsx "$NS_SRV" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(bytes([i]) * 100, (sys.argv[1], 40000))' "$SUB_ADDR" 10
    if wait_for 10 counted rx 10; then
        pass "ctl show session: 10 packets and 1280 bytes to the subscriber"
    else
        fail "downlink not counted exactly: $(ctl show session alice@isp.example)"
    fi
    v=$(ctl show counters)
    if "$PY" -c '
import json, sys
v = json.loads(sys.argv[1])
def find(o, k):
    if isinstance(o, dict):
        for a, b in o.items():
            if a == k:
                return b
            r = find(b, k)
            if r is not None:
                return r
    elif isinstance(o, list):
        for b in o:
            r = find(b, k)
            if r is not None:
                return r
    return None
ok = (find(v, "lac_switched_to_lns") or 0) >= int(sys.argv[2]) and (find(v, "lac_control_to_lns") or 0) > 0
sys.exit(0 if ok else 1)' "$v" "$n"; then
        pass "show counters: PPP control frames were switched too (lac_control_to_lns > 0)"
    else
        fail "show counters has no switched control frames"
    fi
    sid=$(ctl show session alice@isp.example | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["l2tp_session"])')
    ctl tunnel session remove "$sid" >/dev/null 2>&1 || true
    wait "$cpid" || true
    out=$(cat "$RUNDIR/client.out")
    if "$PY" -c '
import json, sys
o = json.loads(sys.argv[1])
sys.exit(0 if o["ok"] and o["address"] == sys.argv[2] and o["received"] == 10 and "padt" in o["events"] else 1)' "$out" "$SUB_ADDR" 2>/dev/null; then
        pass "the client received the 10 datagrams; tunnel session remove: it got PADT: $out"
    else
        fail "client: $out"
    fi
    if wait_for 10 grep -q "CDN" "$RUNDIR/l2tpns.log"; then
        pass "l2tpns received the CDN"
    else
        fail "l2tpns logged no CDN"
    fi
}

# bob@radius.example: switched by the tunnel attributes of Tollgate's RADIUS Access-Accept.
check_radius_tunnel() {
    local n=5 v out sid
    nsx "$NS_SUB" timeout 90 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgc-s0 bob@radius.example builder pap \
        --send "$n" --to 192.0.2.10:5001 --expect-end 60 >"$RUNDIR/client-bob.out" 2>&1 &
    local cpid=$!
    if ! wait_for 60 switched_up bob@radius.example; then
        fail "bob@radius.example not switched: $(ctl show session bob@radius.example 2>&1) $(cat "$RUNDIR/client-bob.out")"
        kill "$cpid" 2>/dev/null || true
        return
    fi
    v=$(ctl show session bob@radius.example)
    if "$PY" -c '
import json, sys
v = json.loads(sys.argv[1])
sys.exit(0 if v["assignment"] == "from-radius" and v["lns"].startswith("172.16.0.2:1701") else 1)' "$v"; then
        pass "Tollgate's RADIUS Access-Accept (tunnel attributes) switched bob@radius.example to l2tpns: $v"
    else
        fail "bob's call: $v"
    fi
    if wait_for 40 received_is $((20 + n)) && wait_for 10 counted tx "$n" bob@radius.example; then
        pass "the server received bob's $n datagrams; ctl show session: $n packets and $((n * 128)) bytes"
    else
        fail "bob's uplink: server $(cat "$RUNDIR/received" 2>/dev/null), $(ctl show session bob@radius.example)"
    fi
    sid=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["l2tp_session"])' "$v")
    ctl tunnel session remove "$sid" >/dev/null 2>&1 || true
    wait "$cpid" || true
    out=$(cat "$RUNDIR/client-bob.out")
    if "$PY" -c '
import json, sys
o = json.loads(sys.argv[1])
sys.exit(0 if o["ok"] and o["address"] == sys.argv[2] and "padt" in o["events"] else 1)' "$out" "$BOB_ADDR" 2>/dev/null; then
        pass "bob got $BOB_ADDR from l2tpns, then PADT: $out"
    else
        fail "bob's client: $out"
    fi
}

# The Accounting-Requests Tollgate's FreeRADIUS received (its -X log) for USER: STATUS
# and the attributes each must carry, exactly.
acct_seen() {
    "$PY" - "$RUNDIR/radius-lac.out" "$@" <<'PYEOF'
import re, sys
path, user, status = sys.argv[1:4]
want = dict(a.split("=", 1) for a in sys.argv[4:])
blocks, cur = [], None
for line in open(path, errors="replace"):
    if "Received Accounting-Request" in line:
        cur = {}
        blocks.append(cur)
        continue
    m = re.match(r"^\(\d+\)\s+([A-Za-z0-9:-]+) = (.*)$", line.rstrip())
    if cur is not None and m:
        cur.setdefault(m.group(1), m.group(2).strip('"'))
    elif cur is not None and line.strip() and not line.startswith("("):
        cur = None
for b in blocks:
    if b.get("User-Name") == user and b.get("Acct-Status-Type") == status:
        bad = {k: b.get(k) for k, v in want.items() if b.get(k) != v}
        if not bad:
            sys.exit(0)
        print(f"{status} of {user}: {bad}", file=sys.stderr)
sys.exit(1)
PYEOF
}

# alice's first call (20 up, 10 down, ended by ctl tunnel session remove) was accounted
# at Tollgate's FreeRADIUS with her line and her tunnel (RFC 2867).
check_accounting() {
    local common=(Tunnel-Type:1=L2TP Tunnel-Medium-Type:1=IPv4
        Tunnel-Server-Endpoint:1=172.16.0.2 Tunnel-Client-Endpoint:1=172.16.0.1
        Tunnel-Client-Auth-Id:1=tollgate-lac Framed-Protocol=PPP Service-Type=Framed-User
        NAS-Port-Type=Ethernet)
    if wait_for 20 acct_seen alice@isp.example Start "${common[@]}"; then
        pass "FreeRADIUS got alice's Accounting Start with Tunnel-Type L2TP, endpoints, NAS-Port-Id"
    else
        fail "no Accounting Start of alice with her tunnel: $(grep -c 'Accounting-Request' "$RUNDIR/radius-lac.out") requests"
    fi
    if wait_for 20 acct_seen alice@isp.example Stop "${common[@]}" \
        Acct-Input-Packets=20 Acct-Input-Octets=2560 Acct-Output-Packets=10 Acct-Output-Octets=1280 \
        Acct-Terminate-Cause=Admin-Reset; then
        pass "FreeRADIUS got alice's Accounting Stop: 20 packets / 2560 bytes up, 10 / 1280 down, Admin-Reset"
    else
        fail "no exact Accounting Stop of alice: $(acct_seen alice@isp.example Stop "${common[@]}" Acct-Input-Packets=20 2>&1)"
    fi
    if wait_for 20 acct_seen bob@radius.example Stop "${common[@]}" Tunnel-Assignment-Id:1=from-radius \
        Acct-Input-Packets=5 Acct-Input-Octets=640; then
        pass "FreeRADIUS got bob's Stop: his RADIUS tunnel's Assignment-Id, 5 packets / 640 bytes up"
    else
        fail "no exact Accounting Stop of bob: $(acct_seen bob@radius.example Stop "${common[@]}" 2>&1)"
    fi
    if grep -q 'Acct-Tunnel-Connection = "' "$RUNDIR/radius-lac.out"; then
        pass "Acct-Tunnel-Connection: $(grep -m1 'Acct-Tunnel-Connection' "$RUNDIR/radius-lac.out")"
    else
        fail "no Acct-Tunnel-Connection at FreeRADIUS"
    fi
}

stop_gateway() {
    local pid
    pid=$(cat "$RUNDIR/tollgate.pid")
    kill "$pid" 2>/dev/null || true
    wait_for 15 bash -c "! kill -0 $pid" || true
    rm -f "$RUNDIR/tollgate.pid"
}

check_shutdown() {
    local out cdns opened
    cdns=$(grep -c "Received CDN" "$RUNDIR/l2tpns.log" || true)
    opened=$(grep -c "IPCP: Opened" "$RUNDIR/l2tpns.log" || true)
    nsx "$NS_SUB" timeout 90 "$PY" "$SCRIPT_DIR/pppoe-client.py" tgc-s0 alice@isp.example wonderland pap \
        --expect-end 60 >"$RUNDIR/client3.out" 2>&1 &
    local cpid=$!
    if ! wait_for 60 switched_up; then
        fail "no third switched call: $(cat "$RUNDIR/client3.out")"
        kill "$cpid" 2>/dev/null || true
        return
    fi
    # The client is up once IPCP with l2tpns opened (through the switch).
    wait_for 30 bash -c "(( \$(grep -c 'IPCP: Opened' '$RUNDIR/l2tpns.log') > $opened ))" || true
    stop_gateway
    wait "$cpid" || true
    out=$(cat "$RUNDIR/client3.out")
    if "$PY" -c '
import json, sys
o = json.loads(sys.argv[1])
sys.exit(0 if o["ok"] and "padt" in o["events"] else 1)' "$out" 2>/dev/null; then
        pass "SIGTERM: the client got PADT: $out"
    else
        fail "SIGTERM: no PADT at the client: $out"
    fi
    if wait_for 10 bash -c "(( \$(grep -c 'Received CDN' '$RUNDIR/l2tpns.log') > $cdns ))"; then
        pass "SIGTERM: l2tpns received the call's CDN"
    else
        fail "SIGTERM: l2tpns logged no new CDN"
    fi
}

test_all() {
    if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
        log "lac-lab: skipped (needs root for network namespaces)"
        exit 0
    fi
    [[ -x $TG_BIN ]] || die "no tollgate binary at $TG_BIN (TOLLGATE_BIN)"
    command -v l2tpns >/dev/null || die "l2tpns is not installed (apt-get install l2tpns)"
    command -v freeradius >/dev/null || die "freeradius is not installed (apt-get install freeradius)"
    "$PY" -c 'import scapy' 2>/dev/null || die "python3-scapy is not installed"
    trap down EXIT
    up
    write_config
    start_server
    start_radius radius "$NS_LNS" "$LNS_USERS"
    start_radius radius-lac "$NS_GW" "$LAC_USERS"
    start_gateway
    start_l2tpns
    check_switching
    check_radius_tunnel
    check_accounting
    check_shutdown
    if ((FAILED > 0)); then
        log "lac lab: $FAILED check(s) failed; logs in $RUNDIR"
        tail -n 20 "$RUNDIR/tollgate.log"
        tail -n 60 "$RUNDIR/l2tpns.log"
        exit 1
    fi
    log "lac lab: all checks passed"
}

case ${1:-help} in
test) test_all ;;
down) down ;;
*) log "usage: $0 test|down   (root; run under flock /tmp/tollgate-netns.lock)" ;;
esac
