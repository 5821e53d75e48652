import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from underspec.measures.alignment import apc, match, pearson_rows, permutation_equivalence
from underspec.measures.metrics import cka_hsic, linear_cka, live_metrics, near_dead, pair_summary, paper_metrics

from helpers.oracles import slow_paper_metrics


def net(rng, C, H=16, D=784):
    return rng.normal(size=(H, D)), rng.normal(size=(C, H))


@pytest.mark.parametrize("C", [3, 6, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_metrics_equal_the_slow_obvious_implementation(C, seed):
    rng = np.random.default_rng(seed)
    (W1a, W2a), (W1b, W2b) = net(rng, C), net(rng, C)
    W1b[:5] = W1a[[3, 0, 1, 2, 4]] + 0.3 * rng.normal(size=(5, 784))  # some real structure
    fast, slow = paper_metrics(W1a, W2a, W1b, W2b), slow_paper_metrics(W1a, W2a, W1b, W2b)
    for k in ("apc1", "apc2", "pe"):
        assert abs(fast[k] - slow[k]) < 1e-9, k


def test_on_real_trajectories_too(tiny_data, tiny_settings):
    from underspec.training.engine import RunSpec, train_group

    a, b = train_group([RunSpec(0, 0.001, 5)], tiny_data, tiny_settings)[0], \
        train_group([RunSpec(1, 0.001, 5)], tiny_data, tiny_settings)[0]
    for key in ("", "grad_"):
        args = [x.trajectory[key + k][-1].astype(np.float64) for x in (a, b) for k in ("W1", "W2")]
        fast, slow = paper_metrics(*args), slow_paper_metrics(*args)
        assert all(abs(fast[k] - slow[k]) < 1e-9 for k in ("apc1", "apc2", "pe"))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), C=st.integers(3, 10), H=st.integers(2, 24))
def test_a_permuted_copy_aligns_back_exactly(seed, C, H):
    rng = np.random.default_rng(seed)
    W1, W2 = rng.normal(size=(H, 50)), rng.normal(size=(C, H))
    perm = rng.permutation(H)
    W1p, W2p = W1[perm], W2[:, perm]  # the same function, units relabelled
    m = paper_metrics(W1, W2, W1p, W2p)
    assert m["apc1"] == pytest.approx(1.0) and m["apc2"] == pytest.approx(1.0) and m["pe"] == 1.0
    inv = np.argsort(perm)
    assert np.array_equal(match(pearson_rows(W1, W1p)), inv)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3), shift=st.floats(-5, 5))
def test_pearson_is_invariant_to_affine_maps_and_symmetric(seed, scale, shift):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(6, 30)), rng.normal(size=(4, 30))
    R = pearson_rows(A, B)
    assert np.allclose(pearson_rows(A * scale + shift, B), R, atol=1e-9)
    assert np.allclose(pearson_rows(B, A), R.T, atol=1e-12)
    assert np.all(np.abs(R) <= 1.0)


def test_constant_rows_give_zero_not_nan():
    A = np.vstack([np.zeros(10), np.ones(10), np.arange(10.0)])
    R = pearson_rows(A, A)
    assert np.isfinite(R).all() and R[0].tolist() == [0, 0, 0] and R[2, 2] == pytest.approx(1.0)
    W1 = np.zeros((16, 784))
    m = paper_metrics(W1, np.zeros((4, 16)), W1, np.zeros((4, 16)))
    assert all(np.isfinite(v) for v in m.values())


