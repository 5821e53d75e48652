"""The paper's trend claims as tests: one bootstrap over whole seeds, applied to every cell at
once (the cells share their seeds), contrasts fixed before looking, effect sizes with 95%
intervals, and a verdict that says no more than the data allow. Pure numpy.

A contrast is a weighted sum of cell means, sum_c w_c m_c (`Contrast`); its tie margin is twice
the noise floor of the cells it pools, sqrt(sum_c w_c^2 sigma_c^2), sigma_c the cell's own floor.
Input for PE: PE per pair of seeds in each (lambda, C) cell (all pairs). C = 2 never enters (PE is
undefined there); C >= 3 (PE_MIN_CLASSES) is pooled.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from underspec.measures.metrics import drawn_pairs, pair_matrix, seed_draws

Cell = tuple[float, int]
PE_MIN_CLASSES = 3  # PE is undefined at C = 2 (every W2 |Pearson| is 1): the trends pool C >= 3


@dataclass(frozen=True)
class Contrast:
    """sum_c weights[c] * mean_c, said as `statement`, expected to have the sign `sign`."""

    statement: str
    weights: dict[Cell, float]
    sign: int

    def of(self, means: dict[Cell, np.ndarray]) -> np.ndarray:
        """The contrast per resample, (1 + n_boot,) from the cells' (1 + n_boot,) means."""
        return sum(w * means[c] for c, w in self.weights.items())

    def floor(self, sigma: dict[Cell, float]) -> float:
        """sqrt(sum_c w_c^2 sigma_c^2): the noise floor of the cells the contrast pools."""
        return float(np.sqrt(sum(w * w * sigma.get(c, np.nan) ** 2 for c, w in self.weights.items())))


def group_mean(cells) -> dict[Cell, float]:
    """The weights of a plain mean over cells."""
    cells = list(cells)
    return {c: 1.0 / len(cells) for c in cells}


def minus(a: dict[Cell, float], b: dict[Cell, float]) -> dict[Cell, float]:
    """The weights of contrast a minus contrast b."""
    return {c: a.get(c, 0.0) - b.get(c, 0.0) for c in a.keys() | b.keys()}


def by_lambda(cells, lam: float) -> dict[Cell, float]:
    """The mean over the C of one lambda."""
    return group_mean(c for c in cells if c[0] == lam)


def slope_in_c(cells) -> dict[Cell, float]:
    """Least-squares slope per class of the per-C means (each the mean over its lambdas)."""
    cs = sorted({C for _, C in cells})
    x = np.array(cs, float) - np.mean(cs)
    w = {}
    for C, xc in zip(cs, x, strict=True):
        col = [c for c in cells if c[1] == C]
        w |= {c: float(xc / (x * x).sum() / len(col)) for c in col}
    return w


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


def contrasts(cells) -> dict[str, Contrast]:
    """The PE contrasts, fixed before looking: name -> Contrast over the cells (C >= 3)."""
    cells = sorted(c for c in cells if c[1] >= PE_MIN_CLASSES)
    lams = sorted({lam for lam, _ in cells})
    out = {}
    if len({C for _, C in cells}) >= 2:
        out["pe_rises_with_C"] = Contrast(f"PE grows with the number of classes (slope of PE per class, C >= "
                                          f"{PE_MIN_CLASSES})", slope_in_c(cells), +1)
    inner = [lam for lam in lams if 0 < lam < lams[-1]]
    if 0.0 in lams and inner:
        mid = {c: w / len(inner) for lam in inner for c, w in by_lambda(cells, lam).items()}
        out["pe_rises_with_lambda"] = Contrast("PE rises with lambda (mean over 0 < lambda < max, minus lambda 0)",
                                               minus(mid, by_lambda(cells, 0.0)), +1)
        out["pe_falls_at_large_lambda"] = Contrast(f"then falls (lambda {lams[-1]!r} minus the mean over 0 < "
                                                   "lambda < max)", minus(by_lambda(cells, lams[-1]), mid), -1)
    for peak, said in ((0.005, "the peak is at 0.005 (text)"), (0.001, "0.001 gives the highest PE (text, caption)")):
        if peak in lams:
            for other in (lam for lam in lams if lam != peak):
                out[f"pe_at_{peak!r}_minus_{other!r}"] = Contrast(
                    f"{said}: PE({peak!r}) - PE({other!r})", minus(by_lambda(cells, peak), by_lambda(cells, other)), +1)
    return out


