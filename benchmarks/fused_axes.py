"""A 4 x 4 (init seed x order seed) grid at one (lambda, C): fused per order seed (4 groups of 4)
against one seed pair at a time (16 single-run passes), side by side, on real MNIST, one thread.

Usage: python benchmarks/fused_axes.py [--epochs 3] [--repeats 3]
Prints a markdown table: seconds per grid, model-epochs per second, and the fused speed-up; also
checks that both ways give bitwise the same trajectories.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from underspec.training.data import default_data_dir, load_mnist  # noqa: E402
from underspec.training.engine import EngineSettings, RunSpec, groups, train_group, train_many  # noqa: E402

GRID = [RunSpec(i, 0.001, 10, order_seed=o) for i in range(4) for o in range(4)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = load_mnist(default_data_dir())
    s = EngineSettings(epochs=args.epochs, probe_size=1000, device="cpu")
    times: dict[str, list[float]] = {"fused per order seed (4 groups)": [], "one seed pair at a time (16 passes)": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fused = {r.spec: r for r in train_many(GRID, data, s)}
        times["fused per order seed (4 groups)"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        alone = {sp: train_group([sp], data, s)[0] for sp in GRID}
        times["one seed pair at a time (16 passes)"].append(time.perf_counter() - t0)
    same = all(np.array_equal(fused[sp].trajectory[k], alone[sp].trajectory[k]) for sp in GRID
               for k in fused[sp].trajectory)
    print(f"Machine: {platform.machine()}, python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; "
          f"{len(GRID)} runs, {len(groups(GRID))} fused groups, {args.epochs} epochs, 1 thread; "
          f"bitwise identical: {same}\n")
    print("| way | median s | min s | max s | model-epochs/s | repeats |")
    print("|---|---|---|---|---|---|")
    med = {}
    for k, ts in times.items():
        med[k] = statistics.median(ts)
        rate = len(GRID) * args.epochs / med[k]
        print(f"| {k} | {med[k]:.2f} | {min(ts):.2f} | {max(ts):.2f} | {rate:.1f} | {len(ts)} |")
    a, b = med.values()
    print(f"\nfused speed-up (medians): {b / a:.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
