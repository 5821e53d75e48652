"""Branched runs (instability analysis): a child trains its parent's first k epochs, then the
post-branch order seed's stream. Real MNIST, its first 6,400 training images (100 steps an epoch)
and 2,000 test images, a few epochs: the identities are bitwise, so short runs show them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from underspec.spec.config import ConfigError, SweepConfig, TrainConfig
from underspec.spec.grids import grid_points, search_space, trial_params, trial_spec
from underspec.spec.settings import RunSpec, canonical, config_hash, run_name
from underspec.training.data import MNISTTensors
from underspec.training.engine import PARAMS, EngineSettings, groups, train_group, train_many
from underspec.training.plain import train_plain

E = 4
S = EngineSettings(epochs=E, probe_size=20, device="cpu")
TOL = 1e-5


@pytest.fixture(scope="module")
def small(mnist) -> MNISTTensors:
    return MNISTTensors(mnist.train_x[:6400], mnist.train_y[:6400], mnist.test_x[:2000], mnist.test_y[:2000])


def same(a, b) -> bool:
    return all(np.array_equal(a.trajectory[k], b.trajectory[k]) for k in a.trajectory) and \
        np.array_equal(a.embeddings["h"], b.embeddings["h"]) and \
        all(np.array_equal(a.metrics[k], b.metrics[k]) for k in a.metrics)


def child(k: int, q: int, lam: float = 0.01, seed: int = 3, order: int = 5) -> RunSpec:
    return RunSpec(seed, lam, 3, order_seed=order, branch=k, branch_seed=q)


def test_a_child_that_is_its_parent_has_its_hash_and_trains_bitwise_as_it(small):
    parent = RunSpec(3, 0.01, 3, order_seed=5)
    same_order, at_end = child(2, 5), child(E, 9)
    for c in (same_order, at_end):
        assert canonical(c, E) == parent and config_hash(canonical(c, E), S) == config_hash(parent, S)
    runs = train_many([parent, same_order, at_end], small, S)
    assert same(runs[0], runs[1]) and same(runs[0], runs[2])
    # trained once: a grid that spells the parent three times holds it once
    cfg = TrainConfig(seeds=(3,), lambdas=(0.01,), classes=(3,), epochs=E, branch_epochs=(2, E),
                      branch_order_seeds=(3, 9))
    assert cfg.points() == sorted({RunSpec(3, 0.01, 3), RunSpec(3, 0.01, 3, branch=2, branch_seed=9)})


def test_a_child_branched_at_0_is_the_run_with_its_seed_as_the_order_seed(small):
    c = child(0, 9)
    assert canonical(c, E) == RunSpec(3, 0.01, 3, order_seed=9)
    a, b = train_many([c, RunSpec(3, 0.01, 3, order_seed=9)], small, S)
    assert same(a, b)


def test_a_child_shares_its_parents_first_k_epochs_and_then_leaves_them(small):
    parent, c = train_many([RunSpec(3, 0.01, 3, order_seed=5), child(2, 9)], small, S)
    for key in PARAMS:
        assert np.array_equal(parent.trajectory[key][:3], c.trajectory[key][:3]), key
        assert not np.array_equal(parent.trajectory[key][3], c.trajectory[key][3]), key


@pytest.mark.parametrize("lam", [0.0, 0.01])
def test_after_the_branch_a_child_follows_the_plain_loop_from_its_parents_weights(small, lam):
    """Epochs k+1..E of the fused engine against autograd and torch.optim.SGD started from the
    parent's weights at epoch k on the child's stream, one epoch at a time (SGD keeps no state).
    The rule of test_authors_loop: 1e-5, where with L1 a few entries may be one L1 step (2 lr
    lambda) apart."""
    k, spec = 1, child(1, 9, lam=lam)
    ours = train_group([spec], small, S)[0].trajectory
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        weights = {p: torch.from_numpy(ours[p][k]) for p in PARAMS}
        for e in range(k + 1, E + 1):
            model = train_plain(spec, small, epochs=1, start=(e - 1, weights))
            weights = {"W1": model.fc1.weight.detach().clone(), "b1": model.fc1.bias.detach().clone(),
                       "W2": model.fc2.weight.detach().clone(), "b2": model.fc2.bias.detach().clone()}
            gap = np.abs(ours["W1"][e] - weights["W1"].numpy())
            assert (gap > TOL).sum() <= (2 if lam else 0), (e, np.sort(gap, axis=None)[-5:])
            assert gap.max() <= 2 * spec.lr * lam + TOL, (e, gap.max())
            weights = {p: torch.from_numpy(ours[p][e]) for p in PARAMS}  # the next epoch from ours
    finally:
        torch.set_num_threads(threads)


def test_children_fused_in_any_grouping_equal_alone(small):
    """A stream's children of several parents and cells trained together, and each alone."""
    specs = [RunSpec(i, lam, c, order_seed=5, branch=2, branch_seed=9) for i in (3, 4) for lam in (0.0, 0.01)
             for c in (2, 5)]
    fused = train_group(specs, small, S)
    for i in (0, 3, 6):
        assert same(fused[i], train_group([specs[i]], small, S)[0]), specs[i]


