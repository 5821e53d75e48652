"""Aligning hidden units across networks: correlations and the Hungarian matching. Pure numpy
(the correlation's last step also serves torch arrays, see `tolerant_correlation`).

Conventions: a network's units are rows of `A` (n, d) for the reference and `B` (m, d) for the
other network (W1 rows; W2 columns transposed). `match` returns, for each reference unit i, the
unit perm[i] of the other network it is matched to.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

# A row (or column) is constant when its spread is below SPREAD_TOL of its largest |entry|
# (rounding noise around its mean); TINY keeps the threshold positive for an all-zero row.
SPREAD_TOL = 1e-12
TINY = 1e-300


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
    ok_a = na > SPREAD_TOL * np.maximum(np.abs(A).max(1), TINY)
    ok_b = nb > SPREAD_TOL * np.maximum(np.abs(B).max(1), TINY)
    return tolerant_correlation(np, Centred(Ac, na, ok_a), Centred(Bc, nb, ok_b))


@dataclass
class Centred:
    """One side of a correlation: rows (n, d) minus their means, their norms (n,), and (n,) bool
    whether the row's spread is above the tolerance (not constant)."""

    rows: Any
    norm: Any
    ok: Any


def tolerant_correlation(xp, a: Centred, b: Centred):
    """R (n, m) = a.rows @ b.rows.T over the norms, 0 for every constant row, clipped to [-1, 1].
    xp: the arrays' library, numpy or torch; each caller centres and measures with its own
    library's operations (see pearson_rows and barrier.column_correlation)."""
    R = (a.rows @ b.rows.T) / xp.outer(xp.where(a.ok, a.norm, 1.0), xp.where(b.ok, b.norm, 1.0))
    R[~a.ok, :] = 0.0
    R[:, ~b.ok] = 0.0
    return xp.clip(R, -1.0, 1.0)


def match(S: np.ndarray, absolute: bool = True) -> np.ndarray:
    """Match the other network's units (columns of S) to the reference's (rows): perm (n,) with
    perm[i] = the column assigned to row i, maximising the total |S| (Hungarian algorithm), or
    the total S itself with absolute=False (a signed similarity, as the barriers' matchings use).

    For a rectangular S (n != m) only min(n, m) rows are matched; unmatched rows get -1.
    """
    S = np.asarray(S)
    if S.ndim != 2:
        raise ValueError(f"match needs a 2-D similarity matrix, got shape {S.shape}")
    rows, cols = linear_sum_assignment(np.abs(S) if absolute else S, maximize=True)
    perm = np.full(S.shape[0], -1, dtype=np.int64)
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
