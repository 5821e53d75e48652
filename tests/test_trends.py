"""The trend tests: one seed bootstrap shared by every cell, fixed contrasts, honest verdicts."""
import itertools

import numpy as np

from underspec.measures.metrics import pair_matrix
from underspec.measures.trends import boot_cell_means, trend_rows, verdict

SEEDS = [0, 42, 1337, 3213, 9999, 5783, 1023]
LAMS = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)


def grid(pe_of, noise=0.0, seed=0):
    """{(lambda, C): {(a, b): PE}} from a function of the cell, plus pair noise."""
    rng = np.random.default_rng(seed)
    return {(lam, C): {(a, b): pe_of(lam, C) + noise * rng.normal() for a, b in itertools.combinations(SEEDS, 2)}
            for lam in LAMS for C in range(2, 11)}


def by_name(rows):
    return {r["contrast"]: r for r in rows}


def test_a_clear_rise_with_c_and_a_peak_at_0005_are_found():
    peak = {0.0: 0.20, 0.001: 0.25, 0.0025: 0.27, 0.005: 0.30, 0.01: 0.24, 0.05: 0.10}
    rows, argmax = trend_rows(grid(lambda lam, C: peak[lam] + 0.02 * C, noise=0.01), SEEDS, n_boot=500)
    r = by_name(rows)
    assert r["pe_rises_with_C"]["verdict"] == "agree" and abs(r["pe_rises_with_C"]["estimate"] - 0.02) < 0.002
    assert r["pe_rises_with_lambda"]["verdict"] == "agree" and r["pe_falls_at_large_lambda"]["verdict"] == "agree"
    assert all(r[f"pe_at_0.005_minus_{o!r}"]["verdict"] == "agree" for o in LAMS if o != 0.005)
    assert r["pe_at_0.001_minus_0.005"]["verdict"] == "disagree"
    assert argmax[0.005] > 0.9 and abs(sum(argmax.values()) - 1) < 1e-9


def test_pure_noise_gives_cannot_tell_not_a_verdict():
    rows, _ = trend_rows(grid(lambda lam, C: 0.25, noise=0.15, seed=3), SEEDS, n_boot=500)
    r = by_name(rows)
    assert r["pe_rises_with_C"]["verdict"] == "cannot tell at 7 seeds"
    assert sum(x["verdict"] in ("agree", "disagree") for x in rows) <= 2  # 11 contrasts at the 5% level


def test_c2_never_enters_and_a_difference_below_the_noise_floor_is_a_tie():
    cells = grid(lambda lam, C: 0.3 if C > 2 else 0.9)
    rows, _ = trend_rows(cells, SEEDS, n_boot=200, noise=0.01)
    assert {r["verdict"] for r in rows} == {"tie"}  # every contrast is exactly 0 once C = 2 is out
    assert verdict(0.01, 0.05, +1, 0.0, 7)[0] == "agree"
    assert verdict(-0.05, -0.01, +1, 0.0, 7)[0] == "disagree"
    assert verdict(-0.01, 0.05, +1, 0.0, 7)[0] == "cannot tell at 7 seeds"
    assert verdict(-0.03, 0.04, +1, 0.0055, 7)[0] == "cannot tell at 7 seeds"  # small, but not shown small
    assert verdict(-0.004, 0.005, +1, 0.0055, 7)[0] == "tie"  # the whole interval within the margin


def test_every_cell_shares_the_seed_resamples_and_the_first_entry_is_observed():
    vals = {(a, b): float(a + b) for a, b in itertools.combinations(SEEDS, 2)}
    means = boot_cell_means({(0.0, 3): vals, (0.1, 3): dict(vals)}, SEEDS, n_boot=100)
    assert np.array_equal(means[(0.0, 3)], means[(0.1, 3)])
    assert means[(0.0, 3)][0] == np.mean(list(vals.values()))
    V = pair_matrix(vals, SEEDS)
    assert np.isnan(np.diag(V)).all() and V[0, 1] == V[1, 0] == 42.0


def test_within_cell_spearman_removes_cell_effects_and_finds_a_pair_level_link():
    from underspec.measures.trends import within_cell_spearman

    rng = np.random.default_rng(0)
    pairs = list(itertools.combinations(SEEDS, 2))
    x, y_same, y_cell = {}, {}, {}
    for k, cell in enumerate([(0.0, 3), (0.01, 5), (0.05, 10)]):
        v = {p: rng.normal() + 10 * k for p in pairs}  # cells far apart: a pooled raw correlation would be ~1
        x[cell] = v
        y_same[cell] = {p: -2 * v[p] + 0.1 * rng.normal() for p in pairs}  # lower y where x is higher, within cells
        y_cell[cell] = {p: 10 * k + rng.normal() for p in pairs}  # only the cell effect in common
    rho, lo, hi = within_cell_spearman(x, y_same, SEEDS, n_boot=200)
    assert rho < -0.9 and hi < 0
    rho, lo, hi = within_cell_spearman(x, y_cell, SEEDS, n_boot=200)
    assert lo < 0 < hi and abs(rho) < 0.3
