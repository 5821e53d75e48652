"""The Slurm recipe on a real single-node cluster started by the test (slurmctld, slurmd, munged
on loopback; skipped with the reason where Slurm is absent): slurm/submit.sh queues an array of 3
sweep workers sharing PostgreSQL and `mlflow server`, and the analysis after it (afterok). One
task is killed and requeued mid-run (`scontrol requeue`, released at once); the sweep's own
recovery makes the grid exactly once, and the dependent analysis runs once every task is done."""
import re
import subprocess
import sys

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from helpers.paths import REPO
from helpers.procs import wait_until
from helpers.servers import PG_PASSWORD, mlflow_server, postgres
from helpers.slurm_cluster import job_states, slurm_cluster, why_not

pytestmark = [pytest.mark.slow, *([pytest.mark.skip(reason=why_not())] if why_not() else [])]
GRID = {"UNDERSPEC_SWEEP": "slurm", "UNDERSPEC_SEEDS": "0,1,2", "UNDERSPEC_LAMBDAS": "0.0,0.01",
        "UNDERSPEC_CLASSES": "2,4", "UNDERSPEC_EPOCHS": "8", "UNDERSPEC_PROBE_SIZE": "20",
        "UNDERSPEC_CHUNK": "1", "UNDERSPEC_BOOTSTRAP": "50", "UNDERSPEC_GIF_CELLS": "none",
        "MLFLOW_EXPERIMENT_NAME": "slurm"}
POINTS = 12
DONE = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


def train_runs(client: MlflowClient, status: str | None = None) -> list:
    exp = client.get_experiment_by_name("slurm")
    if exp is None:
        return []
    where = "tags.`underspec.role` = 'train'" + (f" and attributes.status = '{status}'" if status else "")
    return client.search_runs([exp.experiment_id], where)


def logs(tmp) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted((tmp / "logs").glob("*.out")))


def requeue_task(env: dict, task: str) -> None:
    """Kill and requeue a running task, then release it at once (else it waits about 2 minutes)."""
    subprocess.run(["scontrol", "requeue", task], env=env, check=True, capture_output=True, timeout=60)
    wait_until(lambda: job_states(env, task).get(task) == "PENDING", f"{task} to be pending again", poll=0.5)
    subprocess.run(["scontrol", "update", f"jobid={task}", "starttime=now"], env=env, check=True,
                   capture_output=True, timeout=60)


@pytest.fixture()
def cluster(tmp_path, mnist_root):
    (tmp_path / "logs").mkdir()
    with postgres() as (pg_port, pg_env), mlflow_server(tmp_path / "srv", pg_port, pg_env) as uri, \
            slurm_cluster() as slurm_env:
        env = {**pg_env, **slurm_env, **GRID, "MLFLOW_TRACKING_URI": uri, "UNDERSPEC_PYTHON": sys.executable,
               "UNDERSPEC_STORAGE": f"postgresql://underspec@127.0.0.1:{pg_port}/optuna",
               "UNDERSPEC_DATA_DIR": str(mnist_root), "UNDERSPEC_OUT_DIR": str(tmp_path / "reports"),
               "SBATCH_OUTPUT": str(tmp_path / "logs" / "%x-%A_%a.out")}
        env.pop("MLFLOW_RUN_ID", None)
        yield env, MlflowClient(uri)


def test_array_of_three_workers_one_requeued_then_the_dependent_analysis(cluster, tmp_path, procs):
    env, client = cluster
    res = procs.run(["bash", str(REPO / "slurm" / "submit.sh"), "3"], env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    array, analysis = re.search(r"sweep array job (\d+) .*analysis job (\d+)", res.stdout).groups()
    task = f"{array}_1"
    wait_until(lambda: len(train_runs(client, "FINISHED")) >= 2 and job_states(env, task).get(task) == "RUNNING",
               "two FINISHED runs with task 1 running", poll=0.5)
    requeue_task(env, task)
    state = wait_until(lambda: job_states(env, analysis).get(analysis) in DONE and job_states(env, analysis)[analysis],
                       "the analysis job to end", poll=1)
    assert state == "COMPLETED", f"analysis {state}: {job_states(env, array)}\n{logs(tmp_path)}"
    assert "restart 1" in (tmp_path / "logs" / f"underspec-sweep-{array}_1.out").read_text(), logs(tmp_path)
    check_exactly_once(env, client, logs(tmp_path))
    exp = client.get_experiment_by_name("slurm").experiment_id
    runs = client.search_runs([exp], "tags.`underspec.role` = 'analysis'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert f"{POINTS} FINISHED training runs" in (tmp_path / "reports" / "slurm" / "report.md").read_text()


def check_exactly_once(env: dict, client: MlflowClient, why: str) -> None:
    runs = train_runs(client)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    hashes = {r.data.tags["underspec.config_hash"] for r in finished}
    assert len(finished) == POINTS and len(hashes) == POINTS, [(r.info.run_name, r.info.status) for r in runs]
    assert not [r for r in runs if r.info.status == "RUNNING"], why
    storage = env["UNDERSPEC_STORAGE"].replace("postgresql://", "postgresql+psycopg://")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PGPASSWORD", PG_PASSWORD)
        trials = optuna.load_study(study_name="slurm", storage=storage).get_trials()
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == POINTS, why
    assert not [t for t in trials if t.state == TrialState.RUNNING], why
