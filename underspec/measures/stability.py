"""When is the basin decided? Instability analysis (Frankle, Dziugaite, Roy, Carbin 2020): the
children of one parent branch at epoch k and differ only in their minibatch order after it; the
error barrier between two children, on the linear path between their final weights, says whether
SGD noise after k still moves a run to another basin. Pure numpy (torch for the paths).

A family is one parent's children at one k, over its post-branch order seeds. Every statistic is
a mean over the family's child pairs per parent, then a mean over parents with a bootstrap over
parents (a parent: its init seed, order seed and jitter, `lineage`; every cell has the same ones,
so one set of resamples serves them all). With few parents the interval is coarse: at 3, the
all-largest resample has probability 1/27 > 2.5%, so the upper bound is the largest parent's mean.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from underspec.measures.barrier import Endpoint, pair_barriers
from underspec.measures.cells import aligned_pair_metrics, net_of
from underspec.measures.metrics import disagreement, linear_cka
from underspec.measures.results import RowKey, Stats, metric_row
from underspec.measures.targets import SeedData
from underspec.measures.trends import Contrast, by_lambda, contrast_rows, group_mean, minus, observed_and_draws
from underspec.spec.settings import RunSpec

THRESHOLD = 0.02  # Frankle et al.'s: an error barrier within 2 percentage points is one basin
TARGET, MODE, RULE_MODE = "stability", "children", "stability_rule"
BARRIERS = tuple(f"{k}_barrier.{m}" for m in ("identity", "weight") for k in ("error", "loss"))
METRICS = (*BARRIERS, "disagreement", "pe", "cka")
Cell = tuple[float, int]
Lineage = tuple[int, int, int]


def lineage(parent: RunSpec) -> Lineage:
    """What tells a cell's parents apart, the same in every cell: init seed, order seed, jitter."""
    return (parent.seed, parent.order_seed, parent.jitter)


def studied_epochs(cells) -> list[int]:
    """The branch epochs of any family in any of the cells (each an iterable of RunSpec)."""
    return sorted({k for specs in cells for _, k in families(specs)})


def families(runs) -> dict[tuple[RunSpec, int], list[RunSpec]]:
    """{(parent, k): its children, sorted} of one cell's runs, families of two or more: the branched
    runs by parent and branch epoch, and at k = 0 the unbranched runs that are a parent's children
    branched at 0 (its init seed and jitter, a post-branch seed of its children as the order seed)."""
    runs = set(runs)
    out: dict[tuple[RunSpec, int], list[RunSpec]] = {}
    posts: dict[RunSpec, set[int]] = {}
    for r in runs:
        if r.branched:
            out.setdefault((r.parent, r.branch), []).append(r)
            posts.setdefault(r.parent, set()).add(r.branch_seed)
    for parent, seeds in posts.items():
        zero = [c for c in (replace(parent, order_seed=q) for q in seeds) if c in runs]
        if zero:
            out[(parent, 0)] = zero
    return {key: sorted(kids) for key, kids in sorted(out.items()) if len(kids) >= 2}


def pair_values(a: SeedData, b: SeedData, y: np.ndarray, params: dict) -> dict[str, float]:
    """One child pair's comparisons: loss and error barriers on the test set without alignment
    (`identity`: the children share their first k epochs) and after weight matching (`weight`),
    prediction disagreement, CKA, and PE (from `params`, cells.aligned_pair_metrics' values)."""
    ends = (Endpoint(net_of(s), s.extra["z"]["test"]) for s in (a, b))
    out, _ = pair_barriers(*ends, y, methods=("identity", "weight"))
    out["disagreement"] = disagreement(a.pred, b.pred)
    out["cka"] = linear_cka(a.h, b.h) if a.h is not None and b.h is not None else float("nan")
    out["pe"] = params["pe"]
    return out


@dataclass
class CellStability:
    """One cell's per-parent values: values[metric][k] = {parent lineage: mean over its child
    pairs}, and pairs[k] = the number of child pairs at k."""

    values: dict[str, dict[int, dict[Lineage, float]]]
    pairs: dict[int, int]

    @property
    def ks(self) -> list[int]:
        return sorted(self.pairs)


