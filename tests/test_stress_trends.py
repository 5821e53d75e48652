"""The stress trends: contrasts pooled over shifts with a test-set tie margin, the pooled noise
floor of a contrast, and the pair-level link of stress disagreement to PE and the barrier."""
import itertools

import numpy as np

from underspec.measures.stress_trends import (
    StressCell,
    image_noise,
    stress_cell,
    stress_link_rows,
    stress_trend_rows,
)
from underspec.measures.trends import Contrast, by_lambda, group_mean, minus, slope_in_c

SEEDS = [0, 1, 2, 3, 4, 5, 6]
CELLS = [(lam, C) for lam in (0.0, 0.01, 0.05) for C in (2, 5, 10)]


def cell(spread: float, rng, shifts: int = 4, sigma: float = 0.001) -> StressCell:
    """A cell whose seeds' accuracies scatter by `spread` around 0.8 on each shift; its statistics
    move by sigma, independently of other cells, over resamples of the test images."""
    acc = 0.8 + spread * rng.normal(size=(shifts, len(SEEDS)))
    dis = {p: np.full(shifts, 2 * spread + 0.01 * rng.random()) for p in itertools.combinations(SEEDS, 2)}
    return StressCell(SEEDS, acc, dis, {s: spread + sigma * rng.normal(size=100) for s in ("acc_std", "disagreement")})


def by_name(rows):
    return {r["contrast"]: r for r in rows}


def test_a_spread_that_falls_with_lambda_is_found_and_a_flat_one_is_not():
    rng = np.random.default_rng(0)
    falling = {c: cell({0.0: 0.02, 0.01: 0.01, 0.05: 0.005}[c[0]], rng) for c in CELLS}
    r = by_name(stress_trend_rows(falling, n_boot=300))
    assert r["acc_std_falls_with_lambda"]["verdict"] == "agree"
    assert r["acc_std_at_0.05_minus_0.0"]["verdict"] == "agree"
    assert r["disagreement_falls_with_lambda"]["verdict"] == "agree"
    flat = {c: cell(0.01, rng, sigma=0.02) for c in CELLS}  # a test-set noise far above any difference
    r = by_name(stress_trend_rows(flat, n_boot=300))
    assert all(x["verdict"] in ("tie", "cannot tell at 7 seeds") for x in r.values())
    assert r["acc_std_falls_with_C"]["verdict"] == "tie"


def test_test_set_noise_that_cells_share_cancels_in_a_contrast():
    rng = np.random.default_rng(4)
    shared = 0.02 * rng.normal(size=100)  # every cell reads the same images: their noise moves together
    cells = {}
    for c in CELLS:
        base = cell({0.0: 0.02, 0.01: 0.019, 0.05: 0.018}[c[0]], rng)
        cells[c] = StressCell(base.seeds, base.acc, base.dis, {s: 0.01 + shared for s in ("acc_std", "disagreement")})
    r = by_name(stress_trend_rows(cells, n_boot=200))
    assert r["acc_std_falls_with_lambda"]["tie_margin"] < 1e-12  # the shared noise is counted once: it cancels
    independent = {c: cell(0.01, rng, sigma=0.02) for c in CELLS}
    assert by_name(stress_trend_rows(independent, n_boot=200))["acc_std_falls_with_lambda"]["tie_margin"] > 0.01


def test_a_contrast_pools_the_noise_floor_of_its_cells():
    cells = [(lam, C) for lam in (0.0, 0.01) for C in range(3, 11)]
    t = Contrast("x", minus(by_lambda(cells, 0.01), by_lambda(cells, 0.0)), +1)
    sigma = dict.fromkeys(cells, 0.01)
    assert abs(t.floor(sigma) - 0.01 * np.sqrt(2 / 8)) < 1e-12  # two means of 8 cells each
    rng = np.random.default_rng(1)
    means = {c: rng.normal(size=5) for c in cells}
    by_c = np.array([np.mean([means[(lam, C)] for lam in (0.0, 0.01)], 0) for C in range(3, 11)])
    x = np.arange(3, 11) - 6.5
    assert np.allclose(Contrast("s", slope_in_c(cells), +1).of(means), (x[:, None] * by_c).sum(0) / (x * x).sum())
    assert np.allclose(Contrast("m", group_mean(cells), +1).of(means), np.mean(list(means.values()), 0))


def test_the_test_set_noise_of_a_disagreement_is_its_binomial_error():
    rng = np.random.default_rng(2)
    n, d = 10_000, 0.1
    differ = rng.random((1, 1, n)) < d  # one shift, one pair
    correct = rng.random((1, 3, n)) < 0.9
    draws = image_noise(correct, differ, draws=400)
    expect = np.sqrt(d * (1 - d) / n)
    assert draws["disagreement"].shape == (400,) and abs(draws["disagreement"].std(ddof=1) / expect - 1) < 0.2
    same = np.repeat(correct[:, :1], 3, 1)  # three identical seeds: no spread under any resample
    assert np.abs(image_noise(same, differ)["acc_std"]).max() < 1e-6  # float32 sums: 0 up to rounding


def test_stress_cell_reads_predictions_per_shift_and_leaves_out_the_identity():
    y = np.array([0, 1, 2, 0])
    preds = {"identity": np.array([[0, 1, 2, 0], [0, 1, 2, 0]]), "noise": np.array([[0, 1, 2, 1], [0, 0, 2, 1]])}
    sc = stress_cell([3, 7], preds, y)
    assert sc.acc.shape == (1, 2) and np.allclose(sc.acc[0], [0.75, 0.5])
    assert list(sc.dis) == [(3, 7)] and np.allclose(sc.dis[(3, 7)], [0.25])


def test_pairs_that_align_better_disagree_less_under_shift():
    rng = np.random.default_rng(3)
    cells, pe, bar = {}, {}, {}
    for k, c in enumerate(CELLS):
        pe[c] = {p: rng.random() + k for p in itertools.combinations(SEEDS, 2)}  # cells far apart
        bar[c] = {p: {"loss_barrier.weight": -v + 0.01 * rng.normal()} for p, v in pe[c].items()}
        dis = {p: np.array([1 - v + 0.01 * rng.normal(), 2 - v]) for p, v in pe[c].items()}
        cells[c] = StressCell(SEEDS, np.zeros((2, 7)), dis, {"acc_std": np.zeros(9), "disagreement": np.zeros(9)})
    pe = {c: v for c, v in pe.items() if c[1] >= 3}
    r = by_name(stress_link_rows(cells, pe, bar, n_boot=200))
    assert r["stress_disagreement_vs_pe"]["estimate"] < -0.9 and r["stress_disagreement_vs_pe"]["verdict"] == "agree"
    assert r["stress_disagreement_vs_loss_barrier"]["estimate"] > 0.9
