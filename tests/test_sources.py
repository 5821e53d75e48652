"""The decomposition of the spread: pair classes, the two-seed bootstrap, variance components."""
import itertools

import numpy as np
import pytest

from underspec.measures.sources import (
    acc_components,
    pair_kind,
    pairs_by_kind,
    seed_bootstrap,
    seed_weights,
    share_bootstrap,
)
from underspec.spec.settings import RunSpec


def R(i, o, j=0):
    return RunSpec(i, 0.0, 10, order_seed=o, jitter=j)


@pytest.mark.parametrize("a,b,cls", [
    (R(0, 0), R(0, 0, 1), "jitter"), (R(3, 5, 1), R(3, 5, 2), "jitter"),
    (R(0, 0), R(0, 1), "order"), (R(0, 1), R(2, 1), "init"), (R(0, 0), R(1, 1), "init+order"),
    (R(0, 0, 1), R(0, 1), None), (R(0, 0, 1), R(1, 1, 1), None)])
def test_a_pair_is_classed_by_what_differs(a, b, cls):
    assert pair_kind(a, b) == cls and pair_kind(b, a) == cls


def test_every_pair_of_a_full_grid_is_classed_once():
    runs = [R(i, o, j) for i in range(3) for o in range(3) for j in (0, 1)]
    got = pairs_by_kind(runs)
    assert {k: len(v) for k, v in got.items()} == {"jitter": 9, "order": 9, "init": 9, "init+order": 18}


def slow_bootstrap(values, n_boot, rng_seed=0):
    """The same draws as seed_bootstrap, written as explicit multisets of seeds."""
    runs = sorted({r for p in values for r in p})
    inits, orders = sorted({r.seed for r in runs}), sorted({r.order_seed for r in runs})
    rng = np.random.default_rng(rng_seed)
    ci = rng.multinomial(len(inits), [1 / len(inits)] * len(inits), size=n_boot)
    co = rng.multinomial(len(orders), [1 / len(orders)] * len(orders), size=n_boot)
    out = []
    for b in range(n_boot):
        num = den = 0.0
        for (a, c), v in values.items():  # each copy of a's seeds x each copy of c's seeds
            w = ci[b, inits.index(a.seed)] * co[b, orders.index(a.order_seed)] * \
                ci[b, inits.index(c.seed)] * co[b, orders.index(c.order_seed)]
            num, den = num + w * v, den + w
        if den:
            out.append(num / den)
    return np.percentile(out, [2.5, 97.5])


def test_the_two_seed_bootstrap_against_an_explicit_loop():
    rng = np.random.default_rng(1)
    runs = [R(i, o) for i in range(4) for o in range(3)]
    values = {(a, b): float(rng.random()) for a, b in itertools.combinations(runs, 2) if pair_kind(a, b) == "init"}
    mean, std, lo, hi, n = seed_bootstrap(values, 300)
    assert n == len(values) and mean == pytest.approx(np.mean(list(values.values())))
    assert (lo, hi) == pytest.approx(tuple(slow_bootstrap(values, 300)))
    assert lo <= mean <= hi


def kinds_of(runs, rng):
    """{kind: {pair: value}} with random values, for every kind of pair among `runs`."""
    return {k: {p: float(rng.random()) for p in ps} for k, ps in pairs_by_kind(runs).items() if ps}


def mean_of(d):
    return float(np.mean(list(d.values())))


def draw_mean(d, w, b):
    """The weighted mean of pair values in draw b, nan when the draw holds none of the pairs."""
    weights = [w[a][b] * w[c][b] for a, c in d]
    return sum(x * v for x, v in zip(weights, d.values(), strict=True)) / sum(weights) if sum(weights) else float("nan")


def test_a_share_resamples_its_numerator_and_denominator_jointly():
    """The share's interval is the ratio's, draw by draw: the numerator and denominator seen through
    the same seeds (an explicit loop over draws), not the denominator's interval alone."""
    rng = np.random.default_rng(2)
    runs = [R(i, o) for i in range(4) for o in range(4)]
    vals, n_boot = kinds_of(runs, rng), 400
    w = seed_weights(runs, n_boot, 0)
    share, std, lo, hi, n = share_bootstrap(vals["order"], vals["init+order"], lambda v: 1 - v, w)
    assert share == pytest.approx((1 - mean_of(vals["order"])) / (1 - mean_of(vals["init+order"])))
    assert n == len(vals["order"])
    ratios = []
    for b in range(n_boot):
        num, den = draw_mean(vals["order"], w, b), draw_mean(vals["init+order"], w, b)
        if num == num and den == den:
            ratios.append((1 - num) / (1 - den))
    assert (lo, hi) == pytest.approx(tuple(np.percentile(ratios, [2.5, 97.5])))
    assert lo < share < hi and np.isnan(std)


