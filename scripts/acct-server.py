#!/usr/bin/python3
"""A RADIUS accounting server for the labs (RFC 2866), small enough to read: checks each
Accounting-Request's authenticator with the shared secret, answers Accounting-Response,
and appends one JSON line per record to a file: status, user, Framed-IP-Address,
Calling-Station-Id, terminate cause, NAS-Port-Id, Framed-Protocol, packets and octets in
(from the subscriber) and out.

Usage: acct-server.py LISTEN_IP:PORT SECRET OUT_FILE
"""

import hashlib
import ipaddress
import json
import socket
import struct
import sys

STATUS = {1: "start", 2: "stop", 3: "interim"}


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    secret = sys.argv[2].encode()
    out = sys.argv[3]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    while True:
        pkt, peer = s.recvfrom(4096)
        if len(pkt) < 20:
            continue
        code, ident, length = struct.unpack("!BBH", pkt[:4])
        if code != 4 or length > len(pkt):
            continue
        pkt = pkt[:length]
        want = hashlib.md5(pkt[:4] + b"\0" * 16 + pkt[20:] + secret).digest()
        if pkt[4:20] != want:
            continue
        attrs, i = {}, 20
        while i + 2 <= length:
            t, n = pkt[i], pkt[i + 1]
            if n < 2:
                break
            attrs.setdefault(t, pkt[i + 2:i + n])
            i += n
        u32 = lambda t: struct.unpack("!I", attrs[t])[0] if t in attrs else None
        rec = {
            "status": STATUS.get(u32(40), u32(40)),
            "user": attrs.get(1, b"").decode(errors="replace"),
            "framed_ip": str(ipaddress.IPv4Address(attrs[8])) if 8 in attrs else None,
            "calling_station_id": attrs.get(31, b"").decode(errors="replace"),
            "session_id": attrs.get(44, b"").decode(errors="replace"),
            "terminate_cause": u32(49),
            "nas_port_id": attrs.get(87, b"").decode(errors="replace"),
            "framed_protocol": u32(7),
            "packets_in": u32(47),
            "octets_in": u32(42),
            "packets_out": u32(48),
            "octets_out": u32(43),
        }
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        head = struct.pack("!BBH", 5, ident, 20)
        auth = hashlib.md5(head + pkt[4:20] + secret).digest()
        s.sendto(head + auth, peer)


if __name__ == "__main__":
    main()
