"""Nulls for the pair metrics: what similarity a pair would show with unit correspondence
removed. Pure numpy. The rotation and noise nulls draw from a generator of each pair's own,
seeded by the pair, so a value never depends on what else is computed.

- shuffle: entries shuffled within each unit (keeps marginals, removes every correspondence);
- rotation: the other network's live units re-mixed by a Haar-random rotation (keeps the span of
  the units, removes which unit is which: "same subspace" without "same units");
- noise: PE's numerical floor, near-dead weights redrawn within their rounding band.
"""
from __future__ import annotations

import itertools

import numpy as np

from underspec.measures.metrics import near_dead, paper_metrics
from underspec.measures.targets import SeedData, target_arrays


def shuffle_null(W1: np.ndarray, W2: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """The null for gradients and live units: entries shuffled within each W1 row (over pixels)
    and each W2 column (over classes). Marginals stay, any correspondence between networks goes."""
    return rng.permuted(W1, axis=1), rng.permuted(W2, axis=0)


ROTATION_METRICS = ("apc1", "apc2", "pe", "pe_authors")
ROTATION_DRAWS = 20


def haar_orthogonal(n: int, rng) -> np.ndarray:
    """(n, n) Haar-random orthogonal matrix: QR of a Gaussian matrix, column signs fixed by R's
    diagonal (without the fix the distribution is not uniform)."""
    Q, R = np.linalg.qr(rng.normal(size=(n, n)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def rotate_units(W1: np.ndarray, W2: np.ndarray, live: np.ndarray, Q: np.ndarray):
    """W1 (H, D), W2 (C, H) with the live units re-mixed by Q (n_live, n_live): W1 -> Q W1 and
    W2 -> W2 Q^T on the live units, near-dead ones untouched. The span of the live units' W1 rows
    is kept; which unit is which is scrambled."""
    W1, W2 = W1.copy(), W2.copy()
    W1[live] = Q @ W1[live]
    W2[:, live] = W2[:, live] @ Q.T
    return W1, W2


def rotation_values(seeds: dict[int, SeedData], key: str, draws: int = ROTATION_DRAWS, epoch: int = -1):
    """{(a, b): {metric: mean over `draws` rotations}}: the rotation null of every pair a < b.
    Each pair draws from its own generator, seeded by the pair: a value never depends on what
    else is computed."""
    out = {}
    for a, b in itertools.combinations(sorted(seeds), 2):
        (A1, A2), (B1, B2) = target_arrays(seeds[a], key, epoch), target_arrays(seeds[b], key, epoch)
        live = ~near_dead(seeds[b].traj["W1"][epoch])
        rng = np.random.default_rng((a, b))
        got = [paper_metrics(A1, A2, *rotate_units(B1, B2, live, haar_orthogonal(int(live.sum()), rng)))
               for _ in range(draws)] if live.any() else []
        out[(a, b)] = {m: float(np.mean([g[m] for g in got])) if got else float("nan") for m in ROTATION_METRICS}
    return out


NOISE_DRAWS = 20
NOISE_BAND = 1.5  # near-dead weights: |w| <= NOISE_BAND * lambda * lr (an L1 step is lambda * lr)


def noise_values(seeds: dict[int, SeedData], lam: float, lr: float, draws: int = NOISE_DRAWS):
    """{(a, b): {"pe_noise": std of PE over `draws`}}: PE's numerical noise floor. Under L1, SGD
    leaves near-dead weights flipping sign around 0 at about lambda * lr, so rounding alone moves
    them; each draw redraws the other network's final W1 entries with |w| <= NOISE_BAND lambda lr
    uniformly within that band. 0 at lambda 0 (an empty band)."""
    band = NOISE_BAND * lam * lr
    out = {}
    for a, b in itertools.combinations(sorted(seeds), 2):
        (A1, A2), (B1, B2) = target_arrays(seeds[a], "params"), target_arrays(seeds[b], "params")
        near = np.abs(B1) <= band
        rng = np.random.default_rng((1, a, b))
        pes = []
        for _ in range(draws):
            R1 = B1.copy()
            R1[near] = rng.uniform(-band, band, size=int(near.sum()))
            pes.append(paper_metrics(A1, A2, R1, B2)["pe"])
        out[(a, b)] = {"pe_noise": float(np.std(pes, ddof=1)) if band > 0 else 0.0}
    return out
