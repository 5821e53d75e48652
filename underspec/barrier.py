"""One basin up to permutation? Align network b's hidden units to network a's, interpolate the
weights linearly, and measure the loss barrier on the way (Frankle et al. 2020; Ainsworth et al.
2022; Entezari et al. 2022; REPAIR: Jordan et al. 2022). Pure numpy.

A network is a dict of float64 arrays: W1 (H, D), b1 (H,), W2 (C, H), b2 (C,). A matching is
perm (H,): a's unit i is paired with b's unit perm[i]. The first layer is linear in (W1, b1), so
each run's pre-activations Z = X W1^T + b1 are computed once; along the path only the permuted
pre-activations are interpolated, (1 - alpha) Z_a + alpha Z_b[:, perm], never a 784-wide product.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .alignment import match, pearson_rows

ALPHAS = np.linspace(0.0, 1.0, 11)
METHODS = ("identity", "paper", "weight", "activation", "weight+repair")
N_MATCH = 5000  # training images for activation matching and REPAIR's statistics


def preactivations(net: dict, X: np.ndarray) -> np.ndarray:
    """X (N, D) -> Z (N, H) = X W1^T + b1."""
    return X @ net["W1"].T + net["b1"]


def _assign(S: np.ndarray) -> np.ndarray:
    rows, cols = linear_sum_assignment(S, maximize=True)
    perm = np.empty(S.shape[0], np.int64)
    perm[rows] = cols
    return perm


def weight_matching(a: dict, b: dict) -> np.ndarray:
    """The permutation maximising <W1a, P W1b> + <b1a, P b1b> + <W2a, W2b P^T>: with one hidden
    layer, one exact linear assignment on S[i, j] = W1a[i].W1b[j] + b1a[i] b1b[j] + W2a[:, i].W2b[:, j]."""
    S = a["W1"] @ b["W1"].T + np.outer(a["b1"], b["b1"]) + a["W2"].T @ b["W2"]
    return _assign(S)


def paper_matching(a: dict, b: dict) -> np.ndarray:
    """The paper's: Hungarian on |Pearson| of W1 rows (what APC-1 uses)."""
    return match(pearson_rows(a["W1"], b["W1"]))


def activation_matching(Ha: np.ndarray, Hb: np.ndarray) -> np.ndarray:
    """Hungarian on the signed Pearson correlation of post-ReLU activations Ha, Hb (N, H);
    a unit that is never active (a constant column) correlates 0."""
    return _assign(pearson_rows(Ha.T, Hb.T))


def permute(net: dict, perm: np.ndarray) -> dict:
    """b with its units reordered so that unit i is b's unit perm[i]: the same function."""
    return {"W1": net["W1"][perm], "b1": net["b1"][perm], "W2": net["W2"][:, perm], "b2": net["b2"]}


def repair(Z: np.ndarray, Zt: np.ndarray, target_mean: np.ndarray, target_std: np.ndarray) -> np.ndarray:
    """REPAIR: reset each unit's pre-activation mean and std, measured on the training images' Zt
    (N', H), to the targets; Z (N, H) is transformed the same way. A unit with no spread is kept."""
    mean, std = Zt.mean(0), Zt.std(0)
    scale = np.where(std > 0, target_std / np.where(std > 0, std, 1.0), 1.0)
    return (Z - mean) * scale + np.where(std > 0, target_mean, mean)


def _ce_err(Z: np.ndarray, W2: np.ndarray, b2: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    logits = np.maximum(Z, 0.0) @ W2.T + b2  # (N, C)
    mx = logits.max(1, keepdims=True)
    lse = np.log(np.exp(logits - mx).sum(1)) + mx[:, 0]
    loss = float((lse - logits[np.arange(len(y)), y]).mean())
    return loss, float((logits.argmax(1) != y).mean())


def path(a: dict, b: dict, Za: np.ndarray, Zb: np.ndarray, y: np.ndarray, alphas=ALPHAS,
         train: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Test loss and error (A,) along (1 - alpha) theta_a + alpha theta_b; b, Zb already permuted.
    train = (Zt_a, Zt_b), the training images' pre-activations: apply REPAIR at each alpha."""
    loss, err = np.empty(len(alphas)), np.empty(len(alphas))
    for k, t in enumerate(alphas):
        Z = (1 - t) * Za + t * Zb
        if train is not None:
            Zta, Ztb = train
            Z = repair(Z, (1 - t) * Zta + t * Ztb, (1 - t) * Zta.mean(0) + t * Ztb.mean(0),
                       (1 - t) * Zta.std(0) + t * Ztb.std(0))
        loss[k], err[k] = _ce_err(Z, (1 - t) * a["W2"] + t * b["W2"], (1 - t) * a["b2"] + t * b["b2"], y)
    return loss, err


def barrier(curve: np.ndarray, alphas=ALPHAS) -> float:
    """max over alpha of curve(alpha) - ((1 - alpha) curve(0) + alpha curve(1))."""
    return float(np.max(curve - ((1 - alphas) * curve[0] + alphas * curve[-1])))


def pair_barriers(a: dict, b: dict, za: dict, zb: dict, y: np.ndarray, alphas=ALPHAS) -> tuple[dict, dict]:
    """Barriers of every method for one pair, and the curves. za, zb: each run's pre-activations,
    {"test": (N, H), "train": (N', H)} on the test images and the N_MATCH training images."""
    perms = {"identity": np.arange(len(a["b1"])), "paper": paper_matching(a, b),
             "weight": weight_matching(a, b),
             "activation": activation_matching(np.maximum(za["train"], 0), np.maximum(zb["train"], 0))}
    perms["weight+repair"] = perms["weight"]
    out, curves = {}, {}
    for m in METHODS:
        p = perms[m]
        train = (za["train"], zb["train"][:, p]) if m == "weight+repair" else None
        curves[m] = path(a, permute(b, p), za["test"], zb["test"][:, p], y, alphas, train)
        out[f"loss_barrier.{m}"] = barrier(curves[m][0], alphas)
        out[f"error_barrier.{m}"] = barrier(curves[m][1], alphas)
    out["matching_agreement"] = float(np.mean(perms["weight"] == perms["paper"]))
    return out, curves