def cell_stability(runs: dict[RunSpec, SeedData], y: np.ndarray, tick=None) -> CellStability:
    """The per-parent values of every family in one cell (runs: {spec: SeedData} with
    predictions, probe embeddings and the test pre-activations `extra["z"]`)."""
    values: dict[str, dict[int, dict[Lineage, float]]] = {m: {} for m in METRICS}
    pairs: dict[int, int] = {}
    for (parent, k), kids in families(runs).items():
        combos = list(itertools.combinations(kids, 2))
        params = aligned_pair_metrics(runs, "params", pairs=combos)
        per_pair = [pair_values(runs[a], runs[b], y, params[(a, b)]) for a, b in combos]
        for m in METRICS:
            v = [x[m] for x in per_pair if np.isfinite(x[m])]  # PE is undefined at C = 2
            values[m].setdefault(k, {})[lineage(parent)] = float(np.mean(v)) if v else float("nan")
        pairs[k] = pairs.get(k, 0) + len(combos)
        if tick:
            tick(len(combos))
    return CellStability(values, pairs)


def parent_means(per_parent: dict[Lineage, float], parents: list[Lineage], idx: np.ndarray) -> np.ndarray:
    """(1 + n_boot,) means over each resample of the parents (idx from trends.observed_and_draws)."""
    v = np.array([per_parent.get(p, np.nan) for p in parents])[idx]  # (1 + n_boot, n)
    with np.errstate(invalid="ignore"):
        return np.nanmean(v, 1) if np.isfinite(v).any() else np.full(len(idx), np.nan)


FEW_PARENTS = 3  # at most this many: a percentile bootstrap's 95% bounds are the smallest and largest
# parent (each parent drawn every time has probability n**-n >= 1/27 > 2.5%), so the range is given


def stats_of(per_parent: dict[Lineage, float], parents: list[Lineage], idx: np.ndarray, n: int) -> Stats:
    """(mean over parents, std over parents, the interval, n: the child pairs) of one measure at
    one k. The interval: the 2.5th and 97.5th percentiles of the resampled means, or with at most
    FEW_PARENTS parents the smallest and largest parent's mean (what that bootstrap reduces to)."""
    boots = parent_means(per_parent, parents, idx)
    v = np.array([x for x in per_parent.values() if np.isfinite(x)])
    std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    rest = boots[1:][np.isfinite(boots[1:])]
    if not np.isfinite(boots[0]) or not len(rest):
        return float(boots[0]), std, float("nan"), float("nan"), n
    lo, hi = (v.min(), v.max()) if len(v) <= FEW_PARENTS else np.percentile(rest, [2.5, 97.5])
    return float(boots[0]), std, float(lo), float(hi), n


def stability_epoch(upper: dict[int, float], threshold: float = THRESHOLD) -> float:
    """The smallest k from which on (k and every larger k studied) the error barrier's upper bound
    (95%, or the largest parent's with few parents) is at most `threshold`; inf ("not reached")
    when the largest k studied does not qualify."""
    epoch = float("inf")
    for k in sorted(upper, reverse=True):
        if not upper[k] <= threshold:
            break
        epoch = float(k)
    return epoch


def stability_rows(lam: float, C: int, cs: CellStability, parents: list[Lineage], idx: np.ndarray,
                   studied: list[int]) -> list[dict]:
    """metrics.csv rows of one cell: target `stability`, metric `<measure>.k<k>` (mode `children`:
    bootstrap over parents; with at most FEW_PARENTS parents the range over them, `interval`
    min_max), and `stability_epoch` (mode `stability_rule`: a point value, the rule
    applied to the error barrier without alignment over every k `studied` in the panel, a k this
    cell lacks not qualifying; inf: not reached)."""
    rows, upper = [], dict.fromkeys(studied, float("nan"))
    for m in METRICS:
        for k in cs.ks:
            s = stats_of(cs.values[m].get(k, {}), parents, idx, cs.pairs[k])
            rows.append(metric_row(RowKey(lam, C, TARGET, f"{m}.k{k}", MODE), s))
            if sum(np.isfinite(x) for x in cs.values[m].get(k, {}).values()) <= FEW_PARENTS:
                rows[-1]["interval"] = "min_max"
            if m == "error_barrier.identity":
                upper[k] = s[3]
    k_star = stability_epoch(upper)
    rows.append(metric_row(RowKey(lam, C, TARGET, "stability_epoch", RULE_MODE),
                           (k_star, float("nan"), k_star, k_star, len(parents))))
    return rows


