#!/usr/bin/env bash
# Keeps the crate layout of docs/architecture.md true (issue 13), three checks:
#
# 1. The crates depend one way: tollgate -> tollgate-tools -> tollgate-control ->
#    tollgate-control-core -> tollgate-dataplane -> dpdk-sys (a crate may skip a level,
#    never go up), and tollgate-testkit is a normal dependency of tools only (control
#    has it as a dev-dependency). Read from `cargo metadata`.
# 2. The sans-I/O core's dependency tree (`cargo tree -p tollgate-control-core -e normal`)
#    has none of the I/O and process crates: rusqlite, refinery, libc, getrandom, clap, anyhow,
#    crossbeam.
# 3. No import circle between the top-level modules of a crate (scripts/module-cycles.py):
#    enforced for every crate.
#
#   scripts/check-layering.sh        (make lint runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

$CARGO metadata --format-version 1 --no-deps --offline 2>/dev/null >/tmp/tollgate-layering.$$.json ||
  $CARGO metadata --format-version 1 --no-deps >/tmp/tollgate-layering.$$.json
trap 'rm -f /tmp/tollgate-layering.$$.json' EXIT
python3 - /tmp/tollgate-layering.$$.json <<'PY'
import json, sys
order = ["tollgate", "tollgate-tools", "tollgate-control", "tollgate-control-core",
         "tollgate-dataplane", "dpdk-sys", "xdp-sys"]
rank = {n: i for i, n in enumerate(order)}
meta = json.load(open(sys.argv[1]))
members = {p["name"]: p for p in meta["packages"]}
bad = 0
for name in order:
    p = members.get(name)
    if p is None:
        print(f"check-layering: crate {name} is missing", file=sys.stderr)
        bad += 1
        continue
    for d in p["dependencies"]:
        if d["kind"] not in (None, "build"):
            continue
        dn = d["name"]
        if dn in rank and rank[dn] <= rank[name]:
            print(f"check-layering: {name} depends on {dn}: the graph goes one way "
                  f"({' -> '.join(order)})", file=sys.stderr)
            bad += 1
        if dn == "tollgate-testkit" and name != "tollgate-tools":
            print(f"check-layering: {name} depends on tollgate-testkit outside its tests "
                  "(only tollgate-tools may)", file=sys.stderr)
            bad += 1
if bad:
    sys.exit(1)
print("check-layering: one-way graph " + " -> ".join(order))
PY

banned='rusqlite|libsqlite3-sys|refinery|refinery-core|libc|getrandom|clap|anyhow|crossbeam|crossbeam-channel'
tree=$($CARGO tree -p tollgate-control-core -e normal --prefix none)
if found=$(grep -E "^($banned) v" <<<"$tree"); then
  echo "check-layering: tollgate-control-core's dependency tree has I/O crates:" >&2
  sort -u <<<"$found" >&2
  echo "  (cargo tree -p tollgate-control-core -e normal -i CRATE says why)" >&2
  exit 1
fi
echo "check-layering: tollgate-control-core's tree has none of: ${banned//|/, }"

python3 scripts/module-cycles.py dataplane/src control-core/src control/src tools/src \
  tollgate/src ffi/src

# The circle finder must fail on a circle (through a `use crate::{...}` group and a
# `super::` path): a probe crate of two modules that import each other.
probe=$(mktemp -d /tmp/tollgate-cycles.XXXXXX)
trap 'rm -f /tmp/tollgate-layering.$$.json; rm -rf "$probe"' EXIT
mkdir -p "$probe/src/b"
printf 'mod a;\nmod b;\n' >"$probe/src/lib.rs"
printf 'use crate::{\n    b::Thing,\n};\npub struct A;\n' >"$probe/src/a.rs"
printf 'pub struct Thing(super::super::a::A);\n' >"$probe/src/b/inner.rs"
printf 'pub mod inner;\npub use inner::Thing;\n' >"$probe/src/b/mod.rs"
if python3 scripts/module-cycles.py "$probe/src" 2>/dev/null; then
  echo "check-layering: module-cycles.py missed the a <-> b circle of its probe" >&2
  exit 1
fi
echo "check-layering: module-cycles.py finds the probe's a <-> b circle"
