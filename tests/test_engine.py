import numpy as np
import pytest
import torch

from underspec.config import PAPER_CLASSES, PAPER_LAMBDAS
from underspec.engine import METRICS, EngineSettings, RunSpec, train_group, train_many
from underspec.parallel import iter_train, plan_chunks
from underspec.plain import eval_accuracy, train_plain

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
            want = (w[0] - w[-1]) / s.lr
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


def test_train_group_refuses_mixed_seeds(tiny_data, tiny_settings):
    with pytest.raises(ValueError, match="one seed"):
        train_group([RunSpec(0, 0.0, 2), RunSpec(1, 0.0, 2)], tiny_data, tiny_settings)


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
