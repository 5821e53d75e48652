"""One basin up to permutation? Align network b's hidden units to network a's, interpolate the
weights linearly, and measure the loss barrier on the way (Frankle et al. 2020; Ainsworth et al.
2022; Entezari et al. 2022; REPAIR: Jordan et al. 2022). Pure: numpy, and torch for the paths.

A network is a dict of float64 arrays: W1 (H, D), b1 (H,), W2 (C, H), b2 (C,). A matching is
perm (H,): a's unit i is paired with b's unit perm[i]. The first layer is linear in (W1, b1), so
each run's pre-activations Z = X W1^T + b1 are computed once; along the path only the permuted
pre-activations are interpolated, (1 - alpha) Z_a + alpha Z_b[:, perm], never a 784-wide product.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from underspec.measures.alignment import match, pearson_rows

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
    return _assign(column_correlation(Ha, Hb))


def column_correlation(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """R[i, j] = Pearson(A[:, i], B[:, j]) for A (N, H), B (N, H'); 0 where a column is constant.
    The same numbers as pearson_rows(A.T, B.T), computed with torch: in the analysis's loop it
    shares torch's threads instead of starting the BLAS library's own beside them."""
    A, B = (torch.as_tensor(np.asarray(x), dtype=torch.float64) for x in (A, B))
    Ac, Bc = A - A.mean(0), B - B.mean(0)
    na, nb = Ac.norm(dim=0), Bc.norm(dim=0)
    ok_a = na > 1e-12 * A.abs().amax(0).clamp_min(1e-300)
    ok_b = nb > 1e-12 * B.abs().amax(0).clamp_min(1e-300)
    R = (Ac.T @ Bc) / torch.outer(torch.where(ok_a, na, 1.0), torch.where(ok_b, nb, 1.0))
    R[~ok_a, :] = 0.0
    R[:, ~ok_b] = 0.0
    return R.clamp(-1.0, 1.0).numpy()


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


def path(a: dict, b: dict, Za: np.ndarray, Zb: np.ndarray, y: np.ndarray, alphas=ALPHAS,
         train: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Test loss and error (A,) along (1 - alpha) theta_a + alpha theta_b; b, Zb already permuted.
    train = (Zt_a, Zt_b), the training images' pre-activations: apply REPAIR at each alpha. All
    alphas at once (torch, float32: the weights are float32)."""
    f = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    t = f(alphas)[:, None, None]  # (A, 1, 1)
    Z = (1 - t) * f(Za) + t * f(Zb)  # (A, N, H)
    if train is not None:
        Zta, Ztb = f(train[0]), f(train[1])
        tt = t[:, :, 0]  # (A, 1)
        Z = repair(Z, (1 - t) * Zta + t * Ztb, (1 - tt) * Zta.mean(0) + tt * Ztb.mean(0),
                   (1 - tt) * Zta.std(0, correction=0) + tt * Ztb.std(0, correction=0))
    W2 = (1 - t) * f(a["W2"]) + t * f(b["W2"])  # (A, C, H)
    b2 = (1 - t[:, :, 0]) * f(a["b2"]) + t[:, :, 0] * f(b["b2"])  # (A, C)
    logits = torch.baddbmm(b2[:, None, :], Z.clamp_min(0), W2.transpose(1, 2))  # (A, N, C)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    picked = logits.gather(2, yt[None, :, None].expand(len(alphas), -1, 1))[:, :, 0]
    loss = (torch.logsumexp(logits, 2) - picked).double().mean(1)
    err = (logits.argmax(2) != yt).double().mean(1)
    return loss.numpy(), err.numpy()


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
