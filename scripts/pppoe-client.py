#!/usr/bin/python3
"""A PPPoE subscriber written with scapy, independent of Tollgate's PPP engine (the CI
kernel has no PPP driver, so pppd cannot run): discovery (PADI, PADR with the AC-Cookie),
LCP (MRU 1492, a Magic-Number, acknowledging the gateway's request), PAP or CHAP-MD5,
IPCP (address and DNS from the gateway's Naks), then UDP datagrams to a server in PPPoE,
LCP Echo-Requests answered, and optionally a wait for the gateway's LCP Terminate-Request
and PADT. Prints one JSON line of what happened; exits non-zero on a failure.

With --ipv6 it is dual stack (RFC 5072): IPv6CP with a random Interface-Identifier
(adopting the gateway's Nak), then a Router Solicitation over PPP from fe80::<it>; the
solicited RA's /64 and that identifier make its global address (SLAAC), and --ping6
HOST sends Echo Requests from it and counts the replies. With --dhcpv6 it then sends a
DHCPv6 SOLICIT with Rapid Commit over PPP (IA_NA and IA_PD, DUID-LL of its MAC) and
pings from the first address of the delegated prefix instead. With --no-ipv4 as well it
is IPv6-only: no IPCP request, the gateway's IPCP answered with LCP Protocol-Reject (as
pppd's `noip` does).

Behind a LAC that forwards the session to an LNS (l2tpns with a realm rule), the PPP
peer changes after authentication: the PAP request is sent again every 2 s while
unanswered (l2tpns opens the tunnel on the first and the session on a retransmission),
and a Configure-Request after LCP opened is a renegotiation (RFC 1661 Opened + RCR: our
own request goes again, authentication and IPCP start over).

With --rate, the datagrams are a stream at that rate, each starting with its sequence
number (4 bytes, big endian), and the gateway's frames (LCP echoes) are answered in
between: what a receiver needs to count losses through a tunnel move. With --stream
the stream runs until SIGTERM (not --send N), and what an echo server sends back is
counted: the JSON says how many came back, whether in order, and which are missing.

With --tun NAME the kernel's own IP runs over the PPP session: once IPCP is up, a TUN
device NAME gets the IPCP address (/32, MTU --tun-mtu) and a route to each --tun-route
(default the --to host), and IP packets are relayed between it and the session until
SIGTERM or PADT (LCP echoes answered). A line {"ready": true, ...} is printed first, so
a script knows when to start curl or iperf3; the JSON of the end follows.

With --until-auth, PPP stops being driven once the credentials are sent (a LAC hands
the session off then): for an LNS that never brings PPP up (xl2tpd without kernel PPP),
with --expect-end to wait for the PADT.

Usage: pppoe-client.py IFACE USER SECRET pap|chap [--send N --to IP:PORT [--rate PPS]]
                       [--stream --rate PPS --to IP:PORT] [--tun NAME [--tun-route HOST]]
                       [--until-auth] [--expect-end SECONDS] [--vlan S[.C]]
                       [--ipv6 [--no-ipv4] [--dhcpv6] [--ping6 HOST --ping6-count N]]
"""

import argparse
import hashlib
import json
import os
import fcntl
import select
import signal
import socket
import struct
import subprocess
import sys
import time

from scapy.all import Ether, Dot1Q, Dot1AD, IP, TCP, UDP, Raw, conf

LCP, PAP, CHAP, IPCP, IPV6CP, PPP_IPV6 = 0xC021, 0xC023, 0xC223, 0x8021, 0x8057, 0x0057


