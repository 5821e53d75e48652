"""The plain per-model PyTorch loop: the yardstick the engine is checked and benchmarked against.

nn.Module, autograd, torch.optim.SGD, tensors in memory, the same minibatch order. Pure: no I/O.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from underspec.spec.settings import RunSpec
from underspec.training.data import MNISTTensors, fold_labels
from underspec.training.model import MLP, batch_slices, build_mlp, jitter_params, run_permutations


def train_plain(spec: RunSpec, data: MNISTTensors, epochs: int = 1, max_steps: int | None = None,
                start: tuple[int, dict[str, torch.Tensor]] | None = None) -> MLP:
    """Train one configuration the obvious way: init from spec.seed (nudged by spec.jitter), the
    minibatch order of spec's stream (run_permutations); stops after max_steps minibatches if
    given. start = (e, {W1, b1, W2, b2}): begin from these weights after epoch e instead, on the
    stream's epoch e+1 on (`epochs` more epochs)."""
    model = build_mlp(spec.seed, spec.classes, spec.hidden)
    with torch.no_grad():
        nudged = jitter_params({"W1": model.fc1.weight, "W2": model.fc2.weight}, spec.jitter)
        if start is not None:
            nudged = start[1]
            model.fc1.bias.copy_(nudged["b1"])
            model.fc2.bias.copy_(nudged["b2"])
        model.fc1.weight.copy_(nudged["W1"])
        model.fc2.weight.copy_(nudged["W2"])
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr)
    y = fold_labels(data.train_y, spec.classes)
    n, steps = len(y), 0
    perms = run_permutations(spec, n)
    for _ in range(0 if start is None else start[0]):
        next(perms)
    for _ in range(epochs):
        perm = next(perms)
        for sl in batch_slices(n, spec.batch_size):
            idx = perm[sl]
            loss = F.cross_entropy(model(data.train_x[idx]), y[idx])
            loss = loss + spec.lam * model.fc1.weight.abs().sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                return model
    return model


@torch.no_grad()
def eval_accuracy(model: MLP, data: MNISTTensors, classes: int) -> float:
    pred = model(data.test_x).argmax(1)
    return (pred == fold_labels(data.test_y, classes)).float().mean().item()
