#!/usr/bin/python3
"""A PPPoE subscriber written with scapy, independent of Tollgate's PPP engine (the CI
kernel has no PPP driver, so pppd cannot run): discovery (PADI, PADR with the AC-Cookie),
LCP (MRU 1492, a Magic-Number, acknowledging the gateway's request), PAP or CHAP-MD5,
IPCP (address and DNS from the gateway's Naks), then UDP datagrams to a server in PPPoE,
LCP Echo-Requests answered, and optionally a wait for the gateway's LCP Terminate-Request
and PADT. Prints one JSON line of what happened; exits non-zero on a failure.

Behind a LAC that forwards the session to an LNS (l2tpns with a realm rule), the PPP
peer changes after authentication: the PAP request is sent again every 2 s while
unanswered (l2tpns opens the tunnel on the first and the session on a retransmission),
and a Configure-Request after LCP opened is a renegotiation (RFC 1661 Opened + RCR: our
own request goes again, authentication and IPCP start over).

With --rate, the datagrams are a stream at that rate, each starting with its sequence
number (4 bytes, big endian), and the gateway's frames (LCP echoes) are answered in
between: what a receiver needs to count losses through a tunnel move.

Usage: pppoe-client.py IFACE USER SECRET pap|chap [--send N --to IP:PORT [--rate PPS]]
                       [--expect-end SECONDS] [--vlan S[.C]]
"""

import argparse
import hashlib
import json
import os
import select
import struct
import sys
import time

from scapy.all import Ether, Dot1Q, Dot1AD, IP, TCP, UDP, Raw, conf

LCP, PAP, CHAP, IPCP = 0xC021, 0xC023, 0xC223, 0x8021


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
            for et, p in self.recv(min(deadline, time.time() + 0.5)):
                self.handle(et, p)
                if self.ipcp_ours and self.ipcp_theirs:
                    return
            pap_due = self.auth == "pap" and self.ours_acked and self.theirs_acked
            if pap_due and not self.auth_ok and time.time() - self.pap_sent > 2 and self.pap_tries < 10:
                self.events.append("pap again")
                self.pap()
        self.fail(f"PPP not up (auth={self.auth} auth_ok={self.auth_ok} addr={self.addr})")

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
                self.send_ipcp()
            elif code == 4:
                self.fail("authentication failed")
        elif proto == PAP:
            if code == 2 and not self.auth_ok:
                self.auth_ok = True
                self.send_ipcp()
            elif code == 3:
                self.fail("authentication failed")
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

    def pap(self):
        self.pap_sent = time.time()
        self.pap_tries += 1
        u, s = self.a.user.encode(), self.a.secret.encode()
        self.ppp(PAP, cp(1, 1, bytes([len(u)]) + u + bytes([len(s)]) + s))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("user")
    ap.add_argument("secret")
    ap.add_argument("auth", choices=["pap", "chap"])
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--to", default="192.0.2.10:5001")
    ap.add_argument("--rate", type=float, default=0,
                    help="with --send: datagrams per second, numbered, echoes answered in between")
    ap.add_argument("--expect-end", type=float, default=0)
    ap.add_argument("--vlan", default="")
    ap.add_argument("--syn", default="", help="HOST:PORT: send one TCP SYN with MSS 1460 there")
    a = ap.parse_args()
    c = Client(a)
    c.discovery()
    c.up()
    out = {"ok": True, "session": c.sid, "address": c.addr, "dns": c.dns, "auth": c.auth}
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
