"""The test loss's own resolution, behind the loss-barrier threshold of the README (0.01 nats):
per final network, the standard error of the mean cross-entropy over the 10,000 test images,
sd(per-image loss) / sqrt(n), and of the paired difference between two seeds' networks.

Usage: python benchmarks/loss_resolution.py --sweep paper   (MLFLOW_TRACKING_URI: the store)

Per cell (lambda, C) of the sweep's one-seed, unjittered runs: the mean over seeds of the
standard error, and the mean over pairs of the paired difference's standard error (folded
labels, no L1 term, the analysis' forward pass).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from underspec import tracking  # noqa: E402
from underspec.measures.stress import logits  # noqa: E402
from underspec.spec.settings import spec_of_params  # noqa: E402
from underspec.steps.loading import analysis_images, load_run  # noqa: E402
from underspec.training.data import fold_labels  # noqa: E402


def cells(client, sweep: str) -> dict[tuple[float, int], list]:
    exp = tracking.experiment_id(client, create=False)
    out: dict = defaultdict(list)
    for run in tracking.sweep_runs(client, exp, sweep, "FINISHED"):
        sp = spec_of_params(run.data.params)
        if sp.one_seed and sp.jitter == 0:
            out[(sp.lam, sp.classes)].append(run)
    return out


def per_image_losses(client, images, runs, C: int) -> list[np.ndarray]:
    y = fold_labels(images.test_y, C)
    out = []
    for run in runs:
        sd = load_run(client, run, images, False)[0]
        net = {k: sd.traj[k][-1] for k in ("W1", "b1", "W2", "b2")}
        z = logits(net, images.test_x)
        out.append(torch.nn.functional.cross_entropy(z, y, reduction="none").double().numpy())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", default="paper")
    ap.add_argument("--data_dir", default="", help="MNIST root; empty: $UNDERSPEC_DATA_DIR or ./data")
    args = ap.parse_args()
    client, images = tracking.client(), analysis_images(args.data_dir)
    print("| lambda | C | mean test loss | its standard error | paired difference's standard error |")
    print("|---|---|---|---|---|")
    se_all, pair_all = [], []
    for (lam, C), runs in sorted(cells(client, args.sweep).items()):
        L = per_image_losses(client, images, runs, C)
        n = len(L[0])
        se = [x.std(ddof=1) / np.sqrt(n) for x in L]
        pse = [(a - b).std(ddof=1) / np.sqrt(n) for a, b in itertools.combinations(L, 2)]
        se_all += se
        pair_all += pse
        print(f"| {lam!r} | {C} | {np.mean([x.mean() for x in L]):.3f} | {np.mean(se):.4f} | {np.mean(pse):.4f} |",
              flush=True)
    print(f"\nover the grid: standard error {np.median(se_all):.4f} (median; {min(se_all):.4f} to {max(se_all):.4f}), "
          f"paired {np.median(pair_all):.4f} ({min(pair_all):.4f} to {max(pair_all):.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