def test_groups_are_streams():
    specs = [child(k, q) for k in (1, 2) for q in (8, 9)] + [RunSpec(3, 0.01, 3, order_seed=5), child(1, 8, seed=4)]
    sizes = sorted(len(g) for g in groups(specs).values())
    assert sizes == [1, 1, 1, 1, 2]  # (k 1, q 8) holds two parents' children


def test_a_childs_name_params_and_grid():
    c = child(2, 9)
    assert run_name(c) == "i3-o5-l0.01-c3-k2-post9"
    cfg = SweepConfig.from_strings(name="t", init_seeds="0,1", order_seeds="0", branch_epochs="0,1,2",
                                   branch_order_seeds="1,2", lambdas="0,0.01", classes="3", epochs="3")
    grid = cfg.grid()
    pts = grid_points(grid)
    assert len(pts) == 2 * 3 * 2 * 2  # k = 0 children are the runs (init, order = post seed)
    assert RunSpec(1, 0.0, 3, order_seed=2) in pts
    for p in pts:  # every point's trial params spell it back
        assert trial_spec(trial_params(p, grid), grid) == p
    # the GridSampler hands out each combination once: one point per combination
    assert len(pts) == np.prod([len(v) for v in search_space(grid).values()])
    seeds_mode = SweepConfig.from_strings(name="t", seeds="0,1", branch_epochs="0,2", branch_order_seeds="5,6",
                                          lambdas="0", classes="3", epochs="3")  # k = 0 with seeds: (s, q) apart
    assert len(seeds_mode.points()) == np.prod([len(v) for v in search_space(seeds_mode.grid()).values()]) == 8


def test_train_refuses_a_branch_past_the_last_epoch():
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_strings(seeds="0", epochs="3", branch_epochs="4", branch_order_seeds="1")
    assert e.value.param == "branch_epochs"


@pytest.mark.parametrize("raw,param", [
    ({"branch_epochs": "1"}, "branch_epochs"),
    ({"branch_epochs": "1", "branch_order_seeds": "0"}, "branch_order_seeds"),  # an order seed
    ({"branch_epochs": "3", "branch_order_seeds": "5"}, "branch_epochs"),  # at epochs: the parent
    ({"branch_epochs": "9", "branch_order_seeds": "5"}, "branch_epochs"),  # past the end
    ({"branch_epochs": "0,1", "branch_order_seeds": "5", "order_seeds": "0,1", "init_seeds": "0"}, "branch_epochs"),
    ({"branch_epochs": "-1", "branch_order_seeds": "5"}, "branch_epochs"),
    ({"branch_order_seeds": "5"}, "branch_order_seeds"),
    ({"branch_epochs": "1", "branch_order_seeds": "-5"}, "branch_order_seeds"),
])
def test_bad_branches_are_refused_naming_the_parameter(raw, param):
    base = {"name": "t", "lambdas": "0", "classes": "3", "epochs": "3", "seeds": "0"}
    if "init_seeds" in raw:
        del base["seeds"]
    with pytest.raises(ConfigError) as e:
        SweepConfig.from_strings(**{**base, **raw})
    assert e.value.param == param, str(e.value)


def test_a_childs_stream_is_its_parents_then_the_post_branch_seeds_from_epoch_k_plus_1():
    from underspec.training.model import epoch_permutations, run_permutations

    n, k = 500, 2
    got = run_permutations(child(k, 9), n)
    parent, post = epoch_permutations(5, n), epoch_permutations(9, n)
    post_all = [next(post) for _ in range(k + 3)]  # the post-branch seed's epochs 1..k+3
    want = [next(parent) for _ in range(k)] + post_all[k:]
    for e, w in enumerate(want, 1):
        assert torch.equal(next(got), w), e
