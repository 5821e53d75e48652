"""Mode connectivity up to permutation: invariances, a slow explicit path, brute force, REPAIR."""
import itertools

import numpy as np
import pytest
import torch

from underspec.measures.barrier import (
    ALPHAS,
    METHODS,
    Endpoint,
    activation_matching,
    barrier,
    pair_barriers,
    path,
    permute,
    preactivations,
    repair,
    weight_matching,
)


def network(rng, H=8, D=30, C=4):
    return {"W1": rng.normal(size=(H, D)), "b1": rng.normal(size=H), "W2": rng.normal(size=(C, H)),
            "b2": rng.normal(size=C)}


def zs(net, X, Xt):
    return {"test": preactivations(net, X), "train": preactivations(net, Xt)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_permuted_copy_is_recovered_by_every_matching_and_has_no_barrier(seed):
    rng = np.random.default_rng(seed)
    a = network(rng)
    a["b1"] = np.abs(a["W1"]).sum(1) + 0.1  # every unit active on every input in [0, 1]^D
    a["W2"] *= 3.0
    X, Xt = rng.random((300, 30)), rng.random((200, 30))
    a["b2"] = -np.maximum(preactivations(a, X), 0).mean(0) @ a["W2"].T  # centred logits: y varies
    y = (np.maximum(preactivations(a, X), 0) @ a["W2"].T + a["b2"]).argmax(1)  # a (and its copy) fit y
    q = rng.permutation(8)
    b = permute(a, q)  # b's unit j is a's unit q[j]: the same function
    za, zb = zs(a, X, Xt), zs(b, X, Xt)
    assert (za["train"] > 0).all()
    out, _ = pair_barriers(Endpoint(a, za["test"], za["train"]), Endpoint(b, zb["test"], zb["train"]), y)
    inverse = np.argsort(q)
    from underspec.measures.barrier import paper_matching
    for perm in (paper_matching(a, b), weight_matching(a, b),
                 activation_matching(np.maximum(za["train"], 0), np.maximum(zb["train"], 0))):
        assert np.array_equal(perm, inverse)
    for m in METHODS[1:]:
        assert abs(out[f"loss_barrier.{m}"]) <= 1e-6 and abs(out[f"error_barrier.{m}"]) <= 1e-6, m
    assert out["loss_barrier.identity"] > 0 and out["matching_agreement"] == 1.0


def test_a_subset_of_methods_gives_those_methods_values_bitwise_without_training_activations():
    rng = np.random.default_rng(4)
    a, b = network(rng), network(rng)
    X, Xt = rng.random((300, 30)), rng.random((200, 30))
    za, zb = zs(a, X, Xt), zs(b, X, Xt)
    y = rng.integers(0, a["W2"].shape[0], len(X))  # labels of the "test" images X
    full, _ = pair_barriers(Endpoint(a, za["test"], za["train"]), Endpoint(b, zb["test"], zb["train"]), y)
    some, _ = pair_barriers(Endpoint(a, za["test"]), Endpoint(b, zb["test"]), y, methods=("identity", "weight"))
    assert some == {k: full[k] for k in some} and set(some) == {
        f"{w}_barrier.{m}" for w in ("loss", "error") for m in ("identity", "weight")}


def slow_path(a, b, perm, X, y, alphas):
    """Every alpha: the full interpolated weights, then the forward pass unit by unit."""
    losses = []
    for t in alphas:
        W1 = (1 - t) * a["W1"] + t * b["W1"][perm]
        b1 = (1 - t) * a["b1"] + t * b["b1"][perm]
        W2 = (1 - t) * a["W2"] + t * b["W2"][:, perm]
        b2 = (1 - t) * a["b2"] + t * b["b2"]
        total = 0.0
        for n in range(len(X)):
            h = [max(0.0, sum(W1[u, d] * X[n, d] for d in range(X.shape[1])) + b1[u]) for u in range(len(b1))]
            logits = [sum(W2[c, u] * h[u] for u in range(len(h))) + b2[c] for c in range(len(b2))]
            m = max(logits)
            total += m + np.log(sum(np.exp(v - m) for v in logits)) - logits[y[n]]
        losses.append(total / len(X))
    return np.array(losses)


def test_the_vectorised_path_equals_an_explicit_loop():
    rng = np.random.default_rng(7)
    a, b = network(rng, H=4, D=5, C=3), network(rng, H=4, D=5, C=3)
    X, y = rng.random((12, 5)), rng.integers(0, 3, 12)
    for perm in (np.arange(4), np.array([2, 0, 3, 1])):
        fast, _ = path(Endpoint(a, preactivations(a, X)), Endpoint(permute(b, perm), preactivations(b, X)[:, perm]), y)
        slow = slow_path(a, b, perm, X, y, ALPHAS)
        assert np.abs(fast - slow).max() <= 1e-6
        assert abs(barrier(fast) - barrier(slow)) <= 1e-6


def test_weight_matching_is_the_brute_force_optimum_at_h6():
    rng = np.random.default_rng(3)
    a, b = network(rng, H=6, D=10, C=3), network(rng, H=6, D=10, C=3)

    def objective(p):
        p = np.array(p)
        return (a["W1"] * b["W1"][p]).sum() + (a["b1"] * b["b1"][p]).sum() + (a["W2"] * b["W2"][:, p]).sum()

    best = max(itertools.permutations(range(6)), key=objective)
    assert np.array_equal(weight_matching(a, b), np.array(best))


def test_repair_changes_nothing_at_the_ends_and_hits_its_targets_in_between():
    rng = np.random.default_rng(5)
    a, b = network(rng), network(rng)
    X, Xt, y = rng.random((200, 30)), rng.random((150, 30)), rng.integers(0, 4, 200)
    za, zb = zs(a, X, Xt), zs(b, X, Xt)
    plain, _ = path(Endpoint(a, za["test"]), Endpoint(b, zb["test"]), y)
    fixed, _ = path(Endpoint(a, za["test"], za["train"]), Endpoint(b, zb["test"], zb["train"]), y)
    assert abs(plain[0] - fixed[0]) <= 1e-6 and abs(plain[-1] - fixed[-1]) <= 1e-6  # float32 rounding only
    mid = 0.5 * za["train"] + 0.5 * zb["train"]
    mean_t = 0.5 * za["train"].mean(0) + 0.5 * zb["train"].mean(0)
    std_t = 0.5 * za["train"].std(0) + 0.5 * zb["train"].std(0)
    out = repair(*(torch.from_numpy(x) for x in (mid, mid, mean_t, std_t))).numpy()
    assert np.allclose(out.mean(0), mean_t, atol=1e-9) and np.allclose(out.std(0), std_t, atol=1e-9)
    assert mid.std(0).mean() < std_t.mean()  # the variance collapse REPAIR undoes


def test_column_correlation_equals_pearson_rows_of_the_transposes():
    from underspec.measures.alignment import pearson_rows
    from underspec.measures.barrier import column_correlation

    rng = np.random.default_rng(9)
    A, B = np.maximum(rng.normal(size=(500, 6)), 0), np.maximum(rng.normal(size=(500, 5)), 0)
    A[:, 2] = 0.0  # a unit never active
    assert np.allclose(column_correlation(A, B), pearson_rows(A.T, B.T), atol=1e-12)
