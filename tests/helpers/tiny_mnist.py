"""A tiny MNIST written as the four IDX files MNIST ships: the real loader reads it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from underspec.training.data import raw_dir, write_idx

TINY_TRAIN, TINY_TEST = 640, 200


def write_tiny_mnist(root: Path, seed: int = 0) -> Path:
    """Digit-like sparse uint8 images with labels 0..9, as the four IDX files MNIST ships."""
    rng = np.random.default_rng(seed)
    raw = raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", TINY_TRAIN), ("t10k", TINY_TEST)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = np.zeros((n, 28, 28), np.uint8)
        for i, label in enumerate(y):  # a label-dependent blob plus noise: learnable, sparse
            r, c = 6 + label % 5 * 3, 6 + label // 5 * 8
            x[i, r : r + 8, c : c + 8] = rng.integers(100, 256, (8, 8))
            x[i] = np.where(rng.random((28, 28)) < 0.05, rng.integers(0, 256, (28, 28)), x[i])
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return root
