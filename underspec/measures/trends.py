"""The paper's trend claims as tests: one bootstrap over whole seeds, applied to every cell at
once (the cells share their seeds), contrasts fixed before looking, effect sizes with 95%
intervals, and a verdict that says no more than the data allow. Pure numpy.

Input: PE per pair of seeds in each (lambda, C) cell (all pairs). C = 2 never enters (PE is
undefined there); C >= 3 (PE_MIN_CLASSES) is pooled.
"""
from __future__ import annotations

import warnings

import numpy as np

from underspec.measures.metrics import drawn_pairs, pair_matrix, seed_draws

Cell = tuple[float, int]
PE_MIN_CLASSES = 3  # PE is undefined at C = 2 (every W2 |Pearson| is 1): the trends pool C >= 3


def boot_cell_means(pe: dict[Cell, dict], seeds: list[int], n_boot: int, rng_seed: int = 0):
    """{cell: (1 + n_boot,) means over the distinct pairs of each seed resample}, the first entry
    the observed mean. The same resamples serve every cell: the cells share their seeds."""
    idx = observed_and_draws(len(seeds), n_boot, rng_seed)
    out = {}
    for cell, values in pe.items():
        M = drawn_pairs(pair_matrix(values, seeds), idx)  # (1 + n_boot, n, n)
        with np.errstate(invalid="ignore"):
            out[cell] = np.nansum(M, (1, 2)) / np.isfinite(M).sum((1, 2))
    return out


def observed_and_draws(n: int, n_boot: int, rng_seed: int = 0) -> np.ndarray:
    """(1 + n_boot, n): the observed seeds, arange(n), then metrics.seed_draws' resamples."""
    return np.vstack([np.arange(n), seed_draws(n, n_boot, rng_seed)])


def contrasts(means: dict[Cell, np.ndarray]) -> dict[str, tuple[str, np.ndarray, int]]:
    """name -> (the paper's statement, the contrast per resample, its expected sign)."""
    lams = sorted({lam for lam, C in means if C >= PE_MIN_CLASSES})
    cs = sorted({C for _, C in means if C >= PE_MIN_CLASSES})
    by_lam = {lam: np.nanmean([means[(lam, C)] for C in cs if (lam, C) in means], 0) for lam in lams}
    by_c = np.array([np.nanmean([means[(lam, C)] for lam in lams if (lam, C) in means], 0) for C in cs])
    out = {}
    if len(cs) >= 2:
        x = np.array(cs, float) - np.mean(cs)
        out["pe_rises_with_C"] = (f"PE grows with the number of classes (slope of PE per class, C >= {PE_MIN_CLASSES})",
                                  (x[:, None] * (by_c - by_c.mean(0))).sum(0) / (x * x).sum(), +1)
    inner = [lam for lam in lams if 0 < lam < lams[-1]]
    if 0.0 in by_lam and inner:
        mid = np.mean([by_lam[lam] for lam in inner], 0)
        out["pe_rises_with_lambda"] = ("PE rises with lambda (mean over 0 < lambda < max, minus lambda 0)",
                                       mid - by_lam[0.0], +1)
        out["pe_falls_at_large_lambda"] = (f"then falls (lambda {lams[-1]!r} minus the mean over 0 < lambda < max)",
                                           by_lam[lams[-1]] - mid, -1)
    for peak, said in ((0.005, "the peak is at 0.005 (text)"), (0.001, "0.001 gives the highest PE (text, caption)")):
        if peak in by_lam:
            for other in (lam for lam in lams if lam != peak):
                out[f"pe_at_{peak!r}_minus_{other!r}"] = (f"{said}: PE({peak!r}) - PE({other!r})",
                                                           by_lam[peak] - by_lam[other], +1)
    return out


