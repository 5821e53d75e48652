"""The authors' own loop against itself: the same code, seed and data at 1 thread and at N threads.

Shows why "W1 within 1e-5 after epochs 1..2 at lambda 0.001" cannot be promised for two
implementations that round differently: the matmuls' reductions round differently with the
thread count, a near-zero W1 entry crosses zero one step earlier in one run, and from then on that
entry is off by one L1 step each way (2 lr lambda = 2e-5) until the other run catches up. The
engine and this loop part that way after epoch 2 (one entry of 12,544, 1.99e-5); this loop at 8
threads and at 1 part that way after epoch 4 (measured 2026-11-24, one entry, 1.97e-5).

Usage: python benchmarks/authors_loop_threads.py [--threads 3,4,8] [--epochs 4] [--lam 0.001]
Prints per epoch the largest |W1 difference| and the entries above 1e-5.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_authors_loop import _authors_loop  # noqa: E402  (the authors' loop, as the test runs it)

from underspec.training.data import default_data_dir, load_mnist  # noqa: E402
from underspec.training.engine import RunSpec  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="3,4,8")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lam", type=float, default=0.001)
    args = ap.parse_args()
    mnist = load_mnist(default_data_dir())
    spec = RunSpec(0, args.lam, 10)
    torch.set_num_threads(1)
    ref = _authors_loop(mnist, spec, args.epochs, 0.01)
    for th in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(th)
        run = _authors_loop(mnist, spec, args.epochs, 0.01)
        gaps = [np.abs(run[e] - ref[e]) for e in range(args.epochs)]
        cells = ", ".join(f"epoch {e + 1}: max {g.max():.3g}, {(g > 1e-5).sum()} > 1e-5" for e, g in enumerate(gaps))
        print(f"{th} threads vs 1: {cells}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
