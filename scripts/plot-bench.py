#!/usr/bin/env python3
"""Plots `tollgate bench --json` output: Mpps against flow count (log scale), with the
issue's targets, and the cost relative to I/O alone measured in the same run.

usage: plot-bench.py OUT.png AFTER.json [BEFORE.json]
Needs matplotlib (make perf-deps installs python3-matplotlib for /usr/bin/python3)."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    d = json.load(open(path))
    rows = sorted(d["results"], key=lambda r: r["flows"])
    return d, rows


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    runs = [("after", *load(sys.argv[2]))]
    if len(sys.argv) > 3:
        runs.append(("before", *load(sys.argv[3])))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"after": dict(color="tab:blue", marker="o"), "before": dict(color="tab:gray", marker="s", linestyle="--")}
    for name, d, rows in runs:
        x = [r["flows"] for r in rows]
        ax.plot(x, [r["mpps"] for r in rows], label=("full pipeline" if len(runs) == 1 else f"{name}: full pipeline"), **styles[name])
        ax2.plot(x, [r["vs_io_only"] for r in rows], label=("full pipeline" if len(runs) == 1 else name), **styles[name])
        for r in rows:
            ax.annotate(f"{r['mpps']:.1f}", (r["flows"], r["mpps"]), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8)
    ax.scatter([1e5, 1e7], [15, 8], marker="*", s=120, color="tab:red", zorder=3,
               label="targets (15 Mpps @100k, 8 Mpps @10M)")
    d = runs[0][1]
    m = d.get("machine", {})
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("flows (one worker, every packet to a different flow)")
        a.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("Mpps (64 B, both directions)")
    ax.set_ylim(bottom=0)
    ax.set_title("tollgate bench: Mpps vs flows")
    ax.legend(fontsize=8, loc="lower left")
    ax2.set_ylabel("ns/packet relative to I/O only (same run)")
    ax2.set_ylim(bottom=0)
    ax2.set_title("cost vs I/O-only reference (lower is better)")
    ax2.legend(fontsize=8)
    fig.suptitle(f"{m.get('cpu', '?')}, {m.get('cpus', '?')} vCPUs shared, {m.get('memory_gib', '?')} GiB; "
                 f"burst {d.get('burst')}, median of {d.get('runs')} x {d.get('seconds_per_run')} s", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
