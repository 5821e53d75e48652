"""Model-epochs per second: the fused engine on one seed's 54 (lambda, C) configurations versus
the plain per-model PyTorch loop (nn.Module, torch.optim.SGD, tensors in memory, the same
minibatch order, training only), measured side by side in one process run.

    python benchmarks/engine_vs_plain.py [--epochs 10] [--plain-models 3] [--workers 1,2]

Prints a Markdown table; paste it into BENCHMARKS.md with the machine and date.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from underspec.spec.config import PAPER_CLASSES, PAPER_LAMBDAS  # noqa: E402
from underspec.training.data import default_data_dir, load_mnist  # noqa: E402
from underspec.training.engine import EngineSettings, RunSpec  # noqa: E402
from underspec.training.parallel import iter_train  # noqa: E402
from underspec.training.plain import train_plain  # noqa: E402


def time_plain(data, models: int) -> float:
    """Seconds per model-epoch of the plain loop (torch's default thread count)."""
    specs = [RunSpec(0, lam, c) for lam, c in ((0.001, 10), (0.0, 2), (0.05, 6), (0.01, 4))][:models]
    t0 = time.perf_counter()
    for sp in specs:
        train_plain(sp, data, epochs=1)
    return (time.perf_counter() - t0) / len(specs)


def time_engine(data, root, epochs: int, workers: int) -> tuple[float, float]:
    """Engine seconds per model-epoch: (steady state, wall clock including start-up).

    Steady state is measured between the end of the first epoch and the end of the last, so it
    includes per-epoch evaluation and trajectory recording but not process start-up (forkserver
    start, MNIST load per worker), which the wall-clock figure includes.
    """
    specs = [RunSpec(0, lam, c) for lam in PAPER_LAMBDAS for c in PAPER_CLASSES]
    s = EngineSettings(epochs=epochs, probe_size=1000, device="cpu")
    done, stamps = 0, []

    def tick(n: int) -> None:
        nonlocal done
        if n == 0:  # iter_train's idle heartbeat, not an epoch
            return
        done += n
        stamps.append((time.perf_counter(), done))

    t0 = time.perf_counter()
    for _ in iter_train(specs, root, data, s, workers, tick):
        pass
    wall = time.perf_counter() - t0
    first = next(t for t, d in stamps if d >= len(specs))  # every model has finished epoch 1
    steady = (stamps[-1][0] - first) / (len(specs) * (epochs - 1))
    return steady, wall / (len(specs) * epochs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--plain-models", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    root = default_data_dir()
    data = load_mnist(root)
    rows = []
    for rep in range(args.repeats):
        plain = time_plain(data, args.plain_models)
        rows.append(("plain loop", f"{torch.get_num_threads()} threads", plain, rep))
        for w in (int(x) for x in args.workers.split(",")):
            steady, wall = time_engine(data, root, args.epochs, w)
            par = f"{w} worker(s) x 1 thread"
            rows.append(("engine, 54 configs of seed 0, steady state", par, steady, rep))
            rows.append((f"engine, 54 configs of seed 0, wall incl. start-up ({args.epochs} epochs)",
                         par, wall, rep))
    plain_best = min(r[2] for r in rows if r[0] == "plain loop")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M')}")
    print("| what | parallelism | repeat | s per model-epoch | model-epochs/s | vs best plain |")
    print("|---|---|---|---|---|---|")
    for what, par, sec, rep in rows:
        print(f"| {what} | {par} | {rep + 1} | {sec:.4f} | {1 / sec:.1f} | {plain_best / sec:.1f}x |")


if __name__ == "__main__":
    main()
