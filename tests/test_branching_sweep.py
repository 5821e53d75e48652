"""A branched sweep end to end on real MNIST: 2 parents x k in {0, 1, 2} x 2 post-branch seeds,
lambdas {0, 0.01}, C 3, 3 epochs; its children's params, tags and names, its `stability` rows,
and the stability epoch on synthetic barrier curves."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from underspec import tracking as trk
from underspec.measures.sources import acc_components, pair_kind
from underspec.measures.stability import (
    METRICS,
    CellStability,
    cell_stability,
    draws,
    stability_epoch,
    stability_rows,
)
from underspec.measures.targets import SeedData
from underspec.spec.config import SweepConfig
from underspec.spec.settings import RunSettings, RunSpec, config_hash, spec_of_params

from helpers.stores import analyze_cfg

pytestmark = pytest.mark.slow


@pytest.fixture()
def branched(tracking, mnist_root, tmp_path):
    from underspec.steps.analyze import run_analysis
    from underspec.steps.sweep import run_sweep

    cfg = SweepConfig(name="small", init_seeds=(0, 1), order_seeds=(0,), branch_epochs=(0, 1, 2),
                      branch_order_seeds=(3, 4), lambdas=(0.0, 0.01), classes=(3,), epochs=3, probe_size=30,
                      workers=1, analyze=False, data_dir=str(mnist_root), storage=f"sqlite:///{tmp_path / 'o.db'}")
    run_sweep(cfg)
    assert run_analysis(analyze_cfg(tmp_path, mnist_root)) == 0
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    with open(tmp_path / "reports" / "small" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return tracking, exp, cfg, rows, tmp_path / "reports" / "small"


def test_a_branched_sweep_names_its_children_and_reports_every_k(branched):
    client, exp, cfg, rows, out = branched
    runs = client.search_runs([exp], "tags.`underspec.role` = 'train'")
    assert len(runs) == 2 * 3 * 2 * 2
    for r in runs:
        spec, p, name = spec_of_params(r.data.params), r.data.params, r.info.run_name
        if spec.branched:  # k 1 and 2: both order seeds and the branch epoch, the parent's hash
            assert (p["order_seed"], p["branch_epoch"], p["branch_order_seed"]) == \
                ("0", str(spec.branch), str(spec.branch_seed))
            assert name.endswith(f"-k{spec.branch}-post{spec.branch_seed}")
            assert r.data.tags[trk.TAG_PARENT_HASH] == config_hash(spec.parent, RunSettings(3, 30))
        else:  # k = 0: the run (parent init, order = post seed), nothing of a branch
            assert spec.order_seed in (3, 4) and "branch_epoch" not in p and trk.TAG_PARENT_HASH not in r.data.tags
    for lam in ("0.0", "0.01"):
        got = {r["metric"] for r in rows if r["target"] == "stability" and r["lambda"] == lam}
        for k in (0, 1, 2):
            for m in ("error_barrier.identity", "loss_barrier.weight", "disagreement", "pe", "cka"):
                assert f"{m}.k{k}" in got, (lam, m, k)
        assert "stability_epoch" in got
    one = [r for r in rows if r["metric"] == "error_barrier.identity.k1" and r["lambda"] == "0.01"][0]
    assert one["mode"] == "children" and one["n_pairs"] == "2"
    assert one["interval"] == "min_max"  # two parents: their range, not a bootstrap interval
    assert (out / "figures" / "stability.png").stat().st_size > 10000
    assert "When is the basin decided?" in (out / "report.md").read_text()
    assert not any(r["mode"].startswith("pairs_") and r["metric"] == "pe" and r["n_pairs"] == "0" for r in rows)


def test_the_parents_run_id_is_tagged_where_the_parent_is_in_the_store(tracking):
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    child, s = RunSpec(1, 0.0, 3, order_seed=0, branch=2, branch_seed=4), RunSettings(3, 30)
    assert trk.TAG_PARENT_RUN not in trk.runs.branch_tags(tracking, exp, child, s)
    run = tracking.create_run(exp, tags={trk.TAG_HASH: config_hash(child.parent, s)})
    tracking.set_terminated(run.info.run_id, "FINISHED")
    assert trk.runs.branch_tags(tracking, exp, child, s)[trk.TAG_PARENT_RUN] == run.info.run_id


def test_branched_runs_enter_no_sources_pair_and_no_paper_comparison():
    from underspec.steps.analyze import paper_runs

    a, b = RunSpec(0, 0.0, 3, branch=2, branch_seed=4), RunSpec(1, 0.0, 3, branch=2, branch_seed=4)
    assert a.one_seed and b.one_seed  # children of one-seed parents: the paper's filter alone passes them
    assert pair_kind(a, b) is None and pair_kind(a, RunSpec(1, 0.0, 3)) is None
    assert pair_kind(RunSpec(0, 0.0, 3), RunSpec(1, 0.0, 3)) == "init+order"
    assert paper_runs([a, b, RunSpec(2, 0.0, 3), RunSpec(3, 0.0, 3, jitter=1)]) == {2: RunSpec(2, 0.0, 3)}


@pytest.mark.parametrize("curve,want", [
    ({0: 0.09, 1: 0.05, 2: 0.019, 3: 0.01, 5: 0.0}, 2),  # falls below 0.02 at k = 2 and stays
    ({0: 0.09, 1: 0.01, 2: 0.03, 3: 0.01, 5: 0.0}, 3),  # dips at 1, rises at 2: from 3 on
    ({0: 0.09, 1: 0.05, 2: 0.04, 3: 0.03, 5: 0.021}, math.inf),  # never
    ({0: 0.0, 1: np.nan, 2: 0.0}, 2),  # an undefined bound does not qualify
])
def test_the_stability_epoch_of_synthetic_barrier_curves(curve, want):
    assert stability_epoch(curve) == want


def test_families_group_children_by_parent_and_k_with_the_k0_runs():
    from underspec.measures.stability import families

    parents = [RunSpec(p, 0.0, 3, order_seed=0) for p in (0, 1)]
    kids = [RunSpec(p.seed, 0.0, 3, order_seed=0, branch=k, branch_seed=q) for p in parents for k in (1, 2)
            for q in (3, 4)]
    zero = [RunSpec(p.seed, 0.0, 3, order_seed=q) for p in parents for q in (3, 4)]
    unrelated = [RunSpec(0, 0.0, 3, order_seed=7), RunSpec(5, 0.0, 3)]
    fam = families(kids + zero + unrelated + parents)
    assert sorted((p.seed, k) for p, k in fam) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert fam[(parents[1], 0)] == [RunSpec(1, 0.0, 3, order_seed=3), RunSpec(1, 0.0, 3, order_seed=4)]
    assert all(len(v) == 2 for v in fam.values())
    assert families(zero + unrelated) == {}  # no branched run: no family


def fake_run(rng, H=4, D=12, C=3, N=40) -> SeedData:
    """A random network's SeedData, as the analysis loads it (weights over 2 epochs, test
    pre-activations on N random images, predictions, probe embeddings)."""
    X = rng.normal(size=(N, D)).astype(np.float32)
    t = {"W1": rng.normal(size=(2, H, D)).astype(np.float32), "b1": np.zeros((2, H), np.float32),
         "W2": rng.normal(size=(2, C, H)).astype(np.float32), "b2": np.zeros((2, C), np.float32)}
    z = X @ t["W1"][-1].T
    return SeedData("r", t, h=z.astype(np.float64), pred=(np.maximum(z, 0) @ t["W2"][-1].T).argmax(1),
                    extra={"z": {"test": z}})


def test_parents_that_share_an_init_seed_are_told_apart():
    """Two order seeds per init seed: four parents, each with its own value (none overwrites
    another), and the bootstrap resamples four."""
    rng = np.random.default_rng(0)
    runs = {RunSpec(i, 0.0, 3, order_seed=o, branch=1, branch_seed=q): fake_run(rng)
            for i in (0, 1) for o in (0, 1) for q in (5, 6)}
    cs = cell_stability(runs, rng.integers(0, 3, 40))
    per = cs.values["error_barrier.identity"][1]
    assert sorted(per) == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)] and cs.pairs == {1: 4}
    rows = stability_rows(0.0, 3, cs, sorted(per), draws(sorted(per), 50), [1])
    row = [r for r in rows if r["metric"] == "error_barrier.identity.k1"][0]
    assert row["mean"] == pytest.approx(np.mean(list(per.values())))


def test_a_k_a_cell_lacks_does_not_count_as_stable():
    parents = [(0, 0, 0), (1, 0, 0)]
    values = {m: {0: dict.fromkeys(parents, 0.0)} for m in METRICS}
    cs = CellStability(values, {0: 2})
    epoch = lambda studied: [r for r in stability_rows(0.0, 3, cs, parents, draws(parents, 50), studied)  # noqa: E731
                             if r["metric"] == "stability_epoch"][0]["mean"]
    assert epoch([0]) == 0 and epoch([0, 5]) == math.inf


@pytest.mark.parametrize("n_parents", [3, 4])
def test_three_parents_give_their_range_labelled_so_four_a_bootstrap(n_parents):
    """A percentile bootstrap over 3 parents is their range (each parent drawn 3 times: 1/27 >
    2.5%): the rows say min_max and hold the smallest and largest parent's value exactly."""
    from underspec.measures.results import with_interval

    parents = [(i, 0, 0) for i in range(n_parents)]
    values = {m: {0: {p: 0.001 * (i + 1) for i, p in enumerate(parents)}} for m in METRICS}
    rows = with_interval(stability_rows(0.0, 3, CellStability(values, {0: 3 * n_parents}), parents,
                                        draws(parents, 1000), [0]))
    row = [r for r in rows if r["metric"] == "error_barrier.identity.k0"][0]
    if n_parents == 3:
        assert row["interval"] == "min_max" and (row["ci_low"], row["ci_high"]) == (0.001, 0.003)
    else:
        assert row["interval"] == "bootstrap_95" and 0.001 < row["ci_low"] < row["ci_high"] < 0.004


