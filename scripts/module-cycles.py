#!/usr/bin/env python3
"""Finds import circles between the top-level modules of a crate (issue 13).

For each `src/` directory given, every .rs file belongs to a top-level module (the first
path segment under src/: `src/ctl/server.rs` is `ctl`); a reference `crate::X...`, a
`use crate::{X, ...}` group, or a `super::X` that climbs to the crate root, from a file of
module A to a top-level module X != A is an edge A -> X. lib.rs/main.rs (the root, which
declares the modules) is not a node, and test-only files (tests.rs, *_tests.rs) are skipped. Any strongly connected component of more than one
module is a circle: the script prints it with one file:line per edge and exits 1.

    scripts/module-cycles.py control-core/src control/src tools/src tollgate/src
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def modules_of(src):
    """Top-level module names: src/X.rs and src/X/mod.rs (and src/X/ directories)."""
    mods = set()
    for name in os.listdir(src):
        p = os.path.join(src, name)
        if name.endswith(".rs") and name not in ("lib.rs", "main.rs"):
            mods.add(name[:-3])
        elif os.path.isdir(p) and name != "bin":
            mods.add(name)
    return mods


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*$", "", line) for line in text.split("\n"))


def group_heads(body):
    """`a, b::c, d::{e, f}` -> [a, b, d] (the first segment of each top-level item)."""
    heads, depth, cur = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            heads.append(cur)
            cur = ""
        else:
            cur += ch
    heads.append(cur)
    out = []
    for h in heads:
        m = re.match(r"\s*(" + IDENT + ")", h)
        if m:
            out.append(m.group(1))
    return out


def edges_of(src):
    mods = modules_of(src)
    edges = {}  # (a, b) -> first "file:line"
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src).split(os.sep)
            if rel[0] in ("lib.rs", "main.rs"):
                continue
            # Test-only files (`tests.rs`, `*_tests.rs`) may check one module's output
            # with another's: they are not part of the build's layering.
            if f == "tests.rs" or f.endswith("_tests.rs"):
                continue
            me = rel[0][:-3] if len(rel) == 1 else rel[0]
            # How many `super::` reach the root from this file.
            depth = len(rel) - 1
            if len(rel) >= 2 and rel[-1] == "mod.rs":
                depth -= 1
            depth += 1  # a file src/X.rs is module X: one `super` reaches the root
            text = strip_comments(open(path, encoding="utf-8").read())
            lines = text.split("\n")
            for no, line in enumerate(lines, 1):
                targets = []
                for m in re.finditer(r"\bcrate::\{", line):
                    # The group may span lines: read to its closing brace.
                    rest = "\n".join([line[m.end():]] + lines[no:no + 40])
                    d, body = 1, ""
                    for ch in rest:
                        if ch == "{":
                            d += 1
                        elif ch == "}":
                            d -= 1
                            if d == 0:
                                break
                        body += ch
                    targets += group_heads(body)
                targets += re.findall(r"\bcrate::(" + IDENT + ")", line)
                sup = r"\b" + r"super::" * depth
                for m in re.finditer(sup + r"\{", line):
                    rest = "\n".join([line[m.end():]] + lines[no:no + 40])
                    targets += group_heads(rest.split("}")[0])
                targets += re.findall(sup + "(" + IDENT + ")", line)
                for t in targets:
                    if t in mods and t != me:
                        edges.setdefault((me, t), f"{path}:{no}")
    return mods, edges


def sccs(nodes, adj):
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(srcs):
    sys.setrecursionlimit(10000)
    bad = 0
    for src in srcs:
        mods, edges = edges_of(src)
        adj = {}
        for a, b in edges:
            adj.setdefault(a, []).append(b)
        for comp in sccs(mods, adj):
            if len(comp) > 1:
                bad += 1
                cs = set(comp)
                print(f"module circle in {src}: {' <-> '.join(sorted(comp))}", file=sys.stderr)
                for (a, b), where in sorted(edges.items()):
                    if a in cs and b in cs:
                        print(f"  {a} -> {b}  ({where})", file=sys.stderr)
        if not any(len(c) > 1 for c in sccs(mods, adj)):
            print(f"module-cycles: {src}: {len(mods)} top-level modules, {len(edges)} edges, no circle")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
