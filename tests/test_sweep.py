import os
import signal
import subprocess
import sys
import threading
import time

import optuna
import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.trial import TrialState

from underspec.spec.config import SweepConfig
from underspec.steps.sweep import run_sweep

from helpers.paths import REPO
from helpers.procs import DEADLINE_S, wait_until

GRID = dict(seeds=(0, 1), lambdas=(0.0, 0.01), classes=(2, 3), epochs=1, probe_size=20, workers=1,
            analyze=False)


@pytest.fixture()
def sweep_env(tracking, tiny_root, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    cfg = SweepConfig(name="t", storage=storage, data_dir=str(tiny_root), **GRID)
    return tracking, exp, cfg


def trials(cfg, name=None):
    return optuna.load_study(study_name=name or cfg.name, storage=cfg.storage).get_trials()


def train_runs(client, exp):
    return client.search_runs([exp], "tags.`underspec.role` = 'train'")


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


def test_snapshot_gives_a_point_to_its_lowest_numbered_live_trial(tmp_path):
    """Two live claims of one point: both workers must agree the lower trial number keeps it."""
    from underspec.scheduling import study as st
    from underspec.training.engine import RunSpec

    storage = st.open_storage(f"sqlite:///{tmp_path / 'o.db'}")
    grid = {"seeds": [0], "lambdas": [0.0], "classes": [2, 3], "epochs": 1, "batch_size": 64, "lr": 0.01,
            "hidden": 16, "dataset": "mnist", "probe_size": 20}
    study = st.open_study(storage, "dup", grid)
    st.Heartbeat(study, "me:1:1").close()
    numbers = []
    for _ in range(2):
        study.enqueue_trial({"seed": 0, "lambda": 0.0, "classes": 3})
        t = study.ask()
        t.set_user_attr(st.WORKER_ATTR, f"{os.uname().nodename}:{os.getpid()}:1")
        study.set_user_attr(st.HEARTBEAT_PREFIX + f"{os.uname().nodename}:{os.getpid()}:1", time.time())
        numbers.append(t.number)
    snap = st.snapshot(study, {RunSpec(0, 0.0, 2), RunSpec(0, 0.0, 3)})
    assert snap.live == {RunSpec(0, 0.0, 3): min(numbers)}


def _orphan_trial(cfg, attribute_to: str | None = None):
    """A RUNNING trial for one grid point, as a worker leaves it when it dies inside its claim
    (asked, one suggest made, never attributed) or, with attribute_to, while it trains."""
    from underspec.scheduling import study as st

    storage = st.open_storage(cfg.storage)
    study = st.open_study(storage, cfg.name, cfg.grid())
    trial = study.ask()
    trial.suggest_categorical("seed", list(cfg.grid()["seeds"]))
    if attribute_to:
        trial.set_user_attr(st.WORKER_ATTR, attribute_to)
        study.set_user_attr(st.HEARTBEAT_PREFIX + attribute_to, time.time())
    return trial.number


@pytest.mark.timeout(300)
def test_a_trial_left_unattributed_by_a_dead_worker_is_taken_over(sweep_env, monkeypatch):
    """The hole behind session 1's flake: such a trial once counted as a live worker's for the
    grace period, so every other worker left and the point was never trained. With an hour's
    grace, only recognising it as orphaned at once lets this finish."""
    from underspec.scheduling import study as st

    monkeypatch.setattr(st, "GRACE_S", 3600.0)
    client, exp, cfg = sweep_env
    orphan = _orphan_trial(cfg)
    assert run_sweep(cfg) == 8
    runs = [r for r in train_runs(client, exp) if r.info.status == "FINISHED"]
    assert len(runs) == 8 and len({r.data.tags["underspec.config_hash"] for r in runs}) == 8
    states = {t.number: t.state for t in trials(cfg)}
    assert states[orphan] == TrialState.FAIL and TrialState.RUNNING not in states.values()


def test_a_worker_waits_for_a_live_holder_and_takes_over_when_it_dies(sweep_env, monkeypatch, procs):
    from underspec.steps import sweep as sw

    client, exp, cfg = sweep_env
    monkeypatch.setattr(sw, "POLL_S", 0.5)
    holder = procs.start(["sleep", "6"])  # a live worker on this host, by its pid
    threading.Thread(target=holder.wait, daemon=True).start()  # reaped at exit: no zombie pid
    _orphan_trial(cfg, attribute_to=f"{os.uname().nodename}:{holder.pid}:1")
    assert run_sweep(cfg) == 8  # it waited for the holder, then trained the point it left
    assert holder.poll() is not None  # the sweep cannot have finished while the holder lived
    runs = [r for r in train_runs(client, exp) if r.info.status == "FINISHED"]
    assert len(runs) == 8 and len({r.data.tags["underspec.config_hash"] for r in runs}) == 8


def test_telling_a_requeued_trial_with_one_grid_point_left_is_not_an_error(tmp_path):
    """GridSampler.after_trial reads the told trial's grid_id when one point is left; a re-queued
    trial has none (KeyError from Optuna, after the state is stored). Seen in CI, session 2."""
    from underspec.scheduling import study as st

    storage = st.open_storage(f"sqlite:///{tmp_path / 'o.db'}")
    grid = {"seeds": [0], "lambdas": [0.0], "classes": [2, 3], "epochs": 1, "batch_size": 64, "lr": 0.01,
            "hidden": 16, "dataset": "mnist", "probe_size": 20}
    study = st.open_study(storage, "requeue", grid)
    first = study.ask()
    p = st.suggest_point(first, grid)
    st.tell(study, first.number, failed=True)
    study.enqueue_trial({"seed": p.seed, "lambda": p.lam, "classes": p.classes})
    again = study.ask()
    assert st.suggest_point(again, grid) == p
    st.tell(study, again.number, 0.5)  # raised KeyError: 'grid_id' before
    assert {t.number: t.state for t in study.get_trials()} == {first.number: TrialState.FAIL,
                                                               again.number: TrialState.COMPLETE}
    with pytest.raises(Exception, match="COMPLETE"):  # a real mistake still raises
        st.tell(study, again.number, failed=True)


def test_a_worker_killed_right_after_creating_its_sweep_run_leaves_nothing_running(sweep_env, monkeypatch):
    """A worker that dies in the request after the one creating its sweep run (SIGKILL, the OOM
    killer) once left a RUNNING run without its worker tag, which no recovery could end. The
    tags now travel with the creation; the next worker ends the run KILLED."""
    from mlflow.tracking import MlflowClient

    from underspec.scheduling import study as st

    class Died(BaseException):
        pass

    client, exp, cfg = sweep_env
    create = MlflowClient.create_run

    def create_then_die(self, *args, **kwargs):
        run = create(self, *args, **kwargs)
        if (kwargs.get("tags") or {}).get("mlflow.runName", "").startswith("sweep-"):
            raise Died(run.info.run_id)
        return run

    with monkeypatch.context() as m, pytest.raises(Died) as died:
        m.setattr(MlflowClient, "create_run", create_then_die)
        m.setattr(st, "worker_id", lambda: "elsewhere:1:1")  # a worker of another host
        run_sweep(cfg)
    study = optuna.load_study(study_name=cfg.name, storage=cfg.storage)
    study.set_user_attr(st.HEARTBEAT_PREFIX + "elsewhere:1:1", 0.0)  # its heartbeat long stale
    orphan = client.get_run(died.value.args[0])
    assert orphan.info.status == "RUNNING"
    assert orphan.data.tags.get("underspec.worker") == "elsewhere:1:1", orphan.data.tags
    assert run_sweep(cfg) == 8
    assert client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert not [r for r in client.search_runs([exp], "") if r.info.status == "RUNNING"]


def test_a_twin_left_by_a_retried_create_is_deleted_not_shown(sweep_env, monkeypatch):
    """MLflow's client retries a create request whose answer was lost (the server killed after
    storing it): the first run is never used again. The sweep deletes such an empty twin when it
    ends, so the experiment shows one run per point; nothing recorded is lost."""
    from mlflow.tracking import MlflowClient

    client, exp, cfg = sweep_env
    create, made = MlflowClient.create_run, []

    def create_twice_once(self, *args, **kwargs):
        if not made and (kwargs.get("tags") or {}).get("underspec.role") == "train":
            made.append(create(self, *args, **kwargs))  # stored, but its answer "lost"
        return create(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "create_run", create_twice_once)
    assert run_sweep(cfg) == 8
    twin = client.get_run(made[0].info.run_id)
    assert twin.info.lifecycle_stage == "deleted"
    runs = train_runs(client, exp)
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
