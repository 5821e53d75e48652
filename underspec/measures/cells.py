"""Per-cell statistics: one (lambda, C) cell, several seeds, every metric the analysis reports.

Pure: takes arrays already loaded (a `CellContext`), returns rows: dicts with the columns of
metrics.csv (see results.metric_row).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from underspec.measures.barrier import METHODS, Endpoint, barrier, pair_barriers, path
from underspec.measures.metrics import (
    chance_pe,
    disagreement,
    linear_cka,
    live_metrics,
    near_dead,
    pair_summary,
    paper_metrics,
)
from underspec.measures.nulls import ROTATION_METRICS, noise_values, rotation_values, shuffle_null
from underspec.measures.results import RowKey, metric_row
from underspec.measures.targets import TARGETS, SeedData, target_arrays
from underspec.spec.settings import RunSpec

BOTH = {"reference": "reference", "all_pairs": "all_pairs"}  # the two modes of a pair metric
PAIR_METRICS = ("apc1", "apc2", "pe", "pe_authors", "apc1_live", "apc2_live", "pe_live", "pe_live_chance")
BARRIER_METRICS = tuple(f"{k}_barrier.{m}" for m in METHODS for k in ("loss", "error")) + \
    ("matching_agreement", "loss_barrier.same_run")


@dataclass
class CellContext:
    """One (lambda, C) cell's comparison: its seeds' loaded runs, the reference seed (the paper's
    procedure compares it with each other seed), the bootstrap resamples of every interval, the
    runs' learning rate (PE's noise band) and the test labels folded to C (None: no barriers)."""

    lam: float
    classes: int
    seeds: dict[int, SeedData]
    reference: int
    n_boot: int = 1000
    lr: float = RunSpec.lr
    y: np.ndarray | None = None

    @property
    def sorted_seeds(self) -> list[int]:
        return sorted(self.seeds)

    def key(self, target: str, metric: str, mode: str) -> RowKey:
        return RowKey(self.lam, self.classes, target, metric, mode)


def aligned_pair_metrics(seeds: dict, target: str, epoch: int = -1, null_rng=None, pairs=None):
    """{(a, b): metrics dict} of the paper's and the live-unit metrics (APC, PE on aligned units)
    of one target at one epoch, for every pair a < b of the seeds' runs (or the given pairs);
    null_rng: shuffle b's entries first (the null). seeds: {key: SeedData}, keys sortable."""
    live = {s: ~near_dead(d.traj["W1"][epoch]) for s, d in seeds.items()}  # from the weights, whatever the target
    out = {}
    for a, b in pairs if pairs is not None else itertools.combinations(sorted(seeds), 2):
        (A1, A2), (B1, B2) = target_arrays(seeds[a], target, epoch), target_arrays(seeds[b], target, epoch)
        if null_rng is not None:
            B1, B2 = shuffle_null(B1, B2, null_rng)
        out[(a, b)] = {**paper_metrics(A1, A2, B1, B2), **live_metrics(A1, A2, B1, B2, live[a], live[b])}
    return out


def reference_summary(vals: dict, ref: int, n_boot: int, rng_seed: int = 0):
    """Mean, std and bootstrap CI over the (reference, other) pairs of one metric."""
    v = np.array([x for (a, b), x in vals.items() if ref in (a, b) and np.isfinite(x)])
    if len(v) == 0:
        return (float("nan"),) * 4 + (0,)
    std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    boots = np.random.default_rng(rng_seed).choice(v, size=(n_boot, len(v)), replace=True).mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(v.mean()), std, float(lo), float(hi), len(v)


def summarize(cell: CellContext, target: str, pairs: dict, modes: dict[str, str], metrics=PAIR_METRICS):
    """Rows of the given metrics over pairs {(a, b): {metric: value}}: modes maps `reference`
    (the reference seed's pairs) and `all_pairs` (every pair, seeds resampled) to the mode
    written into the rows."""
    rows = []
    for metric in metrics:
        vals = {k: v[metric] for k, v in pairs.items()}
        if "reference" in modes:
            rows.append(metric_row(cell.key(target, metric, modes["reference"]),
                                   reference_summary(vals, cell.reference, cell.n_boot)))
        if "all_pairs" in modes:
            rows.append(metric_row(cell.key(target, metric, modes["all_pairs"]),
                                   pair_summary(vals, cell.sorted_seeds, cell.n_boot)))
    return rows


