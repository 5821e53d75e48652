"""The instability analysis' pilot at k = 0: the error and loss barriers between runs that share
their init seed and differ only in their minibatch order (the sources study's order-only pairs,
Frankle et al. 2020's children branched at initialisation), along the linear path without
alignment and after weight matching.

Usage: python benchmarks/stability_pilot.py --sweep sources   (MLFLOW_TRACKING_URI: the store)

Per cell (lambda, C): each parent (init seed) gives the mean over its order pairs; the cell's
value is the mean over parents, its 95% interval a bootstrap over parents. Frankle et al.'s
threshold: a network is stable when the error barrier is within 2 percentage points (0.02); here
the verdict is "within" only when the interval's upper bound is at most 0.02.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from underspec import tracking  # noqa: E402
from underspec.measures.barrier import Endpoint, pair_barriers  # noqa: E402
from underspec.measures.cells import net_of  # noqa: E402
from underspec.spec.settings import spec_of_params  # noqa: E402
from underspec.steps.loading import analysis_images, load_run  # noqa: E402
from underspec.training.data import fold_labels  # noqa: E402

THRESHOLD = 0.02  # Frankle et al. 2020: within 2 percentage points
KEYS = ("error_barrier.identity", "error_barrier.weight", "loss_barrier.identity", "loss_barrier.weight")


def families(client, sweep: str) -> dict[tuple[float, int], dict[int, dict[int, object]]]:
    """{(lambda, C): {init seed: {order seed: run}}} over the sweep's unjittered runs."""
    exp = tracking.experiment_id(client, create=False)
    out: dict = defaultdict(lambda: defaultdict(dict))
    for run in tracking.sweep_runs(client, exp, sweep, "FINISHED"):
        sp = spec_of_params(run.data.params)
        if sp.jitter == 0:
            out[(sp.lam, sp.classes)][sp.seed][sp.order_seed] = run
    return out


def parent_means(client, images, cell, parents) -> dict[str, np.ndarray]:
    """{key: (n_parents,)}: each parent's mean over its children's pairs."""
    y = fold_labels(images.test_y, cell[1]).numpy()
    means = {k: [] for k in KEYS}
    for _, children in sorted(parents.items()):
        ends = {}
        for order, run in sorted(children.items()):
            sd = load_run(client, run, images, False)[0]
            ends[order] = Endpoint(net_of(sd), sd.extra["z"]["test"], sd.extra["z"]["train"])
        pairs = [pair_barriers(ends[a], ends[b], y)[0] for a, b in itertools.combinations(sorted(ends), 2)]
        for k in KEYS:
            means[k].append(np.mean([p[k] for p in pairs]))
    return {k: np.array(v) for k, v in means.items()}


def interval(v: np.ndarray, n_boot: int = 2000) -> tuple[float, float, float]:
    """Mean over parents and its 95% bootstrap interval (parents drawn with replacement)."""
    idx = np.random.default_rng(0).integers(0, len(v), size=(n_boot, len(v)))
    boot = v[idx].mean(1)
    return float(v.mean()), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", default="sources", help="a sweep with several order seeds per init seed")
    ap.add_argument("--data_dir", default="", help="MNIST root; empty: $UNDERSPEC_DATA_DIR or ./data")
    args = ap.parse_args()
    client, images = tracking.client(), analysis_images(args.data_dir)
    print("| lambda | C | parents x pairs | error barrier, no alignment | error barrier, weight matching | "
          "loss barrier, no alignment | loss barrier, weight matching | within 0.02? |")
    print("|---|---|---|---|---|---|---|---|")
    for cell, parents in sorted(families(client, args.sweep).items()):
        m = parent_means(client, images, cell, parents)
        cols = [interval(m[k]) for k in KEYS]
        n_pairs = len(next(iter(parents.values()))) * (len(next(iter(parents.values()))) - 1) // 2
        within = "yes" if cols[0][2] <= THRESHOLD else ("no" if cols[0][1] > THRESHOLD else "cannot tell")
        print(f"| {cell[0]!r} | {cell[1]} | {len(parents)} x {n_pairs} | "
              + " | ".join(f"{e:.4f} [{lo:.4f}, {hi:.4f}]" for e, lo, hi in cols) + f" | {within} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