def test_a_share_scales_with_its_numerator_and_of_a_kind_by_itself_is_one():
    rng = np.random.default_rng(3)
    runs = [R(i, o) for i in range(3) for o in range(3)]
    vals = kinds_of(runs, rng)
    w = seed_weights(runs, 200, 0)
    one = share_bootstrap(vals["init"], vals["init+order"], lambda v: v, w)
    two = share_bootstrap({p: 2 * v for p, v in vals["init"].items()}, vals["init+order"], lambda v: v, w)
    assert two[:4:2] == pytest.approx(tuple(2 * x for x in one[:4:2])) and two[3] == pytest.approx(2 * one[3])
    assert share_bootstrap(vals["init"], vals["init"], lambda v: v, w)[:4:2] == pytest.approx((1, 1))
    assert np.isnan(share_bootstrap(vals["init"], {p: 0.0 for p in vals["init"]}, lambda v: v, w)[0])  # a share of 0


def test_variance_components_recover_planted_effects():
    rng = np.random.default_rng(0)
    init_fx, order_fx = rng.normal(0, 0.02, 30), rng.normal(0, 0.005, 30)
    acc = {R(i, o): 0.9 + init_fx[i] + order_fx[o] for i in range(30) for o in range(30)}
    acc.update({R(k.seed, k.order_seed, 1): v + 0.001 for k, v in list(acc.items())})  # each run, nudged
    comps = acc_components(acc)
    assert comps["var_init"] == pytest.approx(np.var(init_fx, ddof=1), rel=1e-9)
    assert comps["var_order"] == pytest.approx(np.var(order_fx, ddof=1), rel=1e-9)
    assert comps["var_interaction"] == pytest.approx(0, abs=1e-12)  # additive: no interaction
    assert comps["var_jitter"] == pytest.approx(0.001 ** 2 / 2)


def test_a_sweep_over_seeds_axes_and_panels_is_analyzed_end_to_end(tracking, tiny_root, tmp_path):
    """init seeds x order seeds x jitter, two widths x two learning rates, one lambda and C: one
    report per panel with the pair classes, and the panels side by side over hidden x lr."""
    from underspec.reporting.panels import varied
    from underspec.spec.config import SweepConfig
    from underspec.steps.analyze import run_analysis
    from underspec.steps.sweep import run_sweep

    from helpers.stores import analyze_cfg, read_rows

    cfg = SweepConfig(name="small", seeds=(), init_seeds=(0, 1), order_seeds=(0, 1), jitters=(0, 1), lambdas=(0.0,),
                      classes=(3,), hidden=(8, 16), lr=(0.01, 0.05), epochs=1, probe_size=30, workers=1,
                      analyze=False, data_dir=str(tiny_root), storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert run_sweep(cfg) == 2 * 2 * 2 * 2 * 2
    assert run_analysis(analyze_cfg(tmp_path, tiny_root)) == 0
    out = tmp_path / "reports" / "small"
    for panel in ("h8-lr0.01-b64", "h8-lr0.05-b64", "h16-lr0.01-b64", "h16-lr0.05-b64"):
        rows = read_rows(out / panel / "metrics.csv")
        got = {(r["metric"], r["mode"]): int(r["n_pairs"]) for r in rows if r["mode"].startswith("pairs_")}
        # 2 x 2 seeds x 2 jitters: 4 jitter pairs, 2 order, 2 init, 2 init+order (jitter 0)
        assert got[("apc1", "pairs_jitter")] == 4 and got[("apc1", "pairs_order")] == 2
        assert got[("apc1", "pairs_init")] == 2 and got[("apc1", "pairs_init+order")] == 2
        shares = {(r["metric"], r["mode"]): r for r in rows if r["metric"].startswith("share.")}
        assert {m for m, _ in shares} == {"share.disagreement", "share.1-cka", "share.1-pe"}
        assert {k for _, k in shares} == {"pairs_jitter", "pairs_order", "pairs_init"}
        assert {r["interval"] for r in shares.values()} == {"bootstrap_95"}
        assert (out / panel / "figures" / "sources.png").is_file()
        assert "Where does the spread come from?" in (out / panel / "report.md").read_text()
    panel_rows = read_rows(out / "panels.csv")
    assert {(r["hidden"], r["lr"]) for r in panel_rows} == {(h, lr) for h in ("8", "16") for lr in ("0.01", "0.05")}
    assert varied([{**r} for r in panel_rows]) == ["hidden", "lr"]
    assert (out / "figures" / "panels.png").is_file() and "| 16 | 0.05 | 64 |" in (out / "report.md").read_text()
