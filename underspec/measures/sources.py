"""Where the spread comes from: pairs of runs in one cell sorted by what differs between them
(the jitter alone, the minibatch order alone, the init alone, or both seeds), their pair metrics
with a bootstrap that resamples init seeds and order seeds independently, the variance
components of test accuracy, and each kind's weight distance over epochs.

Pure: takes arrays already loaded (SeedData keyed by RunSpec), returns metrics.csv rows.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from underspec.measures.cells import aligned_pair_metrics  # the main analysis' pair metrics, computed the same way
from underspec.measures.metrics import disagreement, linear_cka
from underspec.measures.results import RowKey, metric_row
from underspec.measures.targets import SeedData
from underspec.spec.settings import RunSpec

PAIR_KINDS = ("jitter", "order", "init", "init+order")  # what differs between two runs; modes pairs_<kind>
PARAM_METRICS = ("pe", "apc1")


def pair_kind(a: RunSpec, b: RunSpec) -> str | None:
    """What differs between two runs of one cell: `jitter` only when the jitter is the sole
    difference; the other kinds compare jitter-0 runs. None: no kind (same run, a jittered
    run against another seed, or a branched run: the stability analysis compares those)."""
    if a.branched or b.branched:
        return None
    same_init, same_order = a.seed == b.seed, a.order_seed == b.order_seed
    if same_init and same_order:
        return "jitter" if a.jitter != b.jitter else None
    if a.jitter or b.jitter:
        return None
    return {(True, False): "order", (False, True): "init"}.get((same_init, same_order), "init+order")


def pairs_by_kind(runs) -> dict[str, list[tuple[RunSpec, RunSpec]]]:
    """{kind: [(a, b), ...]} over every pair a < b of the given runs."""
    out: dict[str, list] = {k: [] for k in PAIR_KINDS}
    for a, b in itertools.combinations(sorted(runs), 2):
        kind = pair_kind(a, b)
        if kind:
            out[kind].append((a, b))
    return out


def seed_weights(runs, n_boot: int, rng_seed: int) -> dict[RunSpec, np.ndarray]:
    """Each run's weight in each of n_boot draws, {run: (n_boot,)}: init seeds and order seeds are
    drawn independently, with replacement; a run weighs (times its init seed was drawn) x (times
    its order seed was drawn)."""
    runs = sorted(runs)
    inits, orders = sorted({r.seed for r in runs}), sorted({r.order_seed for r in runs})
    rng = np.random.default_rng(rng_seed)
    ci = rng.multinomial(len(inits), [1 / len(inits)] * len(inits), size=n_boot)  # (n_boot, I)
    co = rng.multinomial(len(orders), [1 / len(orders)] * len(orders), size=n_boot)  # (n_boot, O)
    return {r: ci[:, inits.index(r.seed)] * co[:, orders.index(r.order_seed)] for r in runs}


def weighted_means(values: dict[tuple[RunSpec, RunSpec], float], w: dict[RunSpec, np.ndarray]) -> np.ndarray:
    """The pair metric's mean in each draw, (n_boot,), nan where a draw holds none of its pairs;
    a pair weighs the product of its runs' weights."""
    v = np.array(list(values.values()), dtype=float)  # (pairs,)
    W = np.stack([w[a] * w[b] for a, b in values], 1).astype(float)  # (n_boot, pairs)
    tot = W.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, (W @ v) / np.where(tot > 0, tot, 1), np.nan)