def tlv_tags(payload):
    """PPPoE tags as (type, value) pairs."""
    out, i = [], 0
    while i + 4 <= len(payload):
        t, n = struct.unpack("!HH", payload[i:i + 4])
        out.append((t, payload[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def options(data):
    out, i = [], 0
    while i + 2 <= len(data):
        t, n = data[i], data[i + 1]
        if n < 2:
            break
        out.append((t, data[i + 2:i + n]))
        i += n
    return out


def cp(code, ident, data=b""):
    return struct.pack("!BBH", code, ident, 4 + len(data)) + data


def opt(t, v):
    return bytes([t, 2 + len(v)]) + v


class Client:
    def __init__(self, a):
        self.a = a
        self.sock = conf.L2socket(iface=a.iface)
        self.mac = open(f"/sys/class/net/{a.iface}/address").read().strip()
        self.ac = None
        self.sid = 0
        self.magic = struct.unpack("!I", os.urandom(4))[0] | 1
        self.lcp_id = 1
        self.ipcp_id = 1
        self.ours_acked = self.theirs_acked = False
        self.ipcp_ours = self.ipcp_theirs = False
        self.auth = None
        self.auth_ok = False
        self.addr = "0.0.0.0"
        self.dns = ["0.0.0.0", "0.0.0.0"]
        self.events = []
        self.pap_sent = 0.0
        self.received = 0
        self.pap_tries = 0
        self.vlans = [int(v) for v in a.vlan.split(".")] if a.vlan else []
        self.iid = b"\x00" * 8
        while self.iid == b"\x00" * 8:
            self.iid = os.urandom(8)
        self.v6cp_id = 1
        self.v6_ours = self.v6_theirs = False
        self.gw_iid = None
        self.v6_in = []
        # --stream: the sequence numbers echoed back; --tun: the TUN device's fd.
        self.back = []
        self.tun = None
        self.tun_out = 0

    def l2(self, dst, etype):
        e = Ether(src=self.mac, dst=dst)
        if len(self.vlans) == 2:
            return e / Dot1AD(vlan=self.vlans[0]) / Dot1Q(vlan=self.vlans[1], type=etype)
        if len(self.vlans) == 1:
            return e / Dot1Q(vlan=self.vlans[0], type=etype)
        e.type = etype
        return e

    def disc(self, dst, code, tags):
        body = b"".join(struct.pack("!HH", t, len(v)) + v for t, v in tags)
        self.sock.send(self.l2(dst, 0x8863) / Raw(struct.pack("!BBHH", 0x11, code, 0, len(body)) + body))

    def ppp(self, proto, data):
        body = struct.pack("!H", proto) + data
        hdr = struct.pack("!BBHH", 0x11, 0x00, self.sid, len(body))
        self.sock.send(self.l2(self.ac, 0x8864) / Raw(hdr + body))

    def recv(self, until):
        """Frames to us (ethertype, PPPoE bytes) until `until`; notes each one's source
        (the gateway's MAC is the source of its PADO). Looks at least once, so a sender
        behind its schedule still answers the gateway's echoes."""
        first = True
        while first or time.time() < until:
            first = False
            r, _, _ = select.select([self.sock], [], [], max(0.0, until - time.time()))
            if not r:
                return
            p = self.sock.recv()
            if p is None or Ether not in p or p[Ether].dst.lower() != self.mac:
                continue
            self.src_of_last = p[Ether].src
            layer = p[Ether]
            etype = layer.type
            payload = bytes(layer.payload)
            tags = []
            while etype in (0x8100, 0x88A8):
                tci, etype = struct.unpack("!HH", payload[:4])
                tags.append(tci & 0xFFF)
                payload = payload[4:]
            if etype not in (0x8863, 0x8864):
                continue
            if tags != self.vlans:
                self.fail(f"frame on VLANs {tags}, expected {self.vlans}")
            yield etype, payload

    def fail(self, why):
        print(json.dumps({"ok": False, "error": why, "events": self.events}))
        sys.exit(1)

    def discovery(self):
        self.disc("ff:ff:ff:ff:ff:ff", 0x09, [(0x0101, b""), (0x0103, b"scapy")])
        deadline = time.time() + 10
        for et, p in self.recv(deadline):
            if et != 0x8863:
                continue
            code, sid = p[1], struct.unpack("!H", p[2:4])[0]
            n = struct.unpack("!H", p[4:6])[0]
            tags = tlv_tags(p[6:6 + n])
            if code == 0x07 and self.ac is None:
                self.events.append("pado")
                self.ac = self.src_of_last
                cookie = [v for t, v in tags if t == 0x0104]
                self.disc(self.ac, 0x19, [(0x0101, b""), (0x0103, b"scapy")] + [(0x0104, c) for c in cookie])
            elif code == 0x65:
                self.events.append("pads")
                self.sid = sid
                return
        self.fail("no PADS")

    def lcp_request(self):
        self.ppp(LCP, cp(1, self.lcp_id, opt(1, struct.pack("!H", 1492)) + opt(5, struct.pack("!I", self.magic))))

    def up(self):
        self.lcp_request()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.a.until_auth and self.pap_tries > 0:
                self.events.append("credentials sent")
                return
            for et, p in self.recv(min(deadline, time.time() + 0.5)):
                self.handle(et, p)
                if self.a.until_auth and self.pap_tries > 0:
                    break
                v6_done = not self.a.ipv6 or (self.v6_ours and self.v6_theirs)
                v4_done = self.a.no_ipv4 or (self.ipcp_ours and self.ipcp_theirs)
                if v4_done and v6_done and self.auth_ok:
                    return
            pap_due = self.auth == "pap" and self.ours_acked and self.theirs_acked
            if pap_due and not self.auth_ok and time.time() - self.pap_sent > 2 and self.pap_tries < 10:
                self.events.append("pap again")
                self.pap()
        self.fail(f"PPP not up (auth={self.auth} auth_ok={self.auth_ok} addr={self.addr} "
                  f"ipv6cp={self.v6_ours}/{self.v6_theirs})")

    def send_ipv6cp(self):
        self.ppp(IPV6CP, cp(1, self.v6cp_id, opt(1, self.iid)))

    def network(self):
        """Authenticated: the NCPs start."""
        if not self.a.no_ipv4:
            self.send_ipcp()
        if self.a.ipv6:
            self.send_ipv6cp()

    def send_ipcp(self):
        data = opt(3, bytes(map(int, self.addr.split("."))))
        data += opt(129, bytes(map(int, self.dns[0].split("."))))
        data += opt(131, bytes(map(int, self.dns[1].split("."))))
        self.ppp(IPCP, cp(1, self.ipcp_id, data))

    def handle(self, et, p):
        if et == 0x8863:
            if p[1] == 0xA7:
                self.events.append("padt")
            return
        proto = struct.unpack("!H", p[6:8])[0]
        n = struct.unpack("!H", p[4:6])[0]
        pkt = p[8:6 + n]
        if proto == 0x0021:
            self.received += 1
            if self.tun is not None:
                try:
                    os.write(self.tun, pkt)
                    self.tun_out += 1
                except OSError:
                    pass
            elif self.a.stream and len(pkt) >= 20:
                ihl = (pkt[0] & 15) * 4
                if pkt[9] == 17 and len(pkt) >= ihl + 12:
                    self.back.append(struct.unpack("!I", pkt[ihl + 8:ihl + 12])[0])
            return
        if proto == PPP_IPV6:
            self.v6_in.append(bytes(pkt))
            return
        code, ident = pkt[0], pkt[1]
        data = pkt[4:struct.unpack("!H", pkt[2:4])[0]]
        if proto == LCP:
            if code == 1:  # Configure-Request: note the auth protocol, ack all
                if self.ours_acked and self.theirs_acked:
                    # Renegotiation (another PPP peer: the LNS behind a LAC).
                    self.events.append("lcp renegotiated")
                    self.ours_acked = self.auth_ok = False
                    self.ipcp_ours = self.ipcp_theirs = False
                    self.pap_tries = 0
                    self.lcp_id += 1
                    self.lcp_request()
                for t, v in options(data):
                    if t == 3:
                        self.auth = "chap" if v[:2] == b"\xc2\x23" else "pap"
                if self.auth != self.a.auth:
                    self.fail(f"gateway asks for {self.auth}, expected {self.a.auth}")
                self.ppp(LCP, cp(2, ident, data))
                self.theirs_acked = True
                if self.auth == "pap" and self.ours_acked:
                    self.pap()
            elif code == 2:
                self.ours_acked = True
                if self.auth == "pap" and self.theirs_acked:
                    self.pap()
            elif code == 5:
                self.events.append("terminate " + data.decode(errors="replace"))
                self.ppp(LCP, cp(6, ident))
            elif code == 9:
                self.events.append("echo")
                self.ppp(LCP, cp(10, ident, struct.pack("!I", self.magic) + data[4:]))
        elif proto == CHAP:
            if code == 1:
                vlen = data[0]
                challenge = data[1:1 + vlen]
                resp = hashlib.md5(bytes([ident]) + self.a.secret.encode() + challenge).digest()
                self.ppp(CHAP, cp(2, ident, bytes([16]) + resp + self.a.user.encode()))
            elif code == 3 and not self.auth_ok:
                self.auth_ok = True
                self.network()
            elif code == 4:
                self.fail("authentication failed")
        elif proto == PAP:
            if code == 2 and not self.auth_ok:
                self.auth_ok = True
                self.network()
            elif code == 3:
                self.fail("authentication failed")
        elif proto == IPCP and self.a.no_ipv4:
            self.events.append("ipcp rejected")
            self.lcp_id += 1
            self.ppp(LCP, cp(8, self.lcp_id, struct.pack("!H", IPCP) + pkt))
        elif proto == IPCP:
            if code == 1:
                self.ppp(IPCP, cp(2, ident, data))
                self.ipcp_theirs = True
            elif code == 3:  # Nak: adopt
                for t, v in options(data):
                    ip = ".".join(map(str, v))
                    if t == 3:
                        self.addr = ip
                    elif t == 129:
                        self.dns[0] = ip
                    elif t == 131:
                        self.dns[1] = ip
                self.ipcp_id += 1
                self.send_ipcp()
            elif code == 2:
                self.ipcp_ours = True
        elif proto == IPV6CP:
            if code == 1:  # the gateway's identifier: acked unless zero or ours
                for t, v in options(data):
                    if t == 1:
                        self.gw_iid = v
                if self.gw_iid in (None, b"\x00" * 8, self.iid):
                    self.fail(f"gateway's IPv6CP request {data.hex()}")
                self.ppp(IPV6CP, cp(2, ident, data))
                self.v6_theirs = True
            elif code == 3:  # Nak: adopt the identifier it gives us
                for t, v in options(data):
                    if t == 1 and len(v) == 8:
                        self.iid = v
                self.v6cp_id += 1
                self.send_ipv6cp()
            elif code == 2:
                self.v6_ours = True

    def pap(self):
        self.pap_sent = time.time()
        self.pap_tries += 1
        u, s = self.a.user.encode(), self.a.secret.encode()
        self.ppp(PAP, cp(1, 1, bytes([len(u)]) + u + bytes([len(s)]) + s))


def link_local(iid):
    return socket.inet_ntop(socket.AF_INET6, b"\xfe\x80" + b"\x00" * 6 + iid)


def dhcpv6(c, out, ll):
    """SOLICIT with Rapid Commit over PPP; the REPLY's IA_NA and IA_PD. Returns the
    first address of the delegated prefix."""
    from scapy.layers.inet6 import IPv6, UDP as UDP6
    from scapy.layers.dhcp6 import (DHCP6_Solicit, DHCP6_Reply, DHCP6OptClientId, DUID_LL,
                                    DHCP6OptIA_NA, DHCP6OptIA_PD, DHCP6OptRapidCommit,
                                    DHCP6OptElapsedTime, DHCP6OptIAAddress, DHCP6OptIAPrefix,
                                    DHCP6OptServerId)
    sol = (IPv6(src=ll, dst="ff02::1:2", hlim=1) / UDP6(sport=546, dport=547) /
           DHCP6_Solicit(trid=0x5a5a5a) / DHCP6OptClientId(duid=DUID_LL(lladdr=c.mac)) /
           DHCP6OptElapsedTime() / DHCP6OptRapidCommit() / DHCP6OptIA_NA(iaid=1) /
           DHCP6OptIA_PD(iaid=2))
    c.v6_in.clear()
    reply = None
    deadline = time.time() + 15
    next_try = 0.0
    while reply is None and time.time() < deadline:
        if time.time() >= next_try:
            c.ppp(PPP_IPV6, bytes(sol))
            next_try = time.time() + 2
        for et, p in c.recv(min(deadline, time.time() + 0.2)):
            c.handle(et, p)
        for b in c.v6_in:
            p = IPv6(b)
            if DHCP6_Reply in p and p[DHCP6_Reply].trid == 0x5a5a5a:
                reply = p
        c.v6_in.clear()
    if reply is None:
        c.fail("no DHCPv6 REPLY over PPP")
    if DHCP6OptIAAddress not in reply or DHCP6OptIAPrefix not in reply:
        c.fail("DHCPv6 REPLY without IA_NA address or IA_PD prefix: %s" % bytes(reply).hex())
    pd = reply[DHCP6OptIAPrefix]
    out["dhcpv6"] = {
        "reply_source": reply.src,
        "reply_dst": reply.dst,
        "server_duid_ll": bytes(reply[DHCP6OptServerId].duid).hex(),
        "ia_na": reply[DHCP6OptIAAddress].addr,
        "ia_pd": "%s/%d" % (pd.prefix, pd.plen),
    }
    c.events.append("dhcpv6")
    host = socket.inet_pton(socket.AF_INET6, pd.prefix)[:15] + b"\x01"
    out["dhcpv6"]["ping_from"] = socket.inet_ntop(socket.AF_INET6, host)
    return out["dhcpv6"]["ping_from"]


def slaac(c, out):
    """RS over PPP from fe80::<iid>; the RA to it gives the /64; the address is the
    /64 and the identifier. Then --ping6."""
    from scapy.layers.inet6 import (IPv6, ICMPv6ND_RS, ICMPv6ND_RA, ICMPv6NDOptPrefixInfo,
                                    ICMPv6NDOptRDNSS, ICMPv6NDOptSrcLLAddr, ICMPv6EchoRequest,
                                    ICMPv6EchoReply)
    ll = link_local(c.iid)
    c.v6_in.clear()
    c.ppp(PPP_IPV6, bytes(IPv6(src=ll, dst="ff02::2", hlim=255) / ICMPv6ND_RS()))
    ra = None
    deadline = time.time() + 10
    while ra is None and time.time() < deadline:
        for et, p in c.recv(min(deadline, time.time() + 0.2)):
            c.handle(et, p)
        for b in c.v6_in:
            p = IPv6(b)
            if ICMPv6ND_RA in p and p.dst == ll:
                ra = p
        c.v6_in.clear()
    if ra is None:
        c.fail("no RA to %s after the RS" % ll)
    pi = ra[ICMPv6NDOptPrefixInfo]
    prefix = socket.inet_pton(socket.AF_INET6, pi.prefix)
    addr = socket.inet_ntop(socket.AF_INET6, prefix[:8] + c.iid)
    out["ipv6"] = {
        "iid": c.iid.hex(),
        "gateway_iid": c.gw_iid.hex(),
        "ra_source": ra.src,
        "ra_dst": ra.dst,
        "hlim": ra.hlim,
        "router_lifetime": ra[ICMPv6ND_RA].routerlifetime,
        "managed": ra[ICMPv6ND_RA].M,
        "other": ra[ICMPv6ND_RA].O,
        "prefix": "%s/%d" % (pi.prefix, pi.prefixlen),
        "autonomous": pi.A,
        "rdnss": list(ra[ICMPv6NDOptRDNSS].dns) if ICMPv6NDOptRDNSS in ra else [],
        "source_link_layer": ICMPv6NDOptSrcLLAddr in ra,
        "address": addr,
    }
    c.events.append("ra")
    if c.a.dhcpv6:
        addr = dhcpv6(c, out, ll)
    if c.a.ping6:
        n, replies = c.a.ping6_count, set()
        for i in range(n):
            c.ppp(PPP_IPV6, bytes(IPv6(src=addr, dst=c.a.ping6, hlim=64) /
                                  ICMPv6EchoRequest(id=0x6006, seq=i, data=b"p" * 56)))
        deadline = time.time() + 10
        while len(replies) < n and time.time() < deadline:
            for et, p in c.recv(min(deadline, time.time() + 0.2)):
                c.handle(et, p)
            for b in c.v6_in:
                p = IPv6(b)
                if ICMPv6EchoReply in p and p.src == c.a.ping6 and p.dst == addr \
                        and p[ICMPv6EchoReply].id == 0x6006:
                    replies.add(p[ICMPv6EchoReply].seq)
            c.v6_in.clear()
        out["ipv6"]["pings"] = n
        out["ipv6"]["replies"] = len(replies)


STOP = False


def on_term(*_):
    global STOP
    STOP = True


def ranges(xs):
    out = []
    for x in sorted(xs):
        if out and out[-1][1] == x - 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in out[:10]) or "none"


class Fast:
    """The session's frames as bytes on a raw socket of our own, without scapy: --stream
    and --tun send and receive hundreds of frames a second, which scapy's per-frame
    dissection cannot keep up with on a busy machine. Frames to us go to handle()."""

    def __init__(self, c):
        self.c = c
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.s.bind((c.a.iface, 0))
        self.s.setblocking(False)
        self.mac = bytes.fromhex(c.mac.replace(":", ""))
        tags = b""
        if len(c.vlans) == 2:
            tags = struct.pack("!HH", 0x88A8, c.vlans[0]) + struct.pack("!HH", 0x8100, c.vlans[1])
        elif len(c.vlans) == 1:
            tags = struct.pack("!HH", 0x8100, c.vlans[0])
        self.head = bytes.fromhex(c.ac.replace(":", "")) + self.mac + tags + b"\x88\x64"

    def send(self, proto, data):
        body = struct.pack("!H", proto) + data
        self.s.send(self.head + struct.pack("!BBHH", 0x11, 0, self.c.sid, len(body)) + body)

    def poll(self, timeout):
        """Waits up to `timeout` for frames, then hands every one queued to handle()."""
        r, _, _ = select.select([self.s], [], [], max(0.0, timeout))
        if not r:
            return
        while True:
            try:
                f, addr = self.s.recvfrom(65535)
            except BlockingIOError:
                return
            if addr[2] == socket.PACKET_OUTGOING or f[:6] != self.mac:
                continue
            etype, payload = struct.unpack("!H", f[12:14])[0], f[14:]
            while etype in (0x8100, 0x88A8) and len(payload) >= 4:
                etype, payload = struct.unpack("!H", payload[2:4])[0], payload[4:]
            if etype in (0x8863, 0x8864):
                self.c.handle(etype, payload)


def ipv4_udp(src, dst, sport, dport, data):
    """An IPv4/UDP datagram (UDP checksum 0, allowed over IPv4)."""
    total = 28 + len(data)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 17, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    sm = sum(struct.unpack("!10H", h))
    sm = (sm & 0xFFFF) + (sm >> 16)
    sm = (sm & 0xFFFF) + (sm >> 16)
    h = h[:10] + struct.pack("!H", ~sm & 0xFFFF) + h[12:]
    return h + struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def stream(c, out):
    """Numbered datagrams at --rate until SIGTERM (or PADT); then a second for the last
    echoes. The echoes are counted in handle()."""
    host, port = c.a.to.split(":")
    fast = Fast(c)
    start, i = time.time(), 0
    while not STOP:
        data = struct.pack("!I", i) + bytes([i % 256]) * 28
        fast.send(0x0021, ipv4_udp(c.addr, host, 40000, int(port), data))
        i += 1
        while not STOP:
            left = start + i / c.a.rate - time.time()
            if left <= 0:
                break
            fast.poll(left)
        if "padt" in c.events:
            c.fail("PADT while streaming")
    end = time.time() + 1.0
    while time.time() < end:
        fast.poll(end - time.time())
    back = c.back
    out["sent"] = i
    out["back"] = len(back)
    out["back_distinct"] = len(set(back))
    out["back_in_order"] = back == sorted(back)
    out["missing"] = ranges(set(range(i)) - set(back))
    out["lossless"] = back == list(range(i))


TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000


def tun_relay(c, out):
    """The kernel's IP over the PPP session: a TUN device with the IPCP address."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", c.a.tun.encode(), IFF_TUN | IFF_NO_PI))
    name = c.a.tun
    subprocess.run(["ip", "addr", "add", c.addr + "/32", "dev", name], check=True)
    subprocess.run(["ip", "link", "set", name, "mtu", str(c.a.tun_mtu), "up"], check=True)
    for host in c.a.tun_route or [c.a.to.split(":")[0]]:
        subprocess.run(["ip", "route", "replace", host + "/32", "dev", name, "src", c.addr], check=True)
    c.tun = fd
    fast = Fast(c)
    print(json.dumps({"ready": True, "address": c.addr, "tun": name}), flush=True)
    tun_in = 0
    while not STOP and "padt" not in c.events:
        r, _, _ = select.select([fast.s, fd], [], [], 0.5)
        if fd in r:
            for _ in range(64):
                try:
                    pkt = os.read(fd, 65535)
                except BlockingIOError:
                    break
                fast.send(0x0021, pkt)
                tun_in += 1
        if fast.s in r:
            fast.poll(0)
    out["tun_to_ppp"] = tun_in
    out["ppp_to_tun"] = c.tun_out


def main():
    signal.signal(signal.SIGTERM, on_term)
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("user")
    ap.add_argument("secret")
    ap.add_argument("auth", choices=["pap", "chap"])
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--to", default="192.0.2.10:5001")
    ap.add_argument("--rate", type=float, default=0,
                    help="with --send: datagrams per second, numbered, echoes answered in between")
    ap.add_argument("--stream", action="store_true",
                    help="with --rate: numbered datagrams until SIGTERM, echoes counted")
    ap.add_argument("--tun", default="", help="NAME: relay the kernel's IP over PPP through a TUN device")
    ap.add_argument("--tun-route", action="append", default=[],
                    help="HOST routed through the TUN device (repeatable; default the --to host)")
    ap.add_argument("--tun-mtu", type=int, default=1460)
    ap.add_argument("--until-auth", action="store_true",
                    help="stop driving PPP once the credentials are sent (the LAC hands off)")
    ap.add_argument("--expect-end", type=float, default=0)
    ap.add_argument("--vlan", default="")
    ap.add_argument("--syn", default="", help="HOST:PORT: send one TCP SYN with MSS 1460 there")
    ap.add_argument("--ipv6", action="store_true", help="negotiate IPv6CP, RS, SLAAC from the RA")
    ap.add_argument("--ping6", default="", help="HOST: Echo Requests to it from the SLAAC address")
    ap.add_argument("--ping6-count", type=int, default=5)
    ap.add_argument("--no-ipv4", action="store_true",
                    help="with --ipv6: IPv6-only, IPCP answered with Protocol-Reject")
    ap.add_argument("--dhcpv6", action="store_true",
                    help="after the RA, DHCPv6 over PPP (IA_NA, IA_PD); ping from the delegated prefix")
    a = ap.parse_args()
    c = Client(a)
    c.discovery()
    c.up()
    out = {"ok": True, "session": c.sid, "address": c.addr, "dns": c.dns, "auth": c.auth}
    if a.tun:
        tun_relay(c, out)
    if a.stream:
        stream(c, out)
    if a.ipv6:
        slaac(c, out)
    if a.syn:
        host, port = a.syn.split(":")
        syn = IP(src=c.addr, dst=host, ttl=64) / TCP(sport=40001, dport=int(port), flags="S", seq=1000, options=[("MSS", 1460)])
        c.ppp(0x0021, bytes(syn))
        out["syn_mss"] = 1460
    if a.send:
        host, port = a.to.split(":")
        start = time.time()
        for i in range(a.send):
            data = struct.pack("!I", i) + bytes([i % 256]) * 96 if a.rate else bytes([i % 256]) * 100
            ip = bytes(IP(src=c.addr, dst=host, ttl=64) / UDP(sport=40000, dport=int(port)) / Raw(data))
            c.ppp(0x0021, ip)
            if a.rate:
                for et, p in c.recv(start + (i + 1) / a.rate):
                    c.handle(et, p)
                if "padt" in c.events:
                    c.fail("PADT while streaming")
        out["sent"] = a.send
    if a.expect_end:
        deadline = time.time() + a.expect_end
        for et, p in c.recv(deadline):
            c.handle(et, p)
            if "padt" in c.events:
                break
        if "padt" not in c.events:
            c.fail("no PADT within %s s" % a.expect_end)
    out["events"] = c.events
    out["received"] = c.received
    print(json.dumps(out))


if __name__ == "__main__":
    main()