def test_the_variance_components_leave_branched_runs_out():
    plain = {RunSpec(i, 0.0, 3, order_seed=o): float(i + 2 * o) for i in (0, 1) for o in (0, 1)}
    kids = {RunSpec(i, 0.0, 3, order_seed=0, branch=1, branch_seed=9): 100.0 for i in (0, 1)}
    assert acc_components({**plain, **kids}) == acc_components(plain)


def test_the_decay_contrast_sees_a_barrier_that_falls_with_k():
    from underspec.measures.stability import stability_trend_rows

    parents = [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    falls = {0: {p: 0.10 + 0.01 * i for i, p in enumerate(parents)}, 5: dict.fromkeys(parents, 0.0)}
    flat = {0: dict.fromkeys(parents, 0.001), 5: dict.fromkeys(parents, 0.001)}
    by_cell = {(0.0, 5): CellStability({"error_barrier.identity": falls}, {0: 3, 5: 3}),
               (0.0, 10): CellStability({"error_barrier.identity": flat}, {0: 3, 5: 3})}
    rows = {r["contrast"]: r for r in stability_trend_rows(by_cell, parents, draws(parents, 200))}
    assert rows["barrier_k5_minus_k0_C5"]["estimate"] == pytest.approx(-0.11)
    assert rows["barrier_k5_minus_k0_C5"]["verdict"] == "agree"
    assert rows["barrier_k5_minus_k0_C10"]["verdict"] == "tie"
    assert rows["barrier_k5_minus_k0"]["estimate"] == pytest.approx(-0.055)
