"""The analysis' stress step: load the stress suite once, then per cell every seed's outputs on
every shifted set (from its final weights), the cell's rows and the per-run metrics
`stress.<shift>.acc` / `stress.<shift>.loss`; and the suite as the analysis run's dataset inputs.

The analysis calls `with_suite` once (after reading MNIST), `add_cell` once per compared cell and
`log` inside its MLflow run; with the suite off (`stress=none`) each does nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from underspec.measures.stress import IID, cell_stress_rows, run_outputs
from underspec.measures.stress_trends import stress_cell
from underspec.spec.parsing import stress_families
from underspec.tracking.stress_log import log_stress
from underspec.training.data import N_PIXELS, data_root, fold_labels
from underspec.training.shifts import Suite, load_suite

N_SAMPLES = 8  # sample digits per shift in figures/stress_samples.png


@dataclass
class Stress:
    """The loaded suite and its images as the networks read them: {shift: X (n, 784) float32}."""

    suite: Suite
    X: dict[str, torch.Tensor]


def with_suite(images, cfg):
    """images with the suite attached (`images.stress`), when the suite is on and MNIST was read."""
    picked = stress_families(cfg.stress)
    if images is None or picked is None:
        return images
    u8 = (images.test_x * 255).round().to(torch.uint8).reshape(-1, 28, 28).numpy()  # the IDX bytes exactly
    suite = load_suite(data_root(cfg.data_dir), u8, picked)
    X = {name: torch.from_numpy(a.reshape(len(a), N_PIXELS)).to(torch.float32).div(255)
         for name, a in suite.images.items()}  # load_mnist's scaling, so the identity is the iid set
    images.stress = Stress(suite, X)
    return images


def add_cell(images, cell: tuple[float, int], seeds: dict, cfg, out) -> None:
    """One compared cell: its rows into out.rows, each seed's `stress.*` metrics into out.per_run,
    its per-seed accuracies (and, once, the sample digits) into out.loaded.stress."""
    stress = getattr(images, "stress", None)
    if stress is None:
        return
    lam, C = cell
    y = fold_labels(images.test_y, C)
    outputs = {name: [] for name in stress.X}
    for s in sorted(seeds):
        net = {k: seeds[s].traj[k][-1] for k in ("W1", "b1", "W2", "b2")}
        for name, X in stress.X.items():
            o = run_outputs(net, X, y)
            outputs[name].append(o)
            metrics = {f"stress.{name}.acc": o.acc, f"stress.{name}.loss": o.loss}
            out.per_run.setdefault(seeds[s].run_id, {}).update(metrics)
    out.rows += cell_stress_rows(lam, C, outputs, y.numpy(), cfg.bootstrap)
    preds = {name: np.stack([o.pred for o in outs]) for name, outs in outputs.items()}  # {shift: (k, n)}
    out.loaded.stress_cells[cell] = stress_cell(sorted(seeds), preds, y.numpy())
    record = out.loaded.stress
    record.setdefault("accs", {})[cell] = {s: {name: outputs[name][i].acc for name in outputs}
                                           for i, s in enumerate(sorted(seeds))}
    record.setdefault("samples", {name: a[:N_SAMPLES] for name, a in stress.suite.images.items()})
    record.setdefault("iid", IID)


def log(parent, stress: Stress | None, out_dir) -> None:
    """The suite as the analysis run's dataset inputs (context `stress`) and its figures as run
    images; nothing when the suite was off (stress None)."""
    if stress is not None:
        log_stress(parent.client, parent.run_id, stress.suite, out_dir / "figures")