def verdict(lo: float, hi: float, sign: int, floor: float, n_seeds: int) -> tuple[str, str]:
    """'agree', 'disagree', 'tie' or 'cannot tell at n seeds', and why; floor: the contrast's noise floor.
    A small estimate whose interval reaches past the margin is 'cannot tell', not a tie."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"cannot tell at {n_seeds} seeds", "no interval"
    margin = 2 * floor  # a tie is shown, not assumed: the whole interval within the margin (an equivalence test)
    if -margin < lo and hi < margin:
        return "tie", f"the 95% interval lies within +-{margin:.3g}, twice the pooled noise floor"
    if lo > 0 or hi < 0:
        side = 1 if lo > 0 else -1
        return ("agree" if side == sign else "disagree"), "the 95% interval excludes 0"
    return f"cannot tell at {n_seeds} seeds", "the 95% interval holds 0"


def contrast_rows(means: dict[Cell, np.ndarray], tests: dict[str, Contrast], floor_of, n_seeds: int) -> list[dict]:
    """One trends.csv row per contrast: estimate, 95% interval, tie margin and verdict; floor_of
    (Contrast -> float): the contrast's noise floor (half its tie margin)."""
    rows = []
    for name, t in tests.items():
        c = t.of(means)
        lo, hi = np.nanpercentile(c[1:], [2.5, 97.5]) if np.isfinite(c[1:]).any() else (np.nan, np.nan)
        floor = floor_of(t)
        v, why = verdict(float(lo), float(hi), t.sign, floor, n_seeds)
        rows.append({"contrast": name, "statement": t.statement, "estimate": float(c[0]), "ci_low": float(lo),
                     "ci_high": float(hi), "tie_margin": 2 * floor, "verdict": v, "why": why})
    return rows


def trend_rows(pe: dict[Cell, dict], seeds: list[int], n_boot: int = 2000, noise: float | dict = 0.0):
    """Rows for trends.csv (one per contrast) and the argmax of the lambda means per resample
    (description only: an argmax picked on the same resample is not tested). noise: PE's noise
    floor per cell ({cell: sigma}), or one value for every cell."""
    pe = {cell: v for cell, v in pe.items() if cell[1] >= PE_MIN_CLASSES}
    if not pe:
        return [], {}
    sigma = noise if isinstance(noise, dict) else dict.fromkeys(pe, float(noise))
    with warnings.catch_warnings():  # a resample of one distinct seed has no pair: NaN, said once below
        warnings.simplefilter("ignore", RuntimeWarning)
        means = boot_cell_means(pe, seeds, n_boot)
        return contrast_rows(means, contrasts(pe), lambda t: t.floor(sigma), len(seeds)), lambda_argmax(means)


def lambda_argmax(means: dict[Cell, np.ndarray]) -> dict[float, float]:
    """Per lambda, the share of resamples in which its mean over C is the highest."""
    lams = sorted({lam for lam, _ in means})
    by_lam = np.array([np.nanmean([means[cell] for cell in means if cell[0] == lam], 0) for lam in lams])
    ok = np.isfinite(by_lam[:, 1:]).all(0)  # resamples with a value for every lambda
    winners = np.array(lams)[np.argmax(by_lam[:, 1:][:, ok], 0)] if ok.any() else np.array([])
    return {lam: float(np.mean(winners == lam)) if len(winners) else float("nan") for lam in lams}


def link_row(name: str, statement: str, x: dict, y: dict, seeds: list[int], n_boot: int, sign: int) -> dict:
    """A trends.csv row for a within-group Spearman (trends.within_cell_spearman); no tie margin."""
    rho, lo, hi = within_cell_spearman(x, y, seeds, n_boot)
    v, why = verdict(lo, hi, sign, 0.0, len(seeds))
    return {"contrast": name, "statement": f"{statement} (Spearman within groups, pooled)", "estimate": rho,
            "ci_low": lo, "ci_high": hi, "tie_margin": float("nan"), "verdict": v, "why": why}


