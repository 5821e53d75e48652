import hashlib
import os
import signal
import subprocess
import sys

import pytest
import torch
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from underspec.spec.config import TrainConfig
from underspec.steps.train import run_train
from underspec.tracking import config_hash, run_name
from underspec.training.engine import EngineSettings, RunSpec

from helpers.contracts import check_contract
from helpers.paths import REPO
from helpers.procs import DEADLINE_S, wait_until


def test_run_name_and_hash_follow_the_contract():
    assert run_name(RunSpec(0, 0.001, 9)) == "s0-l0.001-c9" and run_name(RunSpec(3, 0.0, 2)) == "s3-l0.0-c2"
    s = EngineSettings()
    doc = '{"batch_size":64,"classes":9,"dataset":"mnist","epochs":50,"format_version":2,' \
          '"hidden":16,"lambda":0.001,"lr":0.01,"probe_size":1000,"seed":0}'
    assert config_hash(RunSpec(0, 0.001, 9), s) == hashlib.sha256(doc.encode()).hexdigest()
    assert config_hash(RunSpec(0, 0.001, 9), EngineSettings(threads=2, device="cuda")) == \
        config_hash(RunSpec(0, 0.001, 9), s)  # environment facts stay out of the hash


def test_train_logs_one_finished_nested_run_per_config(tracking, tiny_root):
    cfg = TrainConfig(seeds=(0, 42), lambdas=(0.0, 0.01), classes=(2, 3), epochs=2, probe_size=30,
                      data_dir=str(tiny_root), sweep="unit")
    ids = run_train(cfg)
    assert len(ids) == 8
    runs = [tracking.get_run(i) for i in ids.values()]
    parents = {r.data.tags[MLFLOW_PARENT_RUN_ID] for r in runs}
    assert len(parents) == 1
    parent = tracking.get_run(parents.pop())
    assert parent.data.tags["underspec.role"] == "batch" and parent.info.status == "FINISHED"
    specs = {check_contract(tracking, r, epochs=2) for r in runs}
    assert specs == set(ids)
    assert all(r.data.tags["underspec.sweep"] == "unit" for r in runs)
    assert {r.data.tags["underspec.torch"] for r in runs} == {torch.__version__}  # as the step passes it


def test_sigterm_marks_every_unfinished_run_killed(tracking, tiny_root, tmp_path, procs):
    """SIGTERM stops at the next safe point: runs already fully written stay FINISHED, every other
    run and the parent end KILLED, none is left RUNNING, and the exit status is 130."""
    env = {**os.environ}
    proc = procs.start(
        [sys.executable, str(REPO / "entrypoints" / "train.py"), "--seeds=0,1", "--lambdas=0.0,0.01",
         "--classes=2", "--epochs=4000", "--probe_size=30", f"--data_dir={tiny_root}"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    # All four runs exist (created RUNNING before training starts); 4000 epochs cannot end first.
    wait_until(lambda: len(tracking.search_runs([exp], "tags.`underspec.role` = 'train'")) == 4,
               "the four training runs", alive=proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 130, err
    runs = tracking.search_runs([exp], "")
    assert len(runs) == 5 and "RUNNING" not in {r.info.status for r in runs}, err
    parent = [r for r in runs if r.data.tags["underspec.role"] == "batch"][0]
    assert parent.info.status == "KILLED"
    killed = [r for r in runs if r.info.status == "KILLED" and r is not parent]
    assert killed, "the interrupt came after training: make the run longer"
    for r in runs:
        if r.info.status == "FINISHED":  # complete: both artifacts and every epoch's metrics
            assert {a.path for a in tracking.list_artifacts(r.info.run_id)} == {"trajectory.npz", "embeddings.npz"}


def test_a_lost_race_on_a_unique_key_is_retried_once_and_nothing_else_is():
    """Two workers creating the experiment tag or the MNIST dataset row at one moment: the later
    insert fails on the unique key (MLflow's SQL store checks, then inserts); the row now exists,
    so one more call succeeds. Any other error is raised at once."""
    from mlflow.exceptions import MlflowException

    from underspec.tracking.ui import once_more_on_race

    calls = []

    def racing():
        calls.append(1)
        if len(calls) == 1:
            raise MlflowException("BAD_REQUEST: (psycopg.errors.UniqueViolation) duplicate key value violates "
                                  'unique constraint "uq_dataset_experiment_id_name_digest"')
        return "logged"

    assert once_more_on_race(racing) == "logged" and len(calls) == 2

    def broken():
        calls.append(1)
        raise MlflowException("RESOURCE_DOES_NOT_EXIST: no run")

    calls.clear()
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        once_more_on_race(broken)
    assert len(calls) == 1


def test_tracking_imports_neither_torch_nor_the_training_layer():
    """The step hands tracking the torch version and the data set's digest: MLflow's layer stays
    light, and a wrong-way import shows here."""
    code = ("import sys; import underspec.tracking; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('underspec.training')))")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr
