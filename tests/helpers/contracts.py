"""What every training run must hold, wherever it was made (the train step, a sweep, `mlflow run`):
params, tags, per-epoch metrics, the trajectory and embeddings artifacts."""
from __future__ import annotations

import numpy as np

from underspec.spec.settings import spec_of_params
from underspec.tracking import config_hash, run_name
from underspec.training.engine import EngineSettings

TRAJ_KEYS = {"epoch", "W1", "b1", "W2", "b2", "grad_W1", "grad_b1", "grad_W2", "grad_b2", "format_version"}


def check_contract(client, run, epochs, lr=0.01, probe=None):
    """What every training run must hold: params, tags, per-epoch metrics, artifacts."""
    assert run.info.status == "FINISHED"
    p = run.data.params
    spec = spec_of_params(p)
    assert run.info.run_name == run_name(spec)
    assert set(p) == {"init_seed", "order_seed", "jitter", "lambda", "classes", "epochs", "batch_size", "lr",
                      "hidden", "dataset", "probe_size", "threads"} | ({"seed"} if spec.one_seed else set())
    assert run.data.tags["underspec.role"] == "train"
    s = EngineSettings(epochs=int(p["epochs"]), probe_size=int(p["probe_size"]))
    assert run.data.tags["underspec.config_hash"] == config_hash(spec, s)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "l1_w1", "w1_sparsity",
                "inactive_units", "grad_norm"):
        hist = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in hist) == list(range(1, epochs + 1)), key
    local = client.download_artifacts(run.info.run_id, "trajectory.npz")
    with np.load(local, allow_pickle=False) as t:
        assert set(t.files) == TRAJ_KEYS
        C = spec.classes
        assert t["W1"].shape == (epochs + 1, 16, 784) and t["W2"].shape == (epochs + 1, C, 16)
        assert t["W1"].dtype == np.float32
        want = (t["W1"][0] - t["W1"][-1]) / lr
        assert np.abs(t["grad_W1"][-1] - want).max() <= 1e-3 * np.abs(want).max()
    with np.load(client.download_artifacts(run.info.run_id, "embeddings.npz"), allow_pickle=False) as e:
        assert e["h"].shape == (epochs + 1, probe or int(p["probe_size"]), 16)
    return spec
