"""Run a command and report its wall time and the peak memory of its whole process tree.

    python benchmarks/run_measured.py -- mlflow run . -e sweep --env-manager local

Peak memory is the largest sum of resident set sizes over the command and all its descendants,
sampled every 0.5 s from /proc (Linux only); it catches the worker processes that
`/usr/bin/time`'s max-RSS of a single process misses.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time


def tree_rss(root: int) -> int:
    """Sum of VmRSS (bytes) over root and its descendants."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                parents[int(pid)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/status") as fh:
                line = next((ln for ln in fh if ln.startswith("VmRSS:")), "VmRSS: 0 kB")
            rss[int(pid)] = int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    return sum(rss.get(p, 0) for p in tree)


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    t0 = time.time()
    proc = subprocess.Popen(argv)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.5)
    wall = time.time() - t0
    print(f"[run_measured] exit {proc.returncode}, wall {wall:.1f} s, peak tree RSS {peak / 2**30:.2f} GiB",
          file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
