"""The paper's APC / PE between two networks, and the measures beyond it. Pure numpy.

A network here is (W1 (H, 784), W2 (C, H)) in PyTorch layout: hidden units are W1's rows and
W2's columns. Everything compares a reference network with another one.
"""
from __future__ import annotations

import numpy as np

from underspec.measures.alignment import apc, match, pearson_rows, permutation_equivalence

# A unit is near-dead when its largest |weight| is below this fraction of the largest |weight| in
# its layer: L1 subgradient SGD leaves such weights oscillating around 0 at about lambda * lr,
# far below the live units' scale, so the rule follows the network's own scale.
NEAR_DEAD_FRACTION = 1e-2


def chance_pe(n_units: int) -> float:
    """PE of two independent, uniformly random matchings of n units: 1/n (1/H for H hidden units)."""
    if n_units < 1:
        raise ValueError(f"chance_pe needs at least one unit, got {n_units}")
    return 1.0 / n_units


def paper_metrics(W1a, W2a, W1b, W2b) -> dict[str, float]:
    """APC-1, APC-2 and PE of network b against reference a, exactly as the paper defines them.

    W1 (H, D), W2 (C, H). At C = 2 every W2 column has two entries: their |Pearson| is exactly 1
    (scipy's `pearsonr`, which the authors used, returns +-1 for two entries), so APC-2 is 1.0
    by construction (that value is reported, as in the paper's figure) and the W2 matching is a
    tie. `pe` is then NaN. `pe_authors` is what the authors' code gives: their all-ones |R2|
    makes `linear_sum_assignment` return the identity, so at C = 2 it is the fraction of units
    with p1(i) == i, chance by construction (about 1/H: unit indices are arbitrary across
    seeds); at C > 2 it equals `pe`.
    """
    R1 = pearson_rows(W1a, W1b)
    p1 = match(R1)
    if np.asarray(W2a).shape[0] == 2:
        identity = np.arange(len(p1))
        return {"apc1": apc(R1, p1), "apc2": 1.0, "pe": float("nan"),
                "pe_authors": permutation_equivalence(p1, identity)}
    R2 = pearson_rows(np.asarray(W2a).T, np.asarray(W2b).T)
    p2 = match(R2)
    pe = permutation_equivalence(p1, p2)
    return {"apc1": apc(R1, p1), "apc2": apc(R2, p2), "pe": pe, "pe_authors": pe}


def near_dead(W1: np.ndarray) -> np.ndarray:
    """(H,) bool: units whose largest |weight| is below NEAR_DEAD_FRACTION of the layer's."""
    W1 = np.abs(np.asarray(W1, np.float64))
    top = W1.max()
    if top == 0:
        return np.ones(W1.shape[0], bool)
    return W1.max(1) < NEAR_DEAD_FRACTION * top