def percentile_95(boots: np.ndarray) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the finite draws (nan, nan when there are none)."""
    boots = boots[np.isfinite(boots)]
    return tuple(np.percentile(boots, [2.5, 97.5])) if len(boots) else (np.nan, np.nan)


def finite(values: dict) -> dict:
    return {k: v for k, v in values.items() if np.isfinite(v)}


def seed_bootstrap(values: dict[tuple[RunSpec, RunSpec], float], n_boot: int = 1000, rng_seed: int = 0):
    """(mean, std, ci_low, ci_high, n_pairs) of a pair metric over one kind of pairs, seeds drawn
    by `seed_weights` over the runs of these pairs."""
    values = finite(values)
    if not values:
        return (float("nan"),) * 4 + (0,)
    v = np.array(list(values.values()))
    boots = weighted_means(values, seed_weights({r for p in values for r in p}, n_boot, rng_seed))
    lo, hi = percentile_95(boots)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), float(lo), float(hi), len(v)


def share_bootstrap(num: dict, den: dict, f: Callable[[np.ndarray], np.ndarray], w: dict[RunSpec, np.ndarray]):
    """(share, nan, ci_low, ci_high, n_pairs) of one kind of pairs against another: f(mean of
    `num`) / f(mean of `den`), its interval from the ratio in each draw of the same seed weights
    `w` (the numerator and denominator resampled jointly, not the denominator alone)."""
    num, den = finite(num), finite(den)
    if not num or not den or f(np.mean(list(den.values()))) == 0:
        return (float("nan"),) * 4 + (0,)
    with np.errstate(invalid="ignore", divide="ignore"):
        boots = f(weighted_means(num, w)) / f(weighted_means(den, w))
    lo, hi = percentile_95(boots)
    share = f(np.mean(list(num.values()))) / f(np.mean(list(den.values())))
    return float(share), float("nan"), float(lo), float(hi), len(num)


def pair_metrics(a: SeedData, b: SeedData, params: dict) -> dict[str, float]:
    """The comparisons of one pair: PE and APC-1 of the parameters (from `params`, the pair's
    values computed by cells.aligned_pair_metrics), CKA and disagreement where embeddings and
    predictions were loaded."""
    out = {m: params[m] for m in PARAM_METRICS}
    if a.h is not None and b.h is not None:
        out["cka"] = linear_cka(a.h, b.h)
    if a.pred is not None and b.pred is not None:
        out["disagreement"] = disagreement(a.pred, b.pred)
    return out


def acc_components(test_acc: dict[RunSpec, float]) -> dict[str, float]:
    """Variance components of test accuracy (method of moments, one run per init x order): init,
    order, interaction (with one run per cell, confounded with rounding noise), and jitter
    (half the mean squared difference of runs that differ in the jitter alone)."""
    test_acc = {r: v for r, v in test_acc.items() if not r.branched}  # a branch's children: not this design
    base = {(r.seed, r.order_seed): v for r, v in test_acc.items() if r.jitter == 0}
    inits, orders = sorted({i for i, _ in base}), sorted({o for _, o in base})
    out = {}
    if len(inits) > 1 and len(orders) > 1 and len(base) == len(inits) * len(orders):
        A = np.array([[base[(i, o)] for o in orders] for i in inits])  # (I, O)
        m, r, c = A.mean(), A.mean(1) - A.mean(), A.mean(0) - A.mean()
        e = A - m - r[:, None] - c[None, :]
        n_i, n_o = A.shape
        ms_res = (e ** 2).sum() / ((n_i - 1) * (n_o - 1))
        out["var_init"] = float((n_o * (r ** 2).sum() / (n_i - 1) - ms_res) / n_o)
        out["var_order"] = float((n_i * (c ** 2).sum() / (n_o - 1) - ms_res) / n_i)
        out["var_interaction"] = float(ms_res)
    diffs = [(v - base[(r.seed, r.order_seed)]) ** 2 / 2 for r, v in test_acc.items()
             if r.jitter and (r.seed, r.order_seed) in base]
    if diffs:
        out["var_jitter"] = float(np.mean(diffs))
    return out


def distance_over_epochs(seeds: dict[RunSpec, SeedData], pairs: list[tuple[RunSpec, RunSpec]]) -> np.ndarray:
    """Mean over pairs of the relative W1 distance ||W1_a - W1_b|| / ||W1_a|| at each epoch, (E+1,):
    no alignment (a kind's pairs that share an init start at 0; a one-ulp nudge starts at ~1e-7)."""
    def flat(r):  # (E+1, H*D) float64
        w = seeds[r].traj["W1"]
        return w.reshape(len(w), -1).astype(np.float64)

    d = [np.linalg.norm(flat(a) - flat(b), axis=1) / np.linalg.norm(flat(a), axis=1) for a, b in pairs]
    return np.mean(d, 0) if d else np.array([])


# A share: (target, metric, its name in `share.<name>`, the measure the share is of).
SHARES = (("function", "disagreement", "disagreement", lambda v: v),
          ("function", "cka", "1-cka", lambda v: 1 - v),
          ("params", "pe", "1-pe", lambda v: 1 - v))


def kind_values(runs: dict[RunSpec, SeedData], by_kind: dict[str, list]) -> dict[str, dict[str, dict]]:
    """{kind: {metric: {pair: value}}} of a cell's kinds of pairs (kinds without pairs left out)."""
    out = {}
    for kind, pairs in by_kind.items():
        if pairs:
            params = aligned_pair_metrics(runs, "params", pairs=pairs)
            vals = {p: pair_metrics(runs[p[0]], runs[p[1]], params[p]) for p in pairs}
            out[kind] = {m: {p: v[m] for p, v in vals.items() if m in v} for m in ("pe", "apc1", "cka", "disagreement")}
    return out


def share_rows(lam: float, C: int, values: dict[str, dict[str, dict]], w: dict[RunSpec, np.ndarray]) -> list[dict]:
    """Each kind's share of the init+order pairs' measure (metric `share.<name>`, mode
    `pairs_<kind>`), with the ratio's own interval (`share_bootstrap`)."""
    den, rows = values.get("init+order"), []
    for kind in PAIR_KINDS[:-1]:
        for target, metric, name, f in SHARES:
            if den and den.get(metric) and values.get(kind, {}).get(metric):
                stats = share_bootstrap(values[kind][metric], den[metric], f, w)
                rows.append(metric_row(RowKey(lam, C, target, f"share.{name}", f"pairs_{kind}"), stats))
    return rows


def source_rows(lam: float, C: int, runs: dict[RunSpec, SeedData], n_boot: int) -> tuple[list[dict], list[dict]]:
    """metrics.csv rows of one cell's decomposition (mode `pairs_<kind>`; target params for PE
    and APC-1, function for CKA and disagreement; each kind's share of init+order, `share.<name>`;
    test-accuracy variance components, mode `sources_<component>`) and its distance-over-epochs
    rows (metric `w1_distance.<kind>`, one per kind and epoch)."""
    by_kind = pairs_by_kind(runs)
    rows, erows, values = [], [], kind_values(runs, by_kind)
    for kind, metrics in values.items():
        for metric, one in metrics.items():
            if one:
                target = "params" if metric in PARAM_METRICS else "function"
                rows.append(metric_row(RowKey(lam, C, target, metric, f"pairs_{kind}"), seed_bootstrap(one, n_boot)))
        for e, d in enumerate(distance_over_epochs(runs, by_kind[kind])):
            erows.append({"lambda": lam, "classes": C, "target": "params", "epoch": e,
                          "metric": f"w1_distance.{kind}", "mean": float(d)})
    rows += share_rows(lam, C, values, seed_weights([r for r in runs if not r.branched], n_boot, 0))
    for name, v in acc_components({r: sd.test_acc for r, sd in runs.items()}).items():
        rows.append(metric_row(RowKey(lam, C, "function", "test_acc", f"sources_{name}"),
                               (v, float("nan"), v, v, len(runs))))
    return rows, erows
