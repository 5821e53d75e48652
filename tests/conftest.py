"""Shared fixtures: a tiny MNIST written as real IDX files, the real MNIST, isolated MLflow stores,
a private temp folder per test, and the processes a test starts (reaped when it ends)."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings as hypothesis_settings

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from underspec.training.data import load_mnist, raw_dir, write_idx  # noqa: E402
from underspec.training.engine import EngineSettings  # noqa: E402

from procs import Procs  # noqa: E402

# CI replays the same examples every time (no random draws, no example database).
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

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


@pytest.fixture(autouse=True)
def private_tmp(tmp_path_factory, monkeypatch) -> Path:
    """Each test's own temp folder, for its subprocesses (TMPDIR) and for this process (tempfile
    caches gettempdir()): a staging folder, scratch file or lock never meets another test's. A
    sibling of tmp_path, so tests that check tmp_path stays empty are unaffected."""
    folder = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture()
def procs():
    """Start a test's processes with procs.start/run; every one's group is killed at the end."""
    started = Procs()
    yield started
    started.reap()


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return write_tiny_mnist(tmp_path_factory.mktemp("tiny-mnist"))


@pytest.fixture(scope="session")
def tiny_data(tiny_root):
    return load_mnist(tiny_root)


@pytest.fixture(scope="session")
def tiny_settings() -> EngineSettings:
    """The shared tiny configuration: few epochs, a small probe, the paper's batch and lr."""
    return EngineSettings(epochs=3, probe_size=50, device="cpu")


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    root = Path(os.environ.get("UNDERSPEC_DATA_DIR") or REPO / "data")
    if not (raw_dir(root) / "train-images-idx3-ubyte").is_file():
        pytest.fail(f"real MNIST missing under {root}: run `make data` first")
    return root


@pytest.fixture(scope="session")
def mnist(mnist_root):
    return load_mnist(mnist_root)


@pytest.fixture()
def tracking(tmp_path, monkeypatch):
    """An isolated MLflow store (SQLite + local artifacts) in tmp_path, as the embedded default."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "underspec-test")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    client.create_experiment("underspec-test", artifact_location=str(tmp_path / "artifacts"))
    return client