def stability_contrasts(cells, k: int) -> dict[str, Contrast]:
    """The trend tests of the error barrier at branch epoch k, fixed before looking: the largest
    lambda minus lambda 0 (falls with L1: sign -1), the largest C minus the smallest C >= 3, and
    C 10 minus C 2 (C = 2 is its own contrast), each over the other axis' mean."""
    cells = sorted(cells)
    lams, cs = sorted({lam for lam, _ in cells}), sorted({C for _, C in cells})
    by_c = lambda C: group_mean(c for c in cells if c[1] == C)  # noqa: E731
    out = {}
    if len(lams) > 1 and lams[0] == 0.0:
        out[f"barrier_k{k}_falls_with_lambda"] = Contrast(
            f"the error barrier at k = {k} falls with L1 (lambda {lams[-1]!r} minus 0)",
            minus(by_lambda(cells, lams[-1]), by_lambda(cells, 0.0)), -1)
    big = [C for C in cs if C >= 3]
    if len(big) > 1:
        out[f"barrier_k{k}_falls_with_C"] = Contrast(
            f"the error barrier at k = {k} falls with C (C {big[-1]} minus C {big[0]})",
            minus(by_c(big[-1]), by_c(big[0])), -1)
    if 2 in cs and 10 in cs:
        out[f"barrier_k{k}_C10_minus_C2"] = Contrast(
            f"the error barrier at k = {k}: C 10 minus C 2", minus(by_c(10), by_c(2)), -1)
    return out


def decay_contrasts(cells, first: int, last: int) -> dict[str, Contrast]:
    """Does the barrier fall with the branch epoch? The barrier at `last` minus at `first`, over
    every cell and per C; the pseudo-cells are (cell, k)."""
    cells = sorted(cells)
    out = {}
    for C in [None, *sorted({c[1] for c in cells})]:
        group = [c for c in cells if C is None or c[1] == C]
        w = {(c, last): 1 / len(group) for c in group} | {(c, first): -1 / len(group) for c in group}
        where = "mean over the cells" if C is None else f"C {C}, mean over lambda"
        out[f"barrier_k{last}_minus_k{first}" + ("" if C is None else f"_C{C}")] = Contrast(
            f"the error barrier falls from k = {first} to k = {last} ({where})", w, -1)
    return out


def stability_trend_rows(by_cell: dict[Cell, CellStability], parents: list[Lineage], idx: np.ndarray) -> list[dict]:
    """trends.csv rows: the stability contrasts at every k studied in all cells, and the decay from
    the first k to the last. The tie margin is twice the pooled floor sqrt(sum w_c^2 sigma^2) with
    sigma = THRESHOLD / 2 per cell: a contrast within the practical threshold either way is a tie."""
    ks = sorted(set.intersection(*(set(cs.ks) for cs in by_cell.values()))) if by_cell else []
    means = {(cell, k): parent_means(cs.values["error_barrier.identity"][k], parents, idx)
             for cell, cs in by_cell.items() for k in ks}
    floor = lambda t: t.floor(dict.fromkeys(t.weights, THRESHOLD / 2))  # noqa: E731
    rows = []
    for k in ks:
        at_k = {cell: means[(cell, k)] for cell in by_cell}
        rows += contrast_rows(at_k, stability_contrasts(by_cell, k), floor, len(parents))
    if len(ks) > 1:
        rows += contrast_rows(means, decay_contrasts(by_cell, ks[0], ks[-1]), floor, len(parents))
    return rows


def draws(parents: list[Lineage], n_boot: int, rng_seed: int = 0) -> np.ndarray:
    """(1 + n_boot, n) parent indices: the observed parents, then resamples with replacement."""
    return observed_and_draws(len(parents), n_boot, rng_seed)
