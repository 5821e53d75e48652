"""The sweep's life cycle: each grid point trained once, a rerun and a resume that add nothing, the
ledger, a different grid or format version refused, interrupts, bad input."""
import os
import signal
import subprocess
import sys

import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.trial import TrialState

from underspec.spec.config import SweepConfig
from underspec.steps.sweep import run_sweep

from helpers.paths import REPO
from helpers.procs import DEADLINE_S, wait_until
from helpers.sweeps import sweep_setup, train_runs, trials


@pytest.fixture()
def sweep_env(tracking, tiny_root, tmp_path):
    return sweep_setup(tracking, tiny_root, tmp_path)


def test_sweep_trains_each_point_once_and_a_rerun_adds_nothing(sweep_env):
    client, exp, cfg = sweep_env
    assert run_sweep(cfg) == 8
    runs = train_runs(client, exp)
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["underspec.sweep"] for r in runs} == {"t"}
    sweeps = client.search_runs([exp], "tags.`underspec.role` = 'sweep'")
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    assert {r.data.tags[MLFLOW_PARENT_RUN_ID] for r in runs} == {sweeps[0].info.run_id}
    arts = {a.path for a in client.list_artifacts(sweeps[0].info.run_id)}
    assert {"grid.json", "summary.csv"} <= arts
    ts = trials(cfg)
    assert len(ts) == 8 and {t.state for t in ts} == {TrialState.COMPLETE}
    assert {(t.params["seed"], t.params["lambda"], t.params["classes"]) for t in ts} == \
        {(s, lam, c) for s in (0, 1) for lam in (0.0, 0.01) for c in (2, 3)}
    # Same grid spelled differently: resumes the same study and finds nothing to do.
    again = SweepConfig.from_strings(name="t", seeds="1,0", lambdas="0.01,0", classes="3,2", epochs="1",
                                     probe_size="20", workers="1", analyze="false",
                                     storage=cfg.storage, data_dir=cfg.data_dir)
    assert run_sweep(again) == 0
    assert len(trials(cfg)) == 8 and len(train_runs(client, exp)) == 8
    assert len(client.search_runs([exp], "")) == 9  # no new sweep run either


def test_a_sweep_with_nothing_to_train_still_removes_a_killed_process_staging(sweep_env, private_tmp):
    """A SIGKILLed worker leaves its staging folder; the next sweep removes it even when it finds
    the grid complete and trains nothing (seen in the chaos test: the folder outlived the grid)."""
    from underspec.training.artifacts import STAGING_PREFIX

    client, exp, cfg = sweep_env
    run_sweep(cfg)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is now free; reuse within this test would need 32768 new pids
    stale, live = private_tmp / f"{STAGING_PREFIX}{dead.pid}-x", private_tmp / f"{STAGING_PREFIX}{os.getpid()}-y"
    for folder in (stale, live):
        (folder / "run").mkdir(parents=True)
    assert run_sweep(cfg) == 0
    assert not stale.exists() and live.exists()  # a live process's folder is left alone


def test_a_different_grid_under_the_same_name_is_refused(sweep_env):
    from underspec.spec.config import ConfigError

    client, exp, cfg = sweep_env
    run_sweep(cfg)
    other = SweepConfig(**{**cfg.__dict__, "epochs": 2})
    with pytest.raises(ConfigError, match="exists with a different grid"):
        run_sweep(other)
    assert len(trials(cfg)) == 8 and len(train_runs(client, exp)) == 8


def test_resuming_a_sweep_of_another_format_version_is_refused(sweep_env):
    """A study stored before format versions were recorded holds version 1 runs (another
    minibatch order): resuming it is refused with one line naming both versions."""
    from underspec.scheduling import study as st
    from underspec.spec.config import ConfigError

    client, exp, cfg = sweep_env
    old_grid = {k: v for k, v in cfg.grid().items() if k != "format_version"}
    st.open_study(st.open_storage(cfg.storage), cfg.name, old_grid)
    with pytest.raises(ConfigError) as err:
        run_sweep(cfg)
    msg = str(err.value)
    assert "format version 1" in msg and "format version 2" in msg and "\n" not in msg, msg
    assert not train_runs(client, exp) and not trials(cfg)


def test_ledger_completes_trials_without_training(sweep_env, tmp_path):
    client, exp, cfg = sweep_env
    run_sweep(cfg)
    fresh = SweepConfig(**{**cfg.__dict__, "storage": f"sqlite:///{tmp_path / 'other.db'}"})
    assert run_sweep(fresh) == 8  # completed from the ledger...
    assert len(train_runs(client, exp)) == 8  # ...with no new training run
    assert {t.state for t in trials(fresh)} == {TrialState.COMPLETE}


def _sweep_cmd(cfg, epochs, chunk):
    return [sys.executable, str(REPO / "entrypoints" / "sweep.py"), "--name=k", "--seeds=0,1",
            "--lambdas=0.0,0.01", "--classes=2,3", f"--epochs={epochs}", "--probe_size=20",
            "--workers=1", f"--chunk={chunk}", "--analyze=false", f"--storage={cfg.storage}",
            f"--data_dir={cfg.data_dir}"]


@pytest.mark.parametrize("sig,code", [(signal.SIGKILL, -9), (signal.SIGTERM, 130)])
def test_interrupted_sweep_resumes_to_exactly_one_run_per_point(sweep_env, tmp_path, procs, sig, code):
    client, exp, cfg = sweep_env
    cmd = _sweep_cmd(cfg, epochs=60, chunk=4)
    proc = procs.start(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: len([r for r in train_runs(client, exp) if r.info.status == "FINISHED"]) >= 4
               and len(train_runs(client, exp)) == 8, "the first chunk FINISHED, the second training",
               alive=proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == code, err
    done = procs.run(_sweep_cmd(cfg, epochs=60, chunk=4), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = train_runs(client, exp)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    keys = [r.data.tags["underspec.config_hash"] for r in finished]
    assert len(finished) == 8 and len(set(keys)) == 8
    assert not [r for r in client.search_runs([exp], "") if r.info.status == "RUNNING"]
    ts = trials(cfg, "k")
    assert not [t for t in ts if t.state == TrialState.RUNNING]
    assert len([t for t in ts if t.state == TrialState.COMPLETE]) == 8


@pytest.mark.parametrize("args,needle", [
    (["--storage=postgresql://u:hunter2@localhost/db"], "PGPASSWORD"),
    (["--storage=not a url"], "storage='not a url'"),
    (["--name=../x"], "name='../x'"), (["--name="], "name=''"),
    (["--seeds=,"], "seeds=','"), (["--chunk=-1"], "chunk='-1'"), (["--analyze=maybe"], "analyze="),
])
def test_sweep_bad_input_exits_2_and_creates_nothing(tmp_path, args, needle):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    res = subprocess.run([sys.executable, str(REPO / "entrypoints" / "sweep.py"), *args], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and needle in res.stderr, res.stderr
    assert "hunter2" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
