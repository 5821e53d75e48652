"""The slow, obvious implementations the fast measures are checked against: explicit loops,
scipy's pearsonr and linear_sum_assignment, full matrices (W1: (H, D), W2: (C, H), float64)."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import pearsonr


def slow_paper_metrics(W1a, W2a, W1b, W2b):
    """The obvious implementation, as the authors' code does it: explicit scipy pearsonr loops, then
    linear_sum_assignment. At C = 2 pearsonr gives exactly +-1 for two entries, so its "pe" is
    what the authors report there (our `pe_authors`)."""
    H = W1a.shape[0]
    R1 = np.array([[pearsonr(W1a[i], W1b[j])[0] for j in range(H)] for i in range(H)])
    R2 = np.array([[pearsonr(W2a[:, i], W2b[:, j])[0] for j in range(H)] for i in range(H)])
    r1, c1 = linear_sum_assignment(np.abs(R1), maximize=True)
    r2, c2 = linear_sum_assignment(np.abs(R2), maximize=True)
    return {"apc1": np.abs(R1[r1, c1]).mean(), "apc2": np.abs(R2[r2, c2]).mean(), "pe": np.mean(c1 == c2)}


def slow_rotation_null(W1a, W2a, W1b, W2b, live_b, seed_pair, draws=20):
    """The rotation null the slow way: per draw, a Gaussian matrix from the pair's generator, its
    QR with signs fixed, the full (H, H) block matrix (identity on near-dead units), explicit
    products, and the authors' metrics; the mean over draws."""
    rng, H = np.random.default_rng(seed_pair), W1b.shape[0]
    idx = np.flatnonzero(live_b)
    got = []
    for _ in range(draws):
        Q, R = np.linalg.qr(rng.normal(size=(len(idx), len(idx))))
        Q = Q @ np.diag([-1.0 if r < 0 else 1.0 for r in np.diag(R)])
        P = np.eye(H)
        for i, u in enumerate(idx):
            for j, v in enumerate(idx):
                P[u, v] = Q[i, j]
        got.append(slow_paper_metrics(W1a, W2a, P @ W1b, W2b @ P.T))
    return {k: float(np.mean([g[k] for g in got])) for k in ("apc1", "apc2", "pe")}


def slow_pe_noise(W1a, W2a, W1b, W2b, lam_lr, seed_pair, draws=20):
    """PE's noise floor the slow way: entry by entry, every final W1 weight of b with
    |w| <= 1.5 lambda lr redrawn uniformly within that band, PE recomputed; the std over draws."""
    band, rng = 1.5 * lam_lr, np.random.default_rng(seed_pair)
    if band == 0:
        return 0.0
    pes = []
    for _ in range(draws):
        W = W1b.copy()
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                if abs(W1b[i, j]) <= band:
                    W[i, j] = rng.uniform(-band, band)
        pes.append(slow_paper_metrics(W1a, W2a, W, W2b)["pe"])
    return float(np.std(pes, ddof=1))
