"""The decomposition of the spread: pair classes, the two-seed bootstrap, variance components."""
import itertools

import numpy as np
import pytest

from underspec.settings import RunSpec
from underspec.sources import acc_components, classify, pair_class, seed_bootstrap


def R(i, o, j=0):
    return RunSpec(i, 0.0, 10, order_seed=o, jitter=j)


@pytest.mark.parametrize("a,b,cls", [
    (R(0, 0), R(0, 0, 1), "jitter"), (R(3, 5, 1), R(3, 5, 2), "jitter"),
    (R(0, 0), R(0, 1), "order"), (R(0, 1), R(2, 1), "init"), (R(0, 0), R(1, 1), "init+order"),
    (R(0, 0, 1), R(0, 1), None), (R(0, 0, 1), R(1, 1, 1), None)])
def test_a_pair_is_classed_by_what_differs(a, b, cls):
    assert pair_class(a, b) == cls and pair_class(b, a) == cls


def test_every_pair_of_a_full_grid_is_classed_once():
    runs = [R(i, o, j) for i in range(3) for o in range(3) for j in (0, 1)]
    got = classify(runs)
    assert {k: len(v) for k, v in got.items()} == {"jitter": 9, "order": 9, "init": 9, "init+order": 18}


def slow_bootstrap(values, n_boot, rng_seed=0):
    """The same draws as seed_bootstrap, written as explicit multisets of seeds."""
    runs = sorted({r for p in values for r in p})
    inits, orders = sorted({r.seed for r in runs}), sorted({r.order for r in runs})
    rng = np.random.default_rng(rng_seed)
    ci = rng.multinomial(len(inits), [1 / len(inits)] * len(inits), size=n_boot)
    co = rng.multinomial(len(orders), [1 / len(orders)] * len(orders), size=n_boot)
    out = []
    for b in range(n_boot):
        num = den = 0.0
        for (a, c), v in values.items():  # each copy of a's seeds x each copy of c's seeds
            w = ci[b, inits.index(a.seed)] * co[b, orders.index(a.order)] * \
                ci[b, inits.index(c.seed)] * co[b, orders.index(c.order)]
            num, den = num + w * v, den + w
        if den:
            out.append(num / den)
    return np.percentile(out, [2.5, 97.5])


def test_the_two_seed_bootstrap_against_an_explicit_loop():
    rng = np.random.default_rng(1)
    runs = [R(i, o) for i in range(4) for o in range(3)]
    values = {(a, b): float(rng.random()) for a, b in itertools.combinations(runs, 2) if pair_class(a, b) == "init"}
    mean, std, lo, hi, n = seed_bootstrap(values, 300)
    assert n == len(values) and mean == pytest.approx(np.mean(list(values.values())))
    assert (lo, hi) == pytest.approx(tuple(slow_bootstrap(values, 300)))
    assert lo <= mean <= hi


def test_variance_components_recover_planted_effects():
    rng = np.random.default_rng(0)
    init_fx, order_fx = rng.normal(0, 0.02, 30), rng.normal(0, 0.005, 30)
    acc = {R(i, o): 0.9 + init_fx[i] + order_fx[o] for i in range(30) for o in range(30)}
    acc.update({R(k.seed, k.order, 1): v + 0.001 for k, v in list(acc.items())})  # each run, nudged
    comps = acc_components(acc)
    assert comps["var_init"] == pytest.approx(np.var(init_fx, ddof=1), rel=1e-9)
    assert comps["var_order"] == pytest.approx(np.var(order_fx, ddof=1), rel=1e-9)
    assert comps["var_interaction"] == pytest.approx(0, abs=1e-12)  # additive: no interaction
    assert comps["var_jitter"] == pytest.approx(0.001 ** 2 / 2)