def verdict(lo: float, hi: float, sign: int, est: float, floor: float, n_seeds: int) -> tuple[str, str]:
    """'agree', 'disagree' or 'cannot tell at n seeds', and why."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"cannot tell at {n_seeds} seeds", "no interval"
    if abs(est) < 2 * floor and lo <= 0 <= hi:
        return "tie", f"|effect| below twice PE's noise floor ({2 * floor:.3f}) and the interval holds 0"
    if lo > 0 or hi < 0:
        side = 1 if lo > 0 else -1
        return ("agree" if side == sign else "disagree"), "the 95% interval excludes 0"
    return f"cannot tell at {n_seeds} seeds", "the 95% interval holds 0"


def trend_rows(pe: dict[Cell, dict], seeds: list[int], n_boot: int = 2000, noise: float = 0.0):
    """Rows for trends.csv (one per contrast) and the argmax of the lambda means per resample
    (description only: an argmax picked on the same resample is not tested)."""
    pe = {cell: v for cell, v in pe.items() if cell[1] >= PE_MIN_CLASSES}
    if not pe:
        return [], {}
    with warnings.catch_warnings():  # a resample of one distinct seed has no pair: NaN, said once below
        warnings.simplefilter("ignore", RuntimeWarning)
        return _trend_rows(pe, seeds, n_boot, noise)


def _trend_rows(pe, seeds, n_boot, noise):
    means = boot_cell_means(pe, seeds, n_boot)
    rows = []
    for name, (said, c, sign) in contrasts(means).items():
        lo, hi = np.nanpercentile(c[1:], [2.5, 97.5]) if np.isfinite(c[1:]).any() else (np.nan, np.nan)
        v, why = verdict(float(lo), float(hi), sign, float(c[0]), noise, len(seeds))
        rows.append({"contrast": name, "statement": said, "estimate": float(c[0]), "ci_low": float(lo),
                     "ci_high": float(hi), "verdict": v, "why": why})
    lams = sorted({lam for lam, _ in pe})
    by_lam = np.array([np.nanmean([means[cell] for cell in pe if cell[0] == lam], 0) for lam in lams])
    ok = np.isfinite(by_lam[:, 1:]).all(0)  # resamples with a value for every lambda
    winners = np.array(lams)[np.argmax(by_lam[:, 1:][:, ok], 0)] if ok.any() else np.array([])
    return rows, {lam: float(np.mean(winners == lam)) if len(winners) else float("nan") for lam in lams}


def within_cell_spearman(x: dict[Cell, dict], y: dict[Cell, dict], seeds: list[int], n_boot: int = 1000,
                         rng_seed: int = 0) -> tuple[float, float, float]:
    """Pair-level rank correlation of two pair metrics within cells, pooled: each cell's values
    are ranked and the ranks standardised within the cell (lambda and C, which drive both, drop
    out), then correlated over all cells' pairs. Returns (rho, ci_low, ci_high); the interval
    resamples whole seeds, the same resamples for every cell."""
    from scipy.stats import rankdata

    n = len(seeds)
    draws = list(observed_and_draws(n, n_boot, rng_seed))
    rhos = []
    for idx in draws:
        zx, zy = [], []
        for cell in x.keys() & y.keys():
            pairs = [(seeds[i], seeds[j]) for a, i in enumerate(idx) for j in idx[a + 1:] if i != j]
            key = [(min(p), max(p)) for p in pairs]
            vx = np.array([x[cell].get(k, np.nan) for k in key])
            vy = np.array([y[cell].get(k, np.nan) for k in key])
            ok = np.isfinite(vx) & np.isfinite(vy)
            if ok.sum() < 3:
                continue
            rx, ry = rankdata(vx[ok]), rankdata(vy[ok])
            if rx.std() > 0 and ry.std() > 0:
                zx.append((rx - rx.mean()) / rx.std())
                zy.append((ry - ry.mean()) / ry.std())
        rhos.append(float(np.mean(np.concatenate(zx) * np.concatenate(zy))) if zx else np.nan)
    boots = np.array(rhos[1:])
    lo, hi = np.nanpercentile(boots, [2.5, 97.5]) if np.isfinite(boots).any() else (np.nan, np.nan)
    return rhos[0], float(lo), float(hi)