def rotation_rows(cell: CellContext, target: str, pairs: dict):
    """The rotation null (`chance_rotation`) and trained minus null, paired by pair, with the seed
    bootstrap interval (`minus_rotation`): the trained value exceeds the null where it excludes 0."""
    null = rotation_values(cell.seeds, target)
    rows = summarize(cell, target, null, {"all_pairs": "chance_rotation"}, ROTATION_METRICS)
    diff = {k: {m: pairs[k][m] - v[m] for m in ROTATION_METRICS} for k, v in null.items()}
    return rows + summarize(cell, target, diff, {"all_pairs": "minus_rotation"}, ROTATION_METRICS)


def _target_rows(cell: CellContext, target: str, per_run: dict) -> tuple[list[dict], dict]:
    """One target's pair metrics (both modes), its shuffle and rotation nulls; the pairs'
    values; per-run values against the reference added to per_run {run_id: {name: value}}."""
    pairs = aligned_pair_metrics(cell.seeds, target)
    rows = summarize(cell, target, pairs, BOTH)
    for (a, b), m in pairs.items():
        if cell.reference in (a, b):
            other = b if a == cell.reference else a
            per_run.setdefault(cell.seeds[other].run_id, {}).update(
                {f"vs_ref.{k}.{target}": v for k, v in m.items() if np.isfinite(v)})
    null = aligned_pair_metrics(cell.seeds, target, null_rng=np.random.default_rng(0))
    rows += summarize(cell, target, null, {"all_pairs": "chance_shuffle"})
    return rows + rotation_rows(cell, target, pairs), pairs


def cell_rows(cell: CellContext, tick=None):
    """Every metrics.csv row of one cell, per-run values against the reference, and per pair of
    seeds the PE (parameters) and, given the folded test labels, the barriers and paths;
    tick(1) after each pair's barriers (progress)."""
    rows, per_run, pe_pairs = [], {}, {}
    for target in TARGETS:
        r, pairs = _target_rows(cell, target, per_run)
        rows += r
        if target == "params":
            pe_pairs = {k: v["pe"] for k, v in pairs.items()}
    init = aligned_pair_metrics(cell.seeds, "params", epoch=0)  # independently initialised, untrained networks
    rows += summarize(cell, "params", init, {"all_pairs": "chance_init"})
    ch = chance_pe(next(iter(cell.seeds.values())).traj["W1"].shape[1])  # 1/H
    rows.append(metric_row(cell.key("params", "pe", "chance_uniform"), (ch, 0.0, ch, ch, 0)))
    rows += summarize(cell, "params", noise_values(cell.seeds, cell.lam, cell.lr),
                      {"all_pairs": "all_pairs"}, ("pe_noise",))
    rows += function_rows(cell)
    brows, barriers = barrier_rows(cell, tick)
    return rows + brows, per_run, {"pe": pe_pairs, **barriers}


def net_of(sd: SeedData, epoch: int = -1) -> dict:
    return {k: sd.traj[k][epoch].astype(np.float64) for k in ("W1", "b1", "W2", "b2")}


def barrier_rows(cell: CellContext, tick=None):
    """Target `barrier`: every matching's loss and error barrier on the test set, the agreement of
    the weight and paper matchings, and the yardstick `loss_barrier.same_run`, the barrier between
    a run's last two checkpoints (a pair gets the mean of its two runs'). Also returns the pairs'
    values and paths: {"barriers": {(a, b): metrics}, "paths": {(a, b): {method: (loss, err)}}}."""
    seeds, y = cell.seeds, cell.y
    if y is None or not all("z_prev" in seeds[s].extra for s in cell.sorted_seeds):
        return [], {}
    ends = {s: Endpoint(net_of(seeds[s]), seeds[s].extra["z"]["test"], seeds[s].extra["z"]["train"])
            for s in cell.sorted_seeds}
    same = {s: barrier(path(Endpoint(net_of(seeds[s], -2), seeds[s].extra["z_prev"]["test"]),
                            Endpoint(ends[s].net, ends[s].test), y)[0]) for s in cell.sorted_seeds}
    values, paths = {}, {}
    for a, b in itertools.combinations(cell.sorted_seeds, 2):
        values[(a, b)], paths[(a, b)] = pair_barriers(ends[a], ends[b], y)
        values[(a, b)]["loss_barrier.same_run"] = (same[a] + same[b]) / 2
        if tick:
            tick(1)
    rows = summarize(cell, "barrier", values, BOTH, BARRIER_METRICS)
    return rows, {"barriers": values, "paths": paths}


