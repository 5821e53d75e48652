"""The analysis' stress step: load the stress suite once, then per cell every seed's outputs on
every shifted set (from its final weights), the cell's rows and the per-run metrics
`stress.<shift>.acc` / `stress.<shift>.loss`; and the suite as the analysis run's dataset inputs.

The analysis calls `with_suite` once (after reading MNIST), opens one `Queue` per panel, calls
its `submit` once per compared cell and `drain` at the panel's end, and `log` inside its MLflow
run; with the suite off (`stress=none`) each does nothing. A cell's stress work runs on one
background thread while the analysis loads and compares the next cells (the analysis alone keeps
about 1.3 of 2 cores busy); each cell's result depends only on its seeds, and `drain` puts the
results where a serial run puts them, so the outputs do not depend on the overlap.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from underspec.measures.stress import cell_stress_rows, run_outputs, seeds_logits
from underspec.measures.stress_trends import StressCell, stress_cell
from underspec.spec.parsing import stress_families
from underspec.tracking.stress_log import log_stress
from underspec.training.data import N_PIXELS, data_root, fold_labels
from underspec.training.engine import PARAMS
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


def suite_of(images) -> Stress | None:
    return getattr(images, "stress", None)


@dataclass
class CellStress:
    """One cell's stress results: its rows, {run_id: {metric: value}}, the trends' StressCell and
    {seed: {shift: accuracy}} for the scatter figure."""

    rows: list[dict]
    per_run: dict[str, dict[str, float]]
    cell: StressCell
    accs: dict[int, dict[str, float]]


def cell_stress(stress: Stress, cell: tuple[float, int], nets: dict[int, tuple[str, dict]],
                test_y: torch.Tensor, n_boot: int) -> CellStress:
    """Every seed's outputs on every shifted set and the cell's rows; nets {seed: (run_id, final
    weights {W1, b1, W2, b2})}, test_y (n,) the unfolded test labels."""
    lam, C = cell
    y, seeds = fold_labels(test_y, C), sorted(nets)
    weights = [nets[s][1] for s in seeds]
    outputs = {name: [run_outputs(w, X, y, z) for w, z in zip(weights, seeds_logits(weights, X), strict=True)]
               for name, X in stress.X.items()}
    per_run = {nets[s][0]: {f"stress.{name}.{m}": getattr(outs[i], m) for name, outs in outputs.items()
                            for m in ("acc", "loss")} for i, s in enumerate(seeds)}
    preds = {name: np.stack([o.pred for o in outs]) for name, outs in outputs.items()}  # {shift: (k, n)}
    accs = {s: {name: outs[i].acc for name, outs in outputs.items()} for i, s in enumerate(seeds)}
    rows = cell_stress_rows(lam, C, outputs, y.numpy(), n_boot, preds)
    return CellStress(rows, per_run, stress_cell(seeds, preds, y.numpy()), accs)


@dataclass
class Queue:
    """One panel's cells' stress work on a background thread (`threads=0`: at submit, in the
    caller's thread; the results are the same). `drain` waits for every cell and adds its results
    to the Analysis in cell order, each cell's rows right after the cell's own rows."""

    images: object
    n_boot: int
    threads: int = 1
    pending: list[tuple[tuple[float, int], int, Future]] = field(default_factory=list)

    def __post_init__(self):
        self.pool = ThreadPoolExecutor(self.threads) if self.threads and suite_of(self.images) else None

    def submit(self, cell: tuple[float, int], seeds: dict, out) -> None:
        """Queue one compared cell: seeds {seed: SeedData}; its rows will follow out.rows as now."""
        stress = suite_of(self.images)
        if stress is None:
            return
        for *_, done in self.pending:  # a cell that failed stops the analysis now, not at drain
            if done.done() and done.exception() is not None:
                raise done.exception()
        nets = {s: (sd.run_id, {k: np.array(sd.traj[k][-1]) for k in PARAMS}) for s, sd in seeds.items()}  # copies:
        args = (stress, cell, nets, self.images.test_y, self.n_boot)  # a view would keep the trajectory alive
        fut = self.pool.submit(cell_stress, *args) if self.pool else _done(cell_stress(*args))
        self.pending.append((cell, len(out.rows), fut))

    def drain(self, out) -> None:
        """Wait for every queued cell and add its results to out (an Analysis)."""
        rows, start = [], 0
        for cell, at, fut in self.pending:
            res = fut.result()
            rows += out.rows[start:at] + res.rows
            start = at
            for run_id, metrics in res.per_run.items():
                out.per_run.setdefault(run_id, {}).update(metrics)
            out.loaded.stress_cells[cell] = res.cell
            out.loaded.stress.setdefault("accs", {})[cell] = res.accs
        if self.pending:
            out.rows[:] = rows + out.rows[start:]
            samples = suite_of(self.images).suite.images
            out.loaded.stress["samples"] = {name: a[:N_SAMPLES] for name, a in samples.items()}
        self.pending.clear()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _done(value) -> Future:
    fut = Future()
    fut.set_result(value)
    return fut


def log(parent, stress: Stress | None, out_dir) -> None:
    """The suite as the analysis run's dataset inputs (context `stress`) and its figures as run
    images; nothing when the suite was off (stress None)."""
    if stress is not None:
        log_stress(parent.client, parent.run_id, stress.suite, out_dir / "figures")