def within_cell_spearman(x: dict, y: dict, seeds: list[int], n_boot: int = 1000,
                         rng_seed: int = 0) -> tuple[float, float, float]:
    """Pair-level rank correlation of two pair metrics within groups (cells, or cells and shifts),
    pooled: each group's values are ranked and the ranks standardised within the group (what the
    group shares, lambda and C, drops out), then correlated over all groups' pairs. Returns (rho,
    ci_low, ci_high); the interval resamples whole seeds, the same resamples for every group."""
    groups = sorted(x.keys() & y.keys(), key=repr)
    if not groups:
        return float("nan"), float("nan"), float("nan")
    X = np.stack([pair_matrix(x[g], seeds) for g in groups])  # (G, n, n)
    Y = np.stack([pair_matrix(y[g], seeds) for g in groups])
    rhos = [_pooled_rank_corr(X, Y, idx) for idx in observed_and_draws(len(seeds), n_boot, rng_seed)]
    boots = np.array(rhos[1:])
    lo, hi = np.nanpercentile(boots, [2.5, 97.5]) if np.isfinite(boots).any() else (np.nan, np.nan)
    return rhos[0], float(lo), float(hi)


def _pooled_rank_corr(X: np.ndarray, Y: np.ndarray, idx: np.ndarray) -> float:
    """The pooled within-group rank correlation over the pairs of distinct seeds in idx (n,)."""
    from scipy.stats import rankdata

    a, b = np.triu_indices(len(idx), 1)
    keep = idx[a] != idx[b]
    vx, vy = X[:, idx[a][keep], idx[b][keep]], Y[:, idx[a][keep], idx[b][keep]]  # (G, P)
    ok = np.isfinite(vx) & np.isfinite(vy)
    full = ok.all(1) if vx.shape[1] >= 3 else np.zeros(len(vx), bool)
    zx, zy = [_z(rankdata(vx[full], axis=1))], [_z(rankdata(vy[full], axis=1))]  # (G', P) at once
    for g in np.flatnonzero(~full & (ok.sum(1) >= 3)):  # groups with a missing pair, one by one
        zx.append(_z(rankdata(vx[g][ok[g]])[None]))
        zy.append(_z(rankdata(vy[g][ok[g]])[None]))
    prod = np.concatenate([(a * b).ravel() for a, b in zip(zx, zy, strict=True)])
    return float(prod[np.isfinite(prod)].mean()) if np.isfinite(prod).any() else float("nan")


def _z(r: np.ndarray) -> np.ndarray:
    """Ranks (G, P) standardised along P; a group whose ranks are all equal becomes NaN (dropped)."""
    if r.size == 0:
        return r
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = r.std(1, keepdims=True)
        return np.where(sd > 0, (r - r.mean(1, keepdims=True)) / np.where(sd > 0, sd, 1), np.nan)


def share_rows(pairs: dict[str, dict[Cell, dict]], base: str, seeds: list[int], n_boot: int) -> list[dict]:
    """Each pair metric's grid mean as a share of `base`'s (pairs {name: {cell: {(a, b): value}}}),
    with its own 95% interval: the ratio recomputed on every seed resample (the same resamples for
    every cell and metric). Estimates, not tests: verdict `estimate`."""
    def grid(name):  # (1 + n_boot,) mean over cells of the cells' resampled means
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(list(boot_cell_means(pairs[name], seeds, n_boot).values()), 0)

    den, rows = grid(base), []
    for name in (n for n in pairs if n != base):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = grid(name) / den
        lo, hi = np.nanpercentile(r[1:], [2.5, 97.5]) if np.isfinite(r[1:]).any() else (np.nan, np.nan)
        rows.append({"contrast": f"share_of_{base}.{name}", "statement": f"{name} as a share of {base} (grid means)",
                     "estimate": float(r[0]), "ci_low": float(lo), "ci_high": float(hi), "tie_margin": float("nan"),
                     "verdict": "estimate", "why": "a ratio with its own seed-bootstrap interval, not a test"})
    return rows
