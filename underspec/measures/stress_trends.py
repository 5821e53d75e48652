"""Do L1 and more classes shrink the seeds' spread under shift, and do better-aligned pairs of
seeds disagree less there? Trend contrasts pooled over the shifts, and the pair-level link of
stress disagreement to PE and to the barrier. Pure numpy.

Two statistics per cell, each the mean over the shifts (the identity, the iid set, excluded):
the std over seeds of accuracy (`acc_std`) and the pairwise prediction disagreement
(`disagreement`). Their contrasts are fixed beforehand and use every C (accuracy is defined at
C = 2). The tie margin of a per-seed statistic is set by the finite test set: every cell's
shift-pooled statistic is recomputed on the same resamples of the 10,000 test images with the
seeds held fixed (one image draw for every shift and cell: the shifted sets are copies of the same
images, and every cell reads the same images), and a contrast's margin is twice the std over those
resamples of the contrast itself, so the cells' shared test-set noise is counted once.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from underspec.measures.stress import IID  # torch comes with it: the stress measures' module
from underspec.measures.trends import (
    Cell,
    Contrast,
    boot_cell_means,
    by_lambda,
    contrast_rows,
    group_mean,
    link_row,
    minus,
    observed_and_draws,
    slope_in_c,
)

IMAGE_DRAWS = 100  # resamples of the test images behind each cell's tie margin
STATISTICS = {"acc_std": "the std over seeds of accuracy under shift",
              "disagreement": "the seeds' pairwise disagreement under shift"}


@dataclass
class StressCell:
    """One cell's seeds under the shifts (identity excluded): seeds (k,) sorted; acc (S, k) the
    accuracies; dis {(a, b): (S,) the pair's disagreement per shift}; on_images {statistic: (B,)
    the shift-pooled statistic on each of the B shared resamples of the test images}."""

    seeds: list[int]
    acc: np.ndarray
    dis: dict[tuple[int, int], np.ndarray]
    on_images: dict[str, np.ndarray]


def stress_cell(seeds: list[int], preds: dict[str, np.ndarray], y: np.ndarray) -> StressCell:
    """From preds {shift: (k, n) predictions of the seeds, in seeds' order} and labels y (n,)."""
    names = [s for s in preds if s != IID]
    pred = np.stack([preds[s] for s in names])  # (S, k, n)
    correct = pred == y[None, None, :]
    pairs = list(itertools.combinations(range(len(seeds)), 2))
    differ = np.stack([pred[:, a] != pred[:, b] for a, b in pairs], 1)  # (S, P, n)
    dis = {(seeds[a], seeds[b]): differ[:, p].mean(1) for p, (a, b) in enumerate(pairs)}
    return StressCell(list(seeds), correct.mean(2), dis, image_noise(correct, differ))


@functools.cache
def image_weights(n: int, draws: int) -> np.ndarray:
    """(n, draws) float32: column b the weights (count / n) of the n images in resample b (rng
    seed 0); the same array for every cell, so made once. Read-only."""
    rng = np.random.default_rng(0)
    W = np.stack([np.bincount(r, minlength=n) for r in rng.integers(0, n, (draws, n))]).astype(np.float32).T / n
    W.flags.writeable = False
    return W


def image_noise(correct: np.ndarray, differ: np.ndarray, draws: int = IMAGE_DRAWS) -> dict[str, np.ndarray]:
    """On each of `draws` resamples of the n images (the same for every call: rng seed 0), (draws,):
    the mean over shifts of the std over seeds of accuracy (correct (S, k, n) bool) and the mean
    pair disagreement (differ (S, P, n))."""
    S, k, n = correct.shape
    W = image_weights(n, draws)
    acc = (correct.reshape(S * k, n).astype(np.float32) @ W).reshape(S, k, draws)  # (S, k, B)
    dis = (differ.reshape(-1, n).astype(np.float32) @ W).reshape(S, -1, draws)  # (S, P, B)
    return {"acc_std": acc.std(1, ddof=1).mean(0), "disagreement": dis.mean((0, 1))}


def stress_contrasts(cells, stat: str) -> dict[str, Contrast]:
    """The contrasts of one statistic, fixed beforehand: any L1 against none, the largest lambda
    against none, and the slope per class; each expected negative (the spread falls)."""
    cells = sorted(cells)
    lams = sorted({lam for lam, _ in cells})
    said, out = STATISTICS[stat], {}
    if 0.0 in lams and len(lams) > 1:
        some = group_mean(c for c in cells if c[0] > 0)
        out[f"{stat}_falls_with_lambda"] = Contrast(f"{said} falls with L1 (mean over lambda > 0 minus lambda 0)",
                                                    minus(some, by_lambda(cells, 0.0)), -1)
        out[f"{stat}_at_{lams[-1]!r}_minus_0.0"] = Contrast(
            f"{said} at lambda {lams[-1]!r} minus lambda 0",
            minus(by_lambda(cells, lams[-1]), by_lambda(cells, 0.0)), -1)
    if len({C for _, C in cells}) >= 2:
        out[f"{stat}_falls_with_C"] = Contrast(f"{said} falls with the number of classes (slope per class, "
                                               "every C)", slope_in_c(cells), -1)
    return out


def _std_means(cells: dict[Cell, StressCell], seeds: list[int], idx: np.ndarray) -> dict[Cell, np.ndarray]:
    """{cell: (1 + n_boot,) mean over shifts of the std over each seed resample idx (1 + n_boot, n)}."""
    out = {}
    for cell, sc in cells.items():
        A = np.full((len(sc.acc), len(seeds)), np.nan)  # (S, n): NaN where the cell lacks a seed
        A[:, [seeds.index(s) for s in sc.seeds]] = sc.acc
        with np.errstate(invalid="ignore", divide="ignore"):
            out[cell] = np.nanmean(np.nanstd(A[:, idx], -1, ddof=1), 0)  # (S, 1 + n_boot, n) -> (1 + n_boot,)
    return out


def stress_trend_rows(cells: dict[Cell, StressCell], n_boot: int) -> list[dict]:
    """trends.csv rows of the stress contrasts, one seed bootstrap shared by every cell."""
    if not cells:
        return []
    seeds = sorted(set().union(*(sc.seeds for sc in cells.values())))
    means = {"acc_std": _std_means(cells, seeds, observed_and_draws(len(seeds), n_boot)),
             "disagreement": boot_cell_means({c: {p: float(v.mean()) for p, v in sc.dis.items()}
                                              for c, sc in cells.items()}, seeds, n_boot)}
    rows = []
    for stat, m in means.items():
        on_images = {c: sc.on_images[stat] for c, sc in cells.items()}
        rows += contrast_rows(m, stress_contrasts(cells, stat),
                              lambda t, on=on_images: float(np.std(t.of(on), ddof=1)), len(seeds))
    return rows


def stress_link_rows(cells: dict[Cell, StressCell], pe: dict[Cell, dict], barriers: dict[Cell, dict],
                     n_boot: int) -> list[dict]:
    """The pair-level Spearman of stress disagreement with PE (expected negative) and with the
    weight-matched loss barrier (expected positive), within (cell, shift) groups, pooled."""
    if not cells:
        return []
    seeds = sorted(set().union(*(sc.seeds for sc in cells.values())))
    x = {(c, s): {p: float(v[s]) for p, v in sc.dis.items()} for c, sc in cells.items() for s in range(len(sc.acc))}
    bar = {c: {p: v["loss_barrier.weight"] for p, v in b.items()} for c, b in barriers.items()}
    rows = []
    for name, other, said in (("pe", pe, "higher PE disagree less"),
                              ("loss_barrier", bar, "a higher weight-matched loss barrier disagree more")):
        y = {(c, s): other[c] for c, s in x if c in other}
        rows.append(link_row(f"stress_disagreement_vs_{name}", f"pairs with {said} under shift", x, y, seeds,
                             n_boot, -1 if name == "pe" else +1))
    return rows

