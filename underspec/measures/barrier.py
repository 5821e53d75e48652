"""One basin up to permutation? Align network b's hidden units to network a's, interpolate the
weights linearly, and measure the loss barrier on the way (Frankle et al. 2020; Ainsworth et al.
2022; Entezari et al. 2022; REPAIR: Jordan et al. 2022). Pure: numpy, and torch for the paths
and the activations' correlation.

A network is a dict of float64 arrays: W1 (H, D), b1 (H,), W2 (C, H), b2 (C,). A matching is
perm (H,): a's unit i is paired with b's unit perm[i]. The first layer is linear in (W1, b1), so
each run's pre-activations Z = X W1^T + b1 are computed once; along the path only the permuted
pre-activations are interpolated, (1 - alpha) Z_a + alpha Z_b[:, perm], never a 784-wide product.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from underspec.measures.alignment import SPREAD_TOL, TINY, Centred, match, pearson_rows, tolerant_correlation

ALPHAS = np.linspace(0.0, 1.0, 11)
METHODS = ("identity", "paper", "weight", "activation", "weight+repair")
N_MATCH = 5000  # training images for activation matching and REPAIR's statistics


def preactivations(net: dict, X: np.ndarray) -> np.ndarray:
    """X (N, D) -> Z (N, H) = X W1^T + b1."""
    return X @ net["W1"].T + net["b1"]


def weight_matching(a: dict, b: dict) -> np.ndarray:
    """The permutation maximising <W1a, P W1b> + <b1a, P b1b> + <W2a, W2b P^T>: with one hidden
    layer, one exact linear assignment on S[i, j] = W1a[i].W1b[j] + b1a[i] b1b[j] + W2a[:, i].W2b[:, j]."""
    S = a["W1"] @ b["W1"].T + np.outer(a["b1"], b["b1"]) + a["W2"].T @ b["W2"]
    return match(S, absolute=False)


def paper_matching(a: dict, b: dict) -> np.ndarray:
    """The paper's: Hungarian on |Pearson| of W1 rows (what APC-1 uses)."""
    return match(pearson_rows(a["W1"], b["W1"]))


def activation_matching(Ha: np.ndarray, Hb: np.ndarray) -> np.ndarray:
    """Hungarian on the signed Pearson correlation of post-ReLU activations Ha, Hb (N, H);
    a unit that is never active (a constant column) correlates 0."""
    return match(column_correlation(Ha, Hb), absolute=False)