def live_metrics(W1a, W2a, W1b, W2b, live_a=None, live_b=None) -> dict[str, float]:
    """APC-1 / APC-2 / PE on live units only.

    live_a, live_b: (H,) bool masks; by default the units that are not near-dead in W1a / W1b
    (give the final weights' masks when W1, W2 are gradients: a unit L1 killed has a large
    cumulative gradient, about W0 / lr). Both matchings are computed among the live units of
    each network (a rectangular Hungarian problem when the counts differ), so min(n_a, n_b)
    units are matched and that is the denominator of every mean. APC-2 at C = 2 is 1.0, as in
    `paper_metrics`; PE is NaN there. `pe_live_chance` is PE's chance for the pair,
    1 / max(n_a, n_b): a matched unit of the smaller set meets the same partner under two
    random matchings with that probability. NaN when either network has no live unit.
    """
    la = ~near_dead(W1a) if live_a is None else np.asarray(live_a, bool)
    lb = ~near_dead(W1b) if live_b is None else np.asarray(live_b, bool)
    out = {"live_units": float(min(la.sum(), lb.sum()))}
    if not la.any() or not lb.any():
        return {**out, **dict.fromkeys(("apc1_live", "apc2_live", "pe_live", "pe_live_chance"), float("nan"))}
    out["pe_live_chance"] = chance_pe(int(max(la.sum(), lb.sum())))
    W1a, W1b = np.asarray(W1a)[la], np.asarray(W1b)[lb]
    W2a, W2b = np.asarray(W2a)[:, la], np.asarray(W2b)[:, lb]
    R1 = pearson_rows(W1a, W1b)
    p1 = match(R1)
    if W2a.shape[0] == 2:
        return {**out, "apc1_live": apc(R1, p1), "apc2_live": 1.0, "pe_live": float("nan")}
    R2 = pearson_rows(W2a.T, W2b.T)
    p2 = match(R2)
    return {**out, "apc1_live": apc(R1, p1), "apc2_live": apc(R2, p2), "pe_live": permutation_equivalence(p1, p2)}


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA between representations X (P, h1) and Y (P, h2) of the same P inputs."""
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"linear_cka needs the same inputs, got {X.shape[0]} and {Y.shape[0]} rows")
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    xy = np.linalg.norm(Y.T @ X) ** 2
    xx, yy = np.linalg.norm(X.T @ X), np.linalg.norm(Y.T @ Y)
    return float(xy / (xx * yy)) if xx > 0 and yy > 0 else float("nan")


def cka_hsic(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA via centred Gram matrices (HSIC form): the same number as linear_cka, O(P^2)."""
    P = X.shape[0]
    Hc = np.eye(P) - 1.0 / P
    K, L = Hc @ (X @ X.T) @ Hc, Hc @ (Y @ Y.T) @ Hc
    return float((K * L).sum() / np.sqrt((K * K).sum() * (L * L).sum()))


def disagreement(pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Fraction of inputs on which two networks' predicted classes differ."""
    return float(np.mean(np.asarray(pred_a) != np.asarray(pred_b)))


def pair_matrix(values: dict[tuple, float], seeds: list) -> np.ndarray:
    """(n, n) symmetric matrix of a pair metric over seeds (n,), V[i, j] the metric between
    seeds[i] and seeds[j]; NaN on the diagonal and where missing."""
    V = np.full((len(seeds), len(seeds)), np.nan)
    for (a, b), v in values.items():
        V[seeds.index(a), seeds.index(b)] = V[seeds.index(b), seeds.index(a)] = v
    return V


def seed_draws(n: int, n_boot: int, rng_seed: int = 0) -> np.ndarray:
    """(n_boot, n) indices of n seeds drawn with replacement, per resample: the seed bootstrap
    (here and in `trends`, which puts the observed seeds, arange(n), in front)."""
    return np.random.default_rng(rng_seed).integers(0, n, size=(n_boot, n))


def drawn_pairs(V: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The pair metric V (n, n) over each resample's pairs: (B, n, n) from draws idx (B, n),
    entry [k, i, j] = V[idx[k, i], idx[k, j]] for i < j and NaN elsewhere (a pair of a seed
    drawn twice with itself is NaN too: V's diagonal)."""
    n = V.shape[0]
    M = V[idx[:, :, None], idx[:, None, :]]  # (B, n, n)
    upper = np.triu(np.ones((n, n), bool), 1)
    return np.where(upper, M, np.nan)


def pair_summary(values: dict[tuple[int, int], float], seeds: list[int], n_boot: int = 1000,
                 rng_seed: int = 0) -> tuple[float, float, float, float, int]:
    """All-pairs mean, std and 95% bootstrap interval of a symmetric pair metric.

    values[(a, b)] for seeds a < b. The bootstrap resamples seeds with replacement and averages
    the metric over the pairs of distinct seeds among them (resamples with no such pair are
    skipped). Returns (mean, std, ci_low, ci_high, n_pairs); NaN where undefined.
    """
    vals = np.array([v for v in values.values() if np.isfinite(v)])
    if len(vals) == 0:
        return (float("nan"),) * 4 + (0,)
    mean = float(vals.mean())
    std = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
    M = drawn_pairs(pair_matrix(values, seeds), seed_draws(len(seeds), n_boot, rng_seed))
    counts = np.isfinite(M).sum((1, 2))
    sums = np.nansum(M, (1, 2))
    boots = sums[counts > 0] / counts[counts > 0]
    lo, hi = np.percentile(boots, [2.5, 97.5]) if len(boots) else (np.nan, np.nan)
    return mean, std, float(lo), float(hi), len(vals)
