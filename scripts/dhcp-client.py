#!/usr/bin/python3
"""A DHCPv4 subscriber on a VLAN line, written with scapy (the lab's kernel has no 8021q,
so dhclient cannot run on a VLAN interface): DISCOVER, OFFER, REQUEST, ACK (RFC 2131)
with the line's tags (one 802.1Q tag, or an 802.1ad S-tag and an 802.1Q C-tag), then UDP
datagrams and pings to a server from the leased address, ARP for it answered, and a
RELEASE. Every frame from the gateway must carry the line's tags. Prints one JSON line of
what happened; exits non-zero on a failure.

Usage: dhcp-client.py IFACE [--vlan S[.C]] [--circuit-id ID] [--send N --to IP:PORT]
                      [--ping N] [--release-when FILE]

--circuit-id adds option 82 (RFC 3046) with that Agent Circuit ID, as an access node
does, and checks that the gateway's replies carry it back.

With --release-when, the JSON line is printed after the traffic, then the client waits
(60 s at most) for FILE to exist, sends RELEASE and exits.
"""

import argparse
import json
import os
import select
import struct
import sys
import time

from scapy.all import ARP, BOOTP, DHCP, ICMP, IP, UDP, Dot1AD, Dot1Q, Ether, Raw, conf


class Client:
    def __init__(self, a):
        self.a = a
        self.sock = conf.L2socket(iface=a.iface)
        self.mac = open(f"/sys/class/net/{a.iface}/address").read().strip()
        self.vlans = [int(v) for v in a.vlan.split(".")] if a.vlan else []
        self.xid = struct.unpack("!I", os.urandom(4))[0]
        self.gw_mac = "ff:ff:ff:ff:ff:ff"
        self.addr = "0.0.0.0"
        self.given = {}
        self.echo_replies = 0

    def l2(self, dst, etype):
        e = Ether(src=self.mac, dst=dst)
        if len(self.vlans) == 2:
            return e / Dot1AD(vlan=self.vlans[0]) / Dot1Q(vlan=self.vlans[1], type=etype)
        if len(self.vlans) == 1:
            return e / Dot1Q(vlan=self.vlans[0], type=etype)
        e.type = etype
        return e

    def fail(self, why):
        print(json.dumps({"ok": False, "error": why, "given": self.given}))
        sys.exit(1)

    def send_ip(self, dst_mac, pkt):
        self.sock.send(self.l2(dst_mac, 0x0800) / pkt)

    def dhcp(self, kind, src, dst, dst_mac, opts):
        chaddr = bytes.fromhex(self.mac.replace(":", "")) + b"\0" * 10
        ciaddr = self.addr if kind == "release" else "0.0.0.0"
        if self.a.circuit_id:
            cid = self.a.circuit_id.encode()
            opts = opts + [("relay_agent_information", bytes([1, len(cid)]) + cid)]
        m = BOOTP(op=1, xid=self.xid, chaddr=chaddr, ciaddr=ciaddr) / DHCP(
            options=[("message-type", kind)] + opts + ["end"])
        self.send_ip(dst_mac, IP(src=src, dst=dst) / UDP(sport=68, dport=67) / m)

    def recv(self, until):
        """IPv4 packets to us until `until`, checking the line's tags; ARP requests for
        our address are answered."""
        while time.time() < until:
            r, _, _ = select.select([self.sock], [], [], max(0.0, until - time.time()))
            if not r:
                return
            p = self.sock.recv()
            if p is None or Ether not in p:
                continue
            dst = p[Ether].dst.lower()
            if dst not in (self.mac, "ff:ff:ff:ff:ff:ff"):
                continue
            etype = p[Ether].type
            payload = bytes(p[Ether].payload)
            tags = []
            while etype in (0x8100, 0x88A8):
                tci, etype = struct.unpack("!HH", payload[:4])
                tags.append(tci & 0xFFF)
                payload = payload[4:]
            if etype == 0x0806:
                a = ARP(payload)
                if a.op == 1 and a.pdst == self.addr and tags == self.vlans:
                    self.sock.send(self.l2(a.hwsrc, 0x0806) / ARP(
                        op=2, hwsrc=self.mac, psrc=self.addr, hwdst=a.hwsrc, pdst=a.psrc))
                continue
            if etype != 0x0800 or dst != self.mac:
                continue
            if tags != self.vlans:
                self.fail(f"frame on VLANs {tags}, expected {self.vlans}")
            yield p[Ether].src, IP(payload)

    def wait_dhcp(self, kind):
        for src, ip in self.recv(time.time() + 10):
            if UDP in ip and ip[UDP].dport == 68 and BOOTP in ip and ip[BOOTP].xid == self.xid:
                opts = {o[0]: o[1:] for o in ip[DHCP].options if isinstance(o, tuple)}
                if opts.get("message-type", (0,))[0] == kind:
                    if self.a.circuit_id:
                        cid = self.a.circuit_id.encode()
                        ri = opts.get("relay_agent_information", (b"",))[0]
                        if ri != bytes([1, len(cid)]) + cid:
                            self.fail(f"option 82 not echoed: {ri!r}")
                    return src, ip, opts
        self.fail(f"no DHCP message type {kind}")

    def lease(self):
        self.dhcp("discover", "0.0.0.0", "255.255.255.255", "ff:ff:ff:ff:ff:ff", [])
        src, ip, opts = self.wait_dhcp(2)
        self.gw_mac = src
        offered = ip[BOOTP].yiaddr
        server = opts["server_id"][0]
        self.dhcp("request", "0.0.0.0", "255.255.255.255", "ff:ff:ff:ff:ff:ff",
                  [("server_id", server), ("requested_addr", offered)])
        _, ip, opts = self.wait_dhcp(5)
        self.addr = ip[BOOTP].yiaddr
        self.given = {
            "address": self.addr,
            "router": opts["router"][0],
            "mask": opts["subnet_mask"][0],
            "dns": opts["name_server"][0],
            "lease": opts["lease_time"][0],
            "server": server,
        }

    def traffic(self):
        a = self.a
        if a.send:
            host, port = a.to.split(":")
            for _ in range(a.send):
                self.send_ip(self.gw_mac, IP(src=self.addr, dst=host) /
                             UDP(sport=40000, dport=int(port)) / Raw(b"x" * 100))
        for seq in range(a.ping):
            self.send_ip(self.gw_mac, IP(src=self.addr, dst=a.to.split(":")[0]) /
                         ICMP(type=8, id=0x7467, seq=seq) / Raw(b"\0" * 56))
            for _, ip in self.recv(time.time() + 3):
                if ICMP in ip and ip[ICMP].type == 0 and ip[ICMP].seq == seq:
                    self.echo_replies += 1
                    break

    def release(self):
        self.dhcp("release", self.addr, self.given["server"], self.gw_mac,
                  [("server_id", self.given["server"])])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("--vlan", default="")
    ap.add_argument("--circuit-id", default="")
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--to", default="192.0.2.10:5001")
    ap.add_argument("--ping", type=int, default=0)
    ap.add_argument("--release-when", default="")
    a = ap.parse_args()
    c = Client(a)
    c.lease()
    c.traffic()
    print(json.dumps(dict(c.given, ok=True, echo_replies=c.echo_replies)), flush=True)
    if a.release_when:
        until = time.time() + 60
        while not os.path.exists(a.release_when):
            if time.time() > until:
                c.fail("no release trigger")
            # Answers the gateway's ARP meanwhile.
            for _ in c.recv(time.time() + 0.1):
                pass
        c.release()


if __name__ == "__main__":
    main()
