"""The `train` step: validate, load MNIST, train the cross product fused, log one run per config.

This module owns the step's I/O (progress bar, MLflow through `tracking`); the math is in
`engine`. Runs are created RUNNING before training and become FINISHED only once every metric
and artifact is written; an error or interruption ends them FAILED or KILLED.
"""
from __future__ import annotations

import shutil
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import torch

from . import interrupts, tracking
from .artifacts import staging_root
from .config import ConfigError, TrainConfig
from .data import MNISTTensors, default_data_dir, load_mnist
from .engine import EngineSettings, RunSpec, resolve_device
from .parallel import iter_train
from .progress import Progress
from .settings import shared_of


def data_root(cfg_dir: str) -> Path:
    return Path(cfg_dir) if cfg_dir else default_data_dir()


def settings_of(cfg) -> EngineSettings:
    """The engine settings of a step config: its shared run settings and device (threads: the
    engine's fixed 1)."""
    return EngineSettings(**asdict(shared_of(cfg)), device=cfg.device)


def progress(runs: int, epochs: int, desc: str = "train", total_points: int = 0, done: int = 0) -> Progress:
    """Model-epochs with ETA, and runs (or a sweep's grid points) done / total: a bar on a
    terminal, a line every 10 runs or 60 s in a log."""
    return Progress(desc, runs * epochs, "model-epoch", total_points or runs, "runs" if not total_points else "points",
                    points_done=done)


def train_specs(parent: tracking.Parent, specs: list[RunSpec], data_dir: Path, data: MNISTTensors,
                s: EngineSettings, workers: int, sweep: str = "", on_done=None,
                extra_tags: dict | None = None, bar: Progress | None = None) -> dict[RunSpec, str]:
    """Create one RUNNING run per spec under `parent`, train them, finish each as its group ends;
    `bar`: the caller's progress (a sweep's), else one of this batch."""
    device = str(resolve_device(s.device))
    run_ids = {sp: tracking.create_train_run(parent, sp, s, device, sweep, extra_tags, data_dir) for sp in specs}
    pending = set(run_ids.values())
    staging = staging_root()

    own = bar is None
    bar = bar or progress(len(specs), s.epochs)

    def tick(n: int) -> None:  # called between epochs: a safe point to stop at
        bar.update(n)
        interrupts.check()

    try:
        with bar if own else nullcontext():
            for results in iter_train(specs, data_dir, data, s, workers, tick, staging):
                for r in results:
                    tracking.finish_train_run(parent.client, run_ids[r.spec], r)
                    pending.discard(run_ids[r.spec])
                    bar.update(points=1)
                    if on_done:
                        on_done(r, run_ids[r.spec])
                    interrupts.check()
    except BaseException as exc:
        killed = interrupts.pending() or isinstance(exc, KeyboardInterrupt)
        tracking.end_runs(parent.client, sorted(pending), tracking.KILLED if killed else tracking.FAILED,
                          "interrupted" if killed else tracking.error_line(exc))
        if killed and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt("interrupted") from exc
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run_ids


def check_probe(cfg, data: MNISTTensors) -> None:
    """probe_size against the test set actually loaded: refused before anything is created."""
    if cfg.probe_size > len(data.test_y):
        raise ConfigError("probe_size", cfg.probe_size, f"the test set has only {len(data.test_y)} images")


def run_train(cfg: TrainConfig) -> dict[RunSpec, str]:
    """Train cfg's cross product; returns the MLflow run id of each configuration."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", cfg.device, "CUDA is not available on this machine")
    root = data_root(cfg.data_dir)
    data = load_mnist(root)  # fails before anything is created when the data is missing
    check_probe(cfg, data)
    specs = cfg.points()
    s = settings_of(cfg)
    note = f"Training batch: {tracking.grid_text(cfg)}. Each run is nested below this one."
    with interrupts.deferred(), tracking.parent_run("batch", cfg.sweep, tracking.train_name(cfg), note=note) as parent:
        run_ids = train_specs(parent, specs, root, data, s, cfg.workers, cfg.sweep)
    print(f"trained {len(run_ids)} runs under parent {parent.run_id} (experiment {parent.experiment_id}). "
          f"{tracking.browse_line(parent.experiment_id, parent.run_id)}", file=sys.stderr)
    return run_ids
