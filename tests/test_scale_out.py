"""The scale-out topology with real processes: PostgreSQL (Optuna storage and MLflow backend),
one `mlflow server` with proxied artifacts, two sweep workers on one study."""
import signal
import subprocess
import sys

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from helpers.paths import REPO
from helpers.procs import DEADLINE_S, wait_until
from helpers.servers import PG_PASSWORD, mlflow_server, postgres

pytestmark = pytest.mark.slow
GRID = ["--name=scale", "--seeds=0,1,2", "--lambdas=0.0,0.01", "--classes=2,4", "--probe_size=20",
        "--workers=1", "--chunk=2", "--analyze=false"]


@pytest.fixture()
def topology(tmp_path, tiny_root, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)  # for this process's own look at the study
    with postgres() as (pg_port, pg_env):
        with mlflow_server(tmp_path / "srv", pg_port, pg_env) as uri:
            env = {**pg_env, "MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "scale",
                   "UNDERSPEC_DATA_DIR": str(tiny_root)}
            env.pop("MLFLOW_RUN_ID", None)
            storage = f"postgresql://underspec@127.0.0.1:{pg_port}/optuna"
            yield env, storage, MlflowClient(uri), tmp_path


def worker(procs, env, storage, cwd, epochs):
    return procs.start([sys.executable, str(REPO / "entrypoints" / "sweep.py"), *GRID, f"--epochs={epochs}",
                        f"--storage={storage}"], env=env, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)


def diagnosis(runs, ts, errs=()) -> str:
    """What each run and trial says, and the workers' logs: the evidence when exactly-once fails."""
    lines = [f"run {r.info.run_name} {r.info.status} {r.data.tags.get('underspec.worker')} "
             f"{r.data.tags.get('underspec.config_hash', '')[:8]}" for r in runs]
    lines += [f"trial {t.number} {t.state.name} {t.params} {t.user_attrs.get('underspec.worker')}" for t in ts]
    return "\n".join(lines + [e[-4000:] for e in errs])


def check_exactly_once(client, storage, errs=()):
    exp = client.get_experiment_by_name("scale").experiment_id
    runs = client.search_runs([exp], "tags.`underspec.role` = 'train'")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    hashes = [r.data.tags["underspec.config_hash"] for r in finished]
    ts = optuna.load_study(study_name="scale", storage=storage.replace("postgresql://", "postgresql+psycopg://"))
    assert len(finished) == 12 and len(set(hashes)) == 12, diagnosis(runs, ts.get_trials(), errs)
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in finished)
    assert not [r for r in client.search_runs([exp], "") if r.info.status == "RUNNING"]
    assert len([t for t in ts.get_trials() if t.state == TrialState.COMPLETE]) == 12
    assert not [t for t in ts.get_trials() if t.state == TrialState.RUNNING]
    return exp, finished


def test_two_workers_one_study_one_server_exactly_once_and_analysis_through_the_server(topology, procs):
    env, storage, client, tmp = topology
    workers = [worker(procs, env, storage, tmp, epochs=2) for _ in range(2)]  # same moment, fresh databases
    outs = [p.communicate(timeout=DEADLINE_S) for p in workers]
    assert [p.returncode for p in workers] == [0, 0], [o[1][-2000:] for o in outs]
    exp, finished = check_exactly_once(client, storage, [o[1] for o in outs])
    by_worker = {r.data.tags["underspec.worker"] for r in finished}
    assert len(by_worker) == 2  # both workers trained
    for out, err in outs:  # credentials never printed
        assert PG_PASSWORD not in out + err
    for r in finished[:3]:
        assert PG_PASSWORD not in str(r.data.params) + str(r.data.tags)
    res = procs.run([sys.executable, str(REPO / "entrypoints" / "analyze.py"), "--sweep=scale",
                     "--bootstrap=50", f"--out_dir={tmp / 'reports'}"], env=env, cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    analysis = client.search_runs([exp], "tags.`underspec.role` = 'analysis'")
    assert len(analysis) == 1 and analysis[0].info.status == "FINISHED"
    assert "12 FINISHED training runs" in (tmp / "reports" / "scale" / "report.md").read_text()


def finished_runs(client) -> int:
    exp = client.get_experiment_by_name("scale")
    if exp is None:
        return 0
    return len(client.search_runs([exp.experiment_id], "tags.`underspec.role` = 'train' and attributes.status = "
                                  "'FINISHED'"))


def test_a_worker_killed_and_restarted_still_gives_exactly_once(topology, procs):
    env, storage, client, tmp = topology
    a = worker(procs, env, storage, tmp, epochs=40)
    b = worker(procs, env, storage, tmp, epochs=40)
    wait_until(lambda: finished_runs(client) >= 2, "two FINISHED runs", poll=0.5, alive=b)
    a.send_signal(signal.SIGKILL)  # the main process only, as a crash would; its group is reaped at the end
    a.communicate(timeout=DEADLINE_S)
    again = worker(procs, env, storage, tmp, epochs=40)
    errs = []
    for p in (b, again):
        out, err = p.communicate(timeout=DEADLINE_S)
        assert p.returncode == 0, err[-3000:]
        errs.append(err)
    check_exactly_once(client, storage, errs)
