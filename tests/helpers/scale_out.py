"""The scale-out topology shared by the scale-out tests: PostgreSQL (Optuna storage and MLflow
backend), one `mlflow server` with proxied artifacts, sweep workers as processes, and the
exactly-once check. A pytest plugin (tests/conftest.py registers it): `topology` is a fixture."""
import subprocess
import sys

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from helpers.paths import REPO
from helpers.servers import PG_PASSWORD, mlflow_server, postgres

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
