import numpy as np
import pytest
import torch

from underspec.spec.config import PAPER_CLASSES, PAPER_LAMBDAS
from underspec.training.engine import METRICS, EngineSettings, RunSpec, groups, train_group, train_many
from underspec.training.parallel import iter_train, plan_chunks
from underspec.training.plain import eval_accuracy, train_plain

GRID0 = [RunSpec(0, lam, c) for lam in PAPER_LAMBDAS for c in PAPER_CLASSES]


def same(a, b) -> bool:
    return all(np.array_equal(a.trajectory[k], b.trajectory[k]) for k in a.trajectory) and \
        np.array_equal(a.embeddings["h"], b.embeddings["h"])


@pytest.fixture(scope="module")
def fused_tiny(tiny_data):
    """The 54 (lambda, C) configurations of seed 0, fused, for 300 steps on the tiny MNIST."""
    s = EngineSettings(epochs=30, probe_size=20, device="cpu")
    return s, {r.spec: r for r in train_group(GRID0, tiny_data, s)}


@pytest.mark.parametrize("spec", [RunSpec(0, 0.05, 10), RunSpec(0, 0.05, 2), RunSpec(0, 0.001, 9),
                                  RunSpec(0, 0.0, 3), RunSpec(0, 0.0025, 5)])
def test_fused_equals_alone_bitwise(fused_tiny, tiny_data, spec):
    s, fused = fused_tiny
    alone = train_group([spec], tiny_data, s)[0]
    assert same(alone, fused[spec])
    assert np.array_equal(alone.metrics["test_acc"], fused[spec].metrics["test_acc"])


def test_any_grouping_gives_the_same_runs(fused_tiny, tiny_data):
    s, fused = fused_tiny
    subset = [GRID0[i] for i in (53, 0, 17, 30, 44)]  # another order, another width, mixed C
    for r in train_group(subset, tiny_data, s):
        assert same(r, fused[r.spec])


def test_large_lambda_really_sits_weights_at_zero(fused_tiny):
    """The bitwise test above matters because L1 at 0.05 makes weights hover around 0."""
    _, fused = fused_tiny
    w = fused[RunSpec(0, 0.05, 10)].trajectory["W1"][-1]
    assert (np.abs(w) < 1e-3).mean() > 0.5


def test_cumulative_gradient_identity(fused_tiny):
    s, fused = fused_tiny
    for r in fused.values():
        for k in ("W1", "b1", "W2", "b2"):
            w, g = r.trajectory[k], r.trajectory["grad_" + k]
            want = (w[0] - w[-1]) / r.spec.lr
            assert np.abs(g[-1] - want).max() <= 1e-3 * np.abs(want).max() + 1e-6, (r.spec, k)
            assert not g[0].any()


def test_result_shapes_and_metrics(fused_tiny):
    s, fused = fused_tiny
    r = fused[RunSpec(0, 0.001, 7)]
    E = s.epochs
    assert r.trajectory["W1"].shape == (E + 1, 16, 784) and r.trajectory["W2"].shape == (E + 1, 7, 16)
    assert r.trajectory["b2"].shape == (E + 1, 7) and r.trajectory["grad_b1"].shape == (E + 1, 16)
    assert r.trajectory["W1"].dtype == np.float32 and list(r.trajectory["epoch"]) == list(range(E + 1))
    assert r.embeddings["h"].shape == (E + 1, 20, 16) and r.embeddings["y"].shape == (20,)
    assert set(r.metrics) == set(METRICS) and all(len(v) == E for v in r.metrics.values())
    assert r.metrics["train_acc"][-1] > r.metrics["train_acc"][0]
    assert all(np.isfinite(v).all() for v in r.metrics.values())


def test_embeddings_are_the_first_layer_preactivations(fused_tiny, tiny_data):
    _, fused = fused_tiny
    r = fused[RunSpec(0, 0.01, 4)]
    W1, b1 = (torch.from_numpy(r.trajectory[k][-1]) for k in ("W1", "b1"))
    h = tiny_data.test_x[:20] @ W1.T + b1
    assert np.allclose(r.embeddings["h"][-1], h.numpy(), atol=1e-5)


def test_chunks_and_processes_do_not_change_results(tiny_root, tiny_data, tiny_settings):
    specs = [RunSpec(seed, lam, c) for seed in (0, 5) for lam in (0.0, 0.05) for c in (2, 10)]
    assert [len(c) for c in plan_chunks(specs, 4)] == [2, 2, 2, 2]
    assert [len(c) for c in plan_chunks(specs, 1)] == [4, 4]
    one = {r.spec: r for r in train_many(specs, tiny_data, tiny_settings)}
    ticks = []
    many = [r for rs in iter_train(specs, tiny_root, tiny_data, tiny_settings, 3, ticks.append) for r in rs]
    assert sum(ticks) == len(specs) * tiny_settings.epochs
    assert len(many) == len(specs) and all(same(r, one[r.spec]) for r in many)


