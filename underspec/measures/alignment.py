"""Aligning hidden units across networks: correlations and the Hungarian matching. Pure numpy.

Conventions: a network's units are rows of `A` (n, d) for the reference and `B` (m, d) for the
other network (W1 rows; W2 columns transposed). `match` returns, for each reference unit i, the
unit perm[i] of the other network it is matched to.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def pearson_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """R[i, j] = Pearson(A[i], B[j]) for A (n, d) and B (m, d) -> (n, m).

    A constant row has no defined correlation; it gets 0 (no evidence of similarity) instead of
    NaN, so dead units never poison a mean or the matching.
    """
    A = np.asarray(A, np.float64)
    B = np.asarray(B, np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
        raise ValueError(f"pearson_rows needs (n, d) and (m, d) arrays, got {A.shape} and {B.shape}")
    if A.shape[1] < 2:
        raise ValueError(f"Pearson correlation needs d >= 2 entries per row, got d = {A.shape[1]}")
    Ac = A - A.mean(1, keepdims=True)
    Bc = B - B.mean(1, keepdims=True)
    na = np.sqrt((Ac * Ac).sum(1))
    nb = np.sqrt((Bc * Bc).sum(1))
    # Relative tolerance: a row whose spread is rounding noise around its mean counts as constant.
    ok_a = na > 1e-12 * np.maximum(np.abs(A).max(1), 1e-300)
    ok_b = nb > 1e-12 * np.maximum(np.abs(B).max(1), 1e-300)
    R = (Ac @ Bc.T) / np.outer(np.where(ok_a, na, 1.0), np.where(ok_b, nb, 1.0))
    R[~ok_a, :] = 0.0
    R[:, ~ok_b] = 0.0
    return np.clip(R, -1.0, 1.0)


def match(R: np.ndarray) -> np.ndarray:
    """Match the other network's units (columns of R) to the reference's (rows): perm (n,) with
    perm[i] = the column assigned to row i, maximising the total |R| (Hungarian algorithm).

    For a rectangular R (n != m) only min(n, m) rows are matched; unmatched rows get -1.
    """
    R = np.asarray(R)
    if R.ndim != 2:
        raise ValueError(f"match needs a 2-D similarity matrix, got shape {R.shape}")
    rows, cols = linear_sum_assignment(np.abs(R), maximize=True)
    perm = np.full(R.shape[0], -1, dtype=np.int64)
    perm[rows] = cols
    return perm


def apc(R: np.ndarray, perm: np.ndarray) -> float:
    """Absolute permutation correlation: mean |R[i, perm[i]]| over the matched rows."""
    i = np.flatnonzero(perm >= 0)
    if len(i) == 0:
        return float("nan")
    return float(np.abs(R[i, perm[i]]).mean())


def permutation_equivalence(perm1: np.ndarray, perm2: np.ndarray) -> float:
    """PE: the fraction of reference units that both layers' matchings send to the same unit.
    perm1, perm2: (n,) from `match`; rows unmatched in perm1 are left out of the denominator."""
    if perm1.shape != perm2.shape:
        raise ValueError(f"permutations differ in shape: {perm1.shape} vs {perm2.shape}")
    i = perm1 >= 0
    if not i.any():
        return float("nan")
    return float((perm1[i] == perm2[i]).mean())
