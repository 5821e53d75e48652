"""The plain per-model PyTorch loop: the yardstick the engine is checked and benchmarked against.

nn.Module, autograd, torch.optim.SGD, tensors in memory, the same minibatch order. Pure: no I/O.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import MNISTTensors, fold_labels
from .model import MLP, batch_slices, build_mlp, epoch_orders
from .settings import RunSettings, RunSpec


def train_plain(spec: RunSpec, data: MNISTTensors, epochs: int = 1, batch_size: int = RunSettings.batch_size,
                lr: float = RunSettings.lr, hidden: int = RunSettings.hidden, max_steps: int | None = None) -> MLP:
    """Train one configuration the obvious way; stops after max_steps minibatches if given."""
    model = build_mlp(spec.seed, spec.classes, hidden)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    y = fold_labels(data.train_y, spec.classes)
    n, steps = len(y), 0
    orders = epoch_orders(spec.seed, n)
    for _ in range(epochs):
        perm = next(orders)
        for sl in batch_slices(n, batch_size):
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
