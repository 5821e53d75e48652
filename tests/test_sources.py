"""The decomposition of the spread: pair classes, the two-seed bootstrap, variance components."""
import itertools

import numpy as np
import pytest

from underspec.measures.sources import acc_components, pair_kind, pairs_by_kind, seed_bootstrap
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
        assert (out / panel / "figures" / "sources.png").is_file()
        assert "Where does the spread come from?" in (out / panel / "report.md").read_text()
    panel_rows = read_rows(out / "panels.csv")
    assert {(r["hidden"], r["lr"]) for r in panel_rows} == {(h, lr) for h in ("8", "16") for lr in ("0.01", "0.05")}
    assert varied([{**r} for r in panel_rows]) == ["hidden", "lr"]
    assert (out / "figures" / "panels.png").is_file() and "| 16 | 0.05 | 64 |" in (out / "report.md").read_text()