def column_correlation(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """R[i, j] = Pearson(A[:, i], B[:, j]) for A (N, H), B (N, H'); 0 where a column is constant.
    The numbers of pearson_rows(A.T, B.T) to rounding, computed with torch: in the analysis's
    loop it shares torch's threads instead of starting numpy's BLAS pool beside them (which made
    each pair about 3x slower)."""
    A, B = (torch.as_tensor(np.asarray(x), dtype=torch.float64) for x in (A, B))
    Ac, Bc = A - A.mean(0), B - B.mean(0)
    na, nb = Ac.norm(dim=0), Bc.norm(dim=0)
    ok_a = na > SPREAD_TOL * A.abs().amax(0).clamp_min(TINY)
    ok_b = nb > SPREAD_TOL * B.abs().amax(0).clamp_min(TINY)
    return tolerant_correlation(torch, Centred(Ac.T, na, ok_a), Centred(Bc.T, nb, ok_b)).numpy()


def permute(net: dict, perm: np.ndarray) -> dict:
    """b with its units reordered so that unit i is b's unit perm[i]: the same function."""
    return {"W1": net["W1"][perm], "b1": net["b1"][perm], "W2": net["W2"][:, perm], "b2": net["b2"]}


def repair(Z: torch.Tensor, Zt: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor) -> torch.Tensor:
    """REPAIR: reset each unit's pre-activation mean and std, measured on the training images' Zt
    (..., N', H), to the targets (..., H); Z (..., N, H) is transformed the same way. A unit with
    no spread is kept as it is."""
    mean, std = Zt.mean(-2, keepdim=True), Zt.std(-2, keepdim=True, correction=0)
    spread = std > 0
    scale = torch.where(spread, target_std.unsqueeze(-2) / torch.where(spread, std, 1.0), 1.0)
    return (Z - mean) * scale + torch.where(spread, target_mean.unsqueeze(-2), mean)


@dataclass
class Endpoint:
    """One end of a path: a network, its pre-activations on the test images `test` (N, H) and
    on the N_MATCH training images `train` (N', H), or None where REPAIR is not applied."""

    net: dict
    test: np.ndarray
    train: np.ndarray | None = None


def path(a: Endpoint, b: Endpoint, y: np.ndarray, alphas=ALPHAS) -> tuple[np.ndarray, np.ndarray]:
    """Test loss and error (A,) along (1 - alpha) theta_a + alpha theta_b; b already permuted.
    With both ends' `train`: REPAIR at each alpha. All alphas at once (torch, float32: the
    weights are float32)."""
    f = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    t = f(alphas)[:, None, None]  # (A, 1, 1)
    Z = (1 - t) * f(a.test) + t * f(b.test)  # (A, N, H)
    if a.train is not None and b.train is not None:
        Zta, Ztb = f(a.train), f(b.train)
        tt = t[:, :, 0]  # (A, 1)
        Z = repair(Z, (1 - t) * Zta + t * Ztb, (1 - tt) * Zta.mean(0) + tt * Ztb.mean(0),
                   (1 - tt) * Zta.std(0, correction=0) + tt * Ztb.std(0, correction=0))
    W2 = (1 - t) * f(a.net["W2"]) + t * f(b.net["W2"])  # (A, C, H)
    b2 = (1 - t[:, :, 0]) * f(a.net["b2"]) + t[:, :, 0] * f(b.net["b2"])  # (A, C)
    logits = torch.baddbmm(b2[:, None, :], Z.clamp_min(0), W2.transpose(1, 2))  # (A, N, C)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    picked = logits.gather(2, yt[None, :, None].expand(len(alphas), -1, 1))[:, :, 0]
    loss = (torch.logsumexp(logits, 2) - picked).double().mean(1)
    err = (logits.argmax(2) != yt).double().mean(1)
    return loss.numpy(), err.numpy()


def barrier(curve: np.ndarray, alphas=ALPHAS) -> float:
    """max over alpha of curve(alpha) - ((1 - alpha) curve(0) + alpha curve(1))."""
    return float(np.max(curve - ((1 - alphas) * curve[0] + alphas * curve[-1])))


def matchings(a: Endpoint, b: Endpoint, methods) -> dict[str, np.ndarray]:
    """The permutation of b's units each method puts onto a's (weight+repair: weight matching's)."""
    make = {"identity": lambda: np.arange(len(a.net["b1"])), "paper": lambda: paper_matching(a.net, b.net),
            "weight": lambda: weight_matching(a.net, b.net),
            "activation": lambda: activation_matching(np.maximum(a.train, 0), np.maximum(b.train, 0))}
    perms = {m: make[m]() for m in make if m in methods or (m == "weight" and "weight+repair" in methods)}
    if "weight+repair" in methods:
        perms["weight+repair"] = perms["weight"]
    return perms


def pair_barriers(a: Endpoint, b: Endpoint, y: np.ndarray, alphas=ALPHAS, methods=METHODS) -> tuple[dict, dict]:
    """Barriers of the given methods (all by default) for one pair, and the curves {method: (loss,
    err)}. a, b: each run's network and pre-activations on the test images and the N_MATCH
    training images (needed by `activation` and `weight+repair` only). With both `weight` and
    `paper`: how often the two matchings agree."""
    perms = matchings(a, b, methods)
    out, curves = {}, {}
    for m in methods:
        p = perms[m]
        repaired = m == "weight+repair"
        moved = Endpoint(permute(b.net, p), b.test[:, p], b.train[:, p] if repaired else None)
        curves[m] = path(Endpoint(a.net, a.test, a.train if repaired else None), moved, y, alphas)
        out[f"loss_barrier.{m}"] = barrier(curves[m][0], alphas)
        out[f"error_barrier.{m}"] = barrier(curves[m][1], alphas)
    if "weight" in perms and "paper" in perms:
        out["matching_agreement"] = float(np.mean(perms["weight"] == perms["paper"]))
    return out, curves