def test_train_group_refuses_mixed_minibatch_streams(tiny_data, tiny_settings):
    with pytest.raises(ValueError, match=r"one \(order seed, branch, post-branch seed, batch size, width\)"):
        train_group([RunSpec(0, 0.0, 2), RunSpec(1, 0.0, 2)], tiny_data, tiny_settings)
    with pytest.raises(ValueError, match="one"):  # a child and its parent: two streams
        train_group([RunSpec(0, 0.0, 2), RunSpec(0, 0.0, 2, branch=1, branch_seed=3)], tiny_data, tiny_settings)
    with pytest.raises(ValueError, match="one"):
        train_group([RunSpec(0, 0.0, 2), RunSpec(0, 0.0, 2, batch_size=32)], tiny_data, tiny_settings)


# ------------------------------------------------------------------ the axes beyond the paper's

# One minibatch stream (order seed 7), everything else varied: init seeds, jitters, lambdas, C, lr.
AXES_GROUP = [RunSpec(i, lam, c, order_seed=7, jitter=j, lr=lr) for i in (0, 7, 3) for j in (0, 1)
              for lam in (0.0, 0.01) for c in (2, 10) for lr in (0.01, 0.05)]


@pytest.fixture(scope="module")
def fused_axes(tiny_data):
    s = EngineSettings(epochs=20, probe_size=20, device="cpu")
    return s, {r.spec: r for r in train_group(AXES_GROUP, tiny_data, s)}


@pytest.mark.parametrize("i", [0, 5, 18, 33, 47])
def test_fused_equals_alone_bitwise_across_the_new_axes(fused_axes, tiny_data, i):
    s, fused = fused_axes
    spec = AXES_GROUP[i]
    alone = train_group([spec], tiny_data, s)[0]
    assert same(alone, fused[spec]) and np.array_equal(alone.metrics["test_acc"], fused[spec].metrics["test_acc"])


def test_a_grid_fuses_by_order_seed_batch_size_and_width():
    """4 x 4 (init x order) at one (lambda, C): 4 groups, not 16; a width or batch size apart: apart."""
    grid = [RunSpec(i, 0.001, 10, order_seed=o) for i in range(4) for o in range(4)]
    assert sorted(len(g) for g in groups(grid).values()) == [4, 4, 4, 4]
    assert [len(c) for c in plan_chunks(grid, 1)] == [4, 4, 4, 4]
    more = grid + [RunSpec(0, 0.001, 10, order_seed=0, hidden=8), RunSpec(0, 0.001, 10, order_seed=0, batch_size=32)]
    assert len(groups(more)) == 6


def test_runs_sharing_an_order_seed_see_the_same_minibatches(tiny_data):
    """Only the order seed decides the order: a run of init seed 3 and order seed 7 takes its
    init from 3 (as the plain loop does from build_mlp(3)) and its minibatches from 7: its first
    SGD step equals the plain loop's on the order-7 stream and differs from the order-3 one."""
    s = EngineSettings(epochs=1, probe_size=10, device="cpu")
    spec = RunSpec(3, 0.0, 10, order_seed=7)
    ours = train_group([spec], tiny_data, s)[0].trajectory["W1"][1]
    for order, close in ((7, True), (3, False)):
        plain = train_plain(RunSpec(3, 0.0, 10, order_seed=order), tiny_data, epochs=1).fc1.weight.detach().numpy()
        assert bool(np.abs(ours - plain).max() < 1e-6) is close, order


def test_lr_is_per_run(fused_axes):
    _, fused = fused_axes
    a, b = fused[AXES_GROUP[0]], fused[AXES_GROUP[1]]  # the same run at lr 0.01 and 0.05
    assert a.spec.lr == 0.01 and b.spec.lr == 0.05
    assert not np.array_equal(a.trajectory["W1"][1], b.trajectory["W1"][1])
    assert np.array_equal(a.trajectory["W1"][0], b.trajectory["W1"][0])


# ------------------------------------------------------------------ real MNIST


@pytest.fixture(scope="module")
def one_epoch_seed0(mnist):
    s = EngineSettings(epochs=1, probe_size=100, device="cpu")
    specs = [RunSpec(0, 0.001, 10), RunSpec(0, 0.0, 2), RunSpec(0, 0.05, 6)]
    return s, {r.spec: r for r in train_group(specs, mnist, s)}


@pytest.mark.parametrize("spec", [RunSpec(0, 0.001, 10), RunSpec(0, 0.0, 2)])
def test_engine_agrees_with_the_plain_loop(mnist, one_epoch_seed0, spec):
    _, res = one_epoch_seed0
    model = train_plain(spec, mnist, epochs=1)  # 938 SGD steps with autograd and torch.optim.SGD
    for k, p in (("W1", model.fc1.weight), ("b1", model.fc1.bias), ("W2", model.fc2.weight)):
        assert np.abs(res[spec].trajectory[k][-1] - p.detach().numpy()).max() < 1e-5


def test_epoch_one_accuracy_matches_the_plain_loop(mnist, one_epoch_seed0):
    _, res = one_epoch_seed0
    spec = RunSpec(0, 0.001, 10)
    assert abs(res[spec].metrics["test_acc"][0] - 0.8519) <= 0.001
    assert abs(eval_accuracy(train_plain(spec, mnist, epochs=1), mnist, 10) - 0.8519) <= 0.001


def test_fused_equals_alone_on_real_mnist_at_large_lambda(mnist, one_epoch_seed0):
    s, res = one_epoch_seed0
    spec = RunSpec(0, 0.05, 6)
    assert same(train_group([spec], mnist, s)[0], res[spec])
