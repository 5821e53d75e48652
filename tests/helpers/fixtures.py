"""The shared fixtures, a pytest plugin (tests/conftest.py registers it): a private temp folder per
test, the processes a test starts (reaped when it ends), a tiny MNIST written as real IDX files,
the real MNIST, an isolated MLflow store and a small sweep trained into it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from underspec.training.data import load_mnist, raw_dir
from underspec.training.engine import EngineSettings

from helpers.paths import REPO
from helpers.procs import Procs
from helpers.tiny_mnist import write_tiny_mnist


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


@pytest.fixture()
def small_sweep(tracking, tiny_root, tmp_path):
    """Sweep `small` in the `tracking` store: 3 seeds x 2 lambdas x 2 class counts, 2 epochs, on the
    tiny MNIST; (client, experiment id, config). helpers.stores.analyze_cfg analyzes it."""
    from underspec.spec.config import SweepConfig
    from underspec.steps.sweep import run_sweep

    cfg = SweepConfig(name="small", seeds=(0, 1, 2), lambdas=(0.0, 0.01), classes=(2, 4), epochs=2,
                      probe_size=30, workers=1, analyze=False, data_dir=str(tiny_root),
                      storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    run_sweep(cfg)
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    return tracking, exp, cfg
