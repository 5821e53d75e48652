"""Run a command and report its wall time and the peak memory of its whole process tree.

    python benchmarks/run_measured.py -- mlflow run . -e sweep --env-manager local

Peak memory is sampled every 2 s from /proc (Linux only) over the command and all its
descendants, so it catches the worker processes that `/usr/bin/time`'s max-RSS of one process
misses. Two sums are reported: RSS (counts memory shared between processes, such as the torch
libraries every worker maps, once per process) and PSS (shares it out: the honest total).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

SAMPLE_S = 2.0


def _field(path: str, name: str) -> int:
    with open(path) as fh:
        line = next((ln for ln in fh if ln.startswith(name + ":")), name + ": 0 kB")
    return int(line.split()[1]) * 1024


def tree_memory(root: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in bytes over root and its descendants. Only the tree's own
    members are read in detail (smaps_rollup is costly), so sampling stays cheap."""
    parents: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                parents[int(pid)] = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    rss = pss = 0
    for pid in tree:
        try:
            rss += _field(f"/proc/{pid}/status", "VmRSS")
            pss += _field(f"/proc/{pid}/smaps_rollup", "Pss")
        except (OSError, IndexError, ValueError):
            continue
    return rss, pss


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    t0 = time.time()
    proc = subprocess.Popen(argv)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss, pss = tree_memory(proc.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        try:
            proc.wait(timeout=SAMPLE_S)  # returns as soon as the command ends
        except subprocess.TimeoutExpired:
            pass
    wall = time.time() - t0
    print(f"[run_measured] exit {proc.returncode}, wall {wall:.1f} s, peak tree PSS {peak_pss / 2**30:.2f} GiB "
          f"(RSS sum {peak_rss / 2**30:.2f} GiB)", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
