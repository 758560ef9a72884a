#!/usr/bin/env python3
"""Prints `tollgate bench --json` output (a file, or stdin) as one line per flow count."""
import json
import sys

d = json.load(open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin)
for r in d["results"]:
    print(f"{r['flows']:>10} flows {r['mpps']:7.2f} Mpps {r['ns_per_packet']:7.1f} ns/pkt "
          f"{r['vs_io_only']:6.2f}x io-only ({r['io_only_mpps']:.1f} Mpps) "
          f"{r['bytes_per_session']:6.1f} B/session {r['bytes_per_flow']:6.1f} B/flow "
          f"drops {r['drops']}")
