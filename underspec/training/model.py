"""The paper's 784-H-C MLP, its seeded initialisation, and its minibatch order. Pure: no I/O.

`MLP` is the reference model (a plain nn.Module, used by the plain loop and the tests); the fused
engine trains the same parameters without it, from `init_params`.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from underspec.spec.settings import RunSpec

N_INPUT = 784
GAIN = math.sqrt(2.0)
H = RunSpec.hidden  # the default width, defined in settings


class MLP(nn.Module):
    """x (B, 784) -> Linear(784, H) -> ReLU -> Linear(H, C); the H pre-activations are the embedding."""

    def __init__(self, classes: int, hidden: int = H):
        super().__init__()
        self.fc1 = nn.Linear(N_INPUT, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def build_mlp(seed: int, classes: int, hidden: int = H) -> MLP:
    """The paper's recipe: seed, default-init both layers, then xavier(gain sqrt 2) and zero biases.

    W1's values depend on C too: the second layer's default init draws from the generator first.
    """
    torch.manual_seed(seed)
    model = MLP(classes, hidden)
    with torch.no_grad():
        nn.init.xavier_uniform_(model.fc1.weight, gain=GAIN)
        nn.init.zeros_(model.fc1.bias)
        nn.init.xavier_uniform_(model.fc2.weight, gain=GAIN)
        nn.init.zeros_(model.fc2.bias)
    return model


def init_params(seed: int, classes: int, hidden: int = H) -> dict[str, torch.Tensor]:
    """Initial W1 (H, 784), b1 (H,), W2 (C, H), b2 (C,), bitwise those of `build_mlp`."""
    m = build_mlp(seed, classes, hidden)
    return {
        "W1": m.fc1.weight.detach().clone(),
        "b1": m.fc1.bias.detach().clone(),
        "W2": m.fc2.weight.detach().clone(),
        "b2": m.fc2.bias.detach().clone(),
    }


def jitter_params(params: dict[str, torch.Tensor], jitter: int) -> dict[str, torch.Tensor]:
    """Initial parameters nudged by one float32 ulp: every W1 entry, then every W2 entry, moves to
    the next float towards +inf or -inf, the directions drawn from a generator seeded by `jitter`
    (not the model's). Biases start at zero and stay there (a nudge would make them subnormal).
    jitter 0: the parameters unchanged."""
    if jitter == 0:
        return params
    gen = torch.Generator().manual_seed(jitter)
    out = dict(params)
    for k in ("W1", "W2"):
        up = torch.randint(0, 2, params[k].shape, generator=gen).bool()
        out[k] = torch.nextafter(params[k], torch.where(up, torch.tensor(math.inf), torch.tensor(-math.inf)))
    return out


def epoch_permutations(seed: int, n: int) -> Iterator[torch.Tensor]:
    """Endless per-epoch permutations (n,) int64, index for index those of the authors' loop:
    a training `DataLoader(range(n), shuffle=True, generator=g)` and a validation DataLoader
    (`shuffle=False`) built with the same `g = torch.Generator().manual_seed(seed)`, each epoch
    the training pass and then the validation pass.

    Draws from g per epoch, in order: the training iterator's base seed, the RandomSampler's
    `randperm(n)`, its second (empty-sliced) `randperm(n)` once the first is exhausted, and the
    validation iterator's base seed (`_BaseDataLoaderIter.__init__` draws one even without
    shuffling). A training loader alone would skip the last draw: its epoch 1 is the same, its
    later epochs are not.
    """
    gen = torch.Generator().manual_seed(seed)
    while True:
        _base_seed(gen)  # the training iterator
        perm = torch.randperm(n, generator=gen)
        torch.randperm(n, generator=gen)  # the sampler's remainder of num_samples
        _base_seed(gen)  # the validation iterator, which shares the generator
        yield perm


def run_permutations(spec: RunSpec, n: int) -> Iterator[torch.Tensor]:
    """A run's per-epoch permutations: its order seed's stream, or for a branched run the parent's
    stream for epochs 1..k and then the post-branch seed's stream from its epoch k+1 on."""
    perms = epoch_permutations(spec.order_seed, n)
    if not spec.branched:
        yield from perms
        return
    for _ in range(spec.branch):
        yield next(perms)
    post = epoch_permutations(spec.branch_seed, n)
    for _ in range(spec.branch):  # the post-branch stream's own first k epochs are skipped
        next(post)
    yield from post


def _base_seed(gen: torch.Generator) -> None:
    """The one int64 draw a DataLoader iterator takes from its generator when it is created."""
    torch.empty((), dtype=torch.int64).random_(generator=gen)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Minibatch boundaries within one epoch; the last partial batch is kept."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
