import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from underspec.training.model import batch_slices, build_mlp, epoch_permutations, init_params


def recipe(seed: int, classes: int, hidden: int = 16):
    """The paper's initialisation (the authors' recipe), written out step by step."""
    torch.manual_seed(seed)
    fc1, fc2 = nn.Linear(784, hidden), nn.Linear(hidden, classes)
    nn.init.xavier_uniform_(fc1.weight, gain=math.sqrt(2))
    nn.init.zeros_(fc1.bias)
    nn.init.xavier_uniform_(fc2.weight, gain=math.sqrt(2))
    nn.init.zeros_(fc2.bias)
    return fc1, fc2


def test_init_is_bitwise_the_recipe():
    for seed in (0, 42, 1337):
        for classes in (2, 7, 10):
            fc1, fc2 = recipe(seed, classes)
            p = init_params(seed, classes)
            assert torch.equal(p["W1"], fc1.weight) and torch.equal(p["W2"], fc2.weight)
            assert torch.equal(p["b1"], fc1.bias) and torch.equal(p["b2"], fc2.bias)


def test_init_of_w1_depends_on_classes_through_the_generator():
    assert not torch.equal(init_params(0, 2)["W1"], init_params(0, 10)["W1"])
    assert torch.equal(build_mlp(3, 5).fc1.weight, init_params(3, 5)["W1"])


def authors_loaders(seed: int, n: int, bs: int, n_val: int = 300):
    """The authors' pair: training loader (shuffle) and validation loader (test set, no shuffle),
    one generator shared by both."""
    g = torch.Generator().manual_seed(seed)
    return (DataLoader(range(n), batch_size=bs, shuffle=True, generator=g),
            DataLoader(range(n_val), batch_size=bs, shuffle=False, generator=g))


def test_batch_order_is_the_authors_two_loaders_epoch_after_epoch():
    n, bs = 1000, 64
    for seed in (0, 42):
        train, val = authors_loaders(seed, n, bs)
        perms = epoch_permutations(seed, n)
        for _ in range(4):
            perm = next(perms)
            ours = [perm[sl] for sl in batch_slices(n, bs)]
            theirs = list(train)  # the training pass, then the validation pass
            assert [len(b) for b in list(val)][-1] == 300 % bs
            assert len(ours) == len(theirs) == 16  # last partial batch kept
            assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_a_training_loader_alone_parts_from_the_authors_order_at_epoch_2():
    """Why the validation loader matters: its iterator draws from the shared generator."""
    n, bs = 1000, 64
    alone = DataLoader(range(n), batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(0))
    perms = epoch_permutations(0, n)
    first, second = torch.cat(list(alone)), torch.cat(list(alone))
    assert torch.equal(first, next(perms))
    assert not torch.equal(second, next(perms))


def test_batch_order_depends_on_seed_only():
    a, b = next(epoch_permutations(0, 500)), next(epoch_permutations(1, 500))
    assert not torch.equal(a, b)
    assert torch.equal(torch.sort(a).values, torch.arange(500))


def test_jitter_zero_is_the_init_bitwise_and_one_moves_every_weight_one_ulp():
    from underspec.training.model import jitter_params

    p = init_params(4, 10)
    assert all(torch.equal(a, b) for a, b in zip(p.values(), jitter_params(p, 0).values(), strict=True))
    state = torch.get_rng_state()
    j = jitter_params(p, 1)
    assert torch.equal(torch.get_rng_state(), state)  # its own generator, not the model's
    for k in ("W1", "W2"):
        w, v = p[k].numpy(), j[k].numpy()
        step = np.abs(np.spacing(w, dtype=np.float32))  # one ulp away from zero
        up, down = np.nextafter(w, np.float32(np.inf)), np.nextafter(w, np.float32(-np.inf))
        assert ((v == up) | (v == down)).all() and (v != w).all(), k
        assert 0.4 < (v == up).mean() < 0.6 and (np.abs(v - w) <= step * 1.0000001).all()
    assert torch.equal(j["b1"], p["b1"]) and torch.equal(j["b2"], p["b2"])  # biases stay at zero
    assert not torch.equal(jitter_params(p, 2)["W1"], j["W1"])