def function_rows(cell: CellContext):
    """Representation and function: CKA, prediction disagreement, accuracy spread, dead units."""
    rows, seeds, sorted_seeds = [], cell.seeds, cell.sorted_seeds
    pairs = list(itertools.combinations(sorted_seeds, 2))
    for mode, hk, pk in (("all_pairs", "h", "pred"), ("chance_init", "h0", "pred0")):
        get = lambda s, k: getattr(seeds[s], k)  # noqa: E731
        cka = {(a, b): linear_cka(get(a, hk), get(b, hk)) for a, b in pairs
               if get(a, hk) is not None and get(b, hk) is not None}
        dis = {(a, b): disagreement(get(a, pk), get(b, pk)) for a, b in pairs
               if get(a, pk) is not None and get(b, pk) is not None}
        for name, vals in (("cka", cka), ("disagreement", dis)):
            if vals:
                rows.append(metric_row(cell.key("function", name, mode), pair_summary(vals, sorted_seeds, cell.n_boot)))
    accs = np.array([seeds[s].test_acc for s in sorted_seeds])
    dead = np.array([near_dead(seeds[s].traj["W1"][-1]).sum() for s in sorted_seeds], float)
    w0 = np.array([init_correlation(seeds[s]) for s in sorted_seeds])
    for target, name, v in (("function", "test_acc", accs), ("params", "near_dead_units", dead),
                            ("grads", "corr_with_init", w0)):
        std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        rows.append(metric_row(cell.key(target, name, "seeds"),
                               (float(v.mean()), std, float(v.min()), float(v.max()), len(v))))
    return rows


def init_correlation(sd: SeedData) -> float:
    """Mean over units of Pearson(cumulative gradient row, initial W1 row). Near 1 where L1 drove
    the weights to about 0: the cumulative gradient is then (W0 - WT) / lr, about W0 / lr."""
    G, W0 = sd.traj["grad_W1"][-1].astype(np.float64), sd.traj["W1"][0].astype(np.float64)
    Gc, Wc = G - G.mean(1, keepdims=True), W0 - W0.mean(1, keepdims=True)
    den = np.sqrt((Gc * Gc).sum(1) * (Wc * Wc).sum(1))
    ok = den > 0
    return float(((Gc * Wc).sum(1)[ok] / den[ok]).mean()) if ok.any() else float("nan")


def epoch_rows(cell: CellContext) -> list[dict]:
    """Reference-mode APC-1 / APC-2 / PE at every recorded epoch, for parameters and gradients."""
    seeds, ref = cell.seeds, cell.reference
    E = min(s.traj["W1"].shape[0] for s in seeds.values())
    ref_pairs = [(min(ref, s), max(ref, s)) for s in sorted(seeds) if s != ref]
    out = []
    for target in ("params", "grads"):
        for e in range(E):
            # The cumulative gradient is zero at epoch 0: nothing to correlate, every metric NaN.
            pairs = aligned_pair_metrics(seeds, target, epoch=e, pairs=ref_pairs) if target == "params" or e else {}
            for metric in ("apc1", "apc2", "pe", "apc1_live", "pe_live"):
                vals = [v[metric] for v in pairs.values() if np.isfinite(v[metric])]
                out.append({"lambda": cell.lam, "classes": cell.classes, "target": target, "epoch": e,
                            "metric": metric, "mean": float(np.mean(vals)) if vals else float("nan")})
    return out
