"""The `train` step: validate, load MNIST, train the cross product fused, log one run per config.

This module owns the step's I/O (progress bar, MLflow through `tracking`); the math is in
`training.engine`. Runs are created RUNNING before training and become FINISHED only once every
metric and artifact is written; an error or interruption ends them FAILED or KILLED.
"""
from __future__ import annotations

import sys

import torch

from underspec import tracking
from underspec.base import interrupts
from underspec.spec.config import ConfigError, TrainConfig
from underspec.steps.common import TrainBatch, check_probe, settings_of, train_specs
from underspec.training.data import data_root, load_mnist
from underspec.training.engine import RunSpec


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
    head = tracking.ParentSpec("batch", cfg.sweep, tracking.train_name(cfg), note=note)
    with interrupts.deferred(), tracking.parent_run(head) as parent:
        run_ids = train_specs(TrainBatch(parent, root, data, s, cfg.workers, cfg.sweep), specs)
    print(f"trained {len(run_ids)} runs under parent {parent.run_id} (experiment {parent.experiment_id}). "
          f"{tracking.browse_line(parent.experiment_id, parent.run_id)}", file=sys.stderr)
    return run_ids