def test_shape_errors_name_the_sizes():
    with pytest.raises(ValueError, match=r"\(3, 5\) and \(3, 4\)"):
        pearson_rows(np.ones((3, 5)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="differ in shape"):
        permutation_equivalence(np.arange(3), np.arange(4))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_c2_pe_is_nan_apc2_is_one_and_pe_authors_is_the_authors_code(seed):
    rng = np.random.default_rng(seed)
    (W1a, W2a), (W1b, W2b) = net(rng, 2), net(rng, 2)
    W1b[:8] = W1a[:8] + 0.1 * rng.normal(size=(8, 784))  # half the units match their own index
    m, authors = paper_metrics(W1a, W2a, W1b, W2b), slow_paper_metrics(W1a, W2a, W1b, W2b)
    assert m["apc2"] == 1.0 and np.isnan(m["pe"])
    assert m["pe_authors"] == authors["pe"] and m["apc1"] == pytest.approx(authors["apc1"], abs=1e-9)
    p1 = match(pearson_rows(W1a, W1b))
    assert m["pe_authors"] == np.mean(p1 == np.arange(16)) >= 0.5  # the identity for W2: p1(i) == i


def test_pe_authors_is_pe_above_two_classes():
    rng = np.random.default_rng(5)
    for C in (3, 7, 10):
        m = paper_metrics(*net(rng, C), *net(rng, C))
        assert m["pe_authors"] == m["pe"]


def test_chance_pe_is_one_over_the_units():
    from underspec.measures.metrics import chance_pe

    assert chance_pe(16) == 1 / 16 and chance_pe(8) == 0.125
    with pytest.raises(ValueError, match="got 0"):
        chance_pe(0)


def test_rectangular_matching_and_live_units():
    R = np.array([[0.9, 0.1, 0.0], [0.2, 0.1, 0.8]])
    assert match(R).tolist() == [0, 2] and apc(R, match(R)) == pytest.approx(0.85)
    assert match(R.T).tolist()[2] == 1 and (match(R.T) == -1).sum() == 1
    rng = np.random.default_rng(3)
    W1, W2 = rng.normal(size=(16, 784)), rng.normal(size=(5, 16))
    W1[10:] *= 1e-5  # six near-dead units
    assert near_dead(W1).sum() == 6
    m = live_metrics(W1, W2, W1[::-1].copy(), W2[:, ::-1].copy())
    assert m["live_units"] == 10 and m["apc1_live"] == pytest.approx(1.0) and m["pe_live"] == 1.0
    assert m["pe_live_chance"] == 1 / 10


def test_live_units_of_gradients_come_from_the_weights():
    """A unit L1 killed has a large cumulative gradient (about W0 / lr): the gradient's own scale
    would call it live. The masks given (the weights') decide."""
    rng = np.random.default_rng(4)
    G1, G2 = rng.normal(size=(16, 784)), rng.normal(size=(5, 16))
    live = np.arange(16) < 12  # four units dead in the weights, their gradients as large as any
    by_grads = live_metrics(G1, G2, G1[::-1].copy(), G2[:, ::-1].copy())
    by_weights = live_metrics(G1, G2, G1[::-1].copy(), G2[:, ::-1].copy(), live, live[::-1])
    assert by_grads["live_units"] == 16 and by_weights["live_units"] == 12
    assert by_weights["pe_live"] == 1.0 and by_weights["pe_live_chance"] == 1 / 12
    unequal = live_metrics(G1, G2, G1, G2, live, np.arange(16) < 9)
    assert unequal["live_units"] == 9 and unequal["pe_live_chance"] == 1 / 12


def test_cka_two_formulations_agree_and_are_invariant():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    assert linear_cka(X, Y) == pytest.approx(cka_hsic(X, Y), abs=1e-10)
    Q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert linear_cka(X, X @ Q * 3.0) == pytest.approx(1.0)


def test_pair_summary_bootstrap_brackets_the_mean():
    seeds = [0, 1, 2, 3, 4]
    rng = np.random.default_rng(0)
    vals = {(a, b): 0.5 + 0.1 * rng.normal() for i, a in enumerate(seeds) for b in seeds[i + 1:]}
    mean, std, lo, hi, n = pair_summary(vals, seeds)
    assert n == 10 and lo <= mean <= hi and std > 0
    assert mean == pytest.approx(np.mean(list(vals.values())))


def test_haar_rotation_is_orthogonal_and_keeps_dead_units():
    from underspec.measures.nulls import haar_orthogonal, rotate_units

    rng = np.random.default_rng(0)
    Q = haar_orthogonal(6, rng)
    assert np.allclose(Q @ Q.T, np.eye(6), atol=1e-12)
    assert abs(np.mean([haar_orthogonal(3, rng)[0, 0] for _ in range(4000)])) < 0.03  # no sign bias
    W1, W2 = rng.normal(size=(8, 30)), rng.normal(size=(4, 8))
    live = np.arange(8) < 6
    R1, R2 = rotate_units(W1, W2, live, Q)
    assert np.array_equal(R1[6:], W1[6:]) and np.array_equal(R2[:, 6:], W2[:, 6:])
    assert np.allclose(R2[:, :6] @ R1[:6], W2[:, :6] @ W1[:6])  # the linear map through the units is kept
