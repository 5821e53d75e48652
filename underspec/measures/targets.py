"""What the analysis compares: one seed's loaded run (`SeedData`) and its targets, the weights or
gradients of one epoch as (W1-like (H, D), W2-like (C, H)) arrays. Pure numpy."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TARGETS = ("params", "grads", "grads_last")


@dataclass
class SeedData:
    """What one seed's run contributes: trajectory arrays, probe embeddings, predictions."""

    run_id: str
    traj: dict[str, np.ndarray]  # W1 (E+1, H, D), W2 (E+1, C, H), grad_* likewise
    h: np.ndarray | None = None  # (P, H) final probe embeddings
    pred: np.ndarray | None = None  # (N,) final test-set predictions
    h0: np.ndarray | None = None  # (P, H) probe embeddings at initialisation (the chance level)
    pred0: np.ndarray | None = None  # (N,) predictions at initialisation
    test_acc: float = float("nan")
    extra: dict = field(default_factory=dict)


def target_arrays(sd: SeedData, target: str, epoch: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(W1-like (H, D), W2-like (C, H)), float64, of one target at one epoch: `params` the
    weights, `grads` the gradient summed since initialisation, `grads_last` the gradient summed
    over that epoch alone, grad[e] - grad[e-1] (not a restatement of the initialisation: at
    lambda > 0 the cumulative gradient is about W0 / lr)."""
    if target == "params":
        return sd.traj["W1"][epoch].astype(np.float64), sd.traj["W2"][epoch].astype(np.float64)
    G1, G2 = (sd.traj[k][epoch].astype(np.float64) for k in ("grad_W1", "grad_W2"))
    if target == "grads_last":
        e = epoch % sd.traj["grad_W1"].shape[0]  # -1: the last recorded epoch
        if e == 0:
            raise ValueError("grads_last needs an epoch >= 1: nothing was summed before epoch 0")
        G1, G2 = G1 - sd.traj["grad_W1"][e - 1], G2 - sd.traj["grad_W2"][e - 1]
    return G1, G2
