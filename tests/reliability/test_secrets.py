"""Credentials given through the environment never reach params, tags, metrics, run names, Optuna
attributes, logs, reports or artifacts. A real PostgreSQL (password through PGPASSWORD) holds the
Optuna study and the MLflow backend of a real `mlflow server`; the client also carries MLflow and
cloud credentials. One sweep (with its analysis) runs, then everything recorded is scanned."""
from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from helpers.paths import REPO
from helpers.servers import PG_PASSWORD, mlflow_server, postgres

pytestmark = pytest.mark.slow
SECRETS = {"PGPASSWORD": PG_PASSWORD, "MLFLOW_TRACKING_PASSWORD": "mlflow-pw-Zq81x",
           "AWS_SECRET_ACCESS_KEY": "aws-key-Kd73Lm", "MLFLOW_TRACKING_TOKEN": "tok-Hh22Pq"}


def leaks(blob: bytes | str, where: str) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [f"{name} in {where}" for name, value in SECRETS.items() if value.encode() in data]


def all_artifacts(client: MlflowClient, run_id: str, path: str = "") -> list[str]:
    out = []
    for f in client.list_artifacts(run_id, path):
        out += all_artifacts(client, run_id, f.path) if f.is_dir else [f.path]
    return out


def scan_tracking(client: MlflowClient, tmp: Path) -> tuple[int, int, list[str]]:
    found, n_runs, n_files = [], 0, 0
    exps = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(exps, ""):
        n_runs += 1
        rid = run.info.run_id
        meta = f"{run.info.run_name} {run.data.params} {run.data.tags} {sorted(run.data.metrics)}"
        found += leaks(meta, f"run {rid} params/tags/metrics")
        for path in all_artifacts(client, rid):
            n_files += 1
            local = client.download_artifacts(rid, path, str(tmp / "dl" / rid))
            found += leaks(Path(local).read_bytes(), f"run {rid} artifact {path}")
    return n_runs, n_files, found


def test_no_credential_reaches_any_record(tmp_path, tiny_root, procs, monkeypatch):
    with postgres() as (pg_port, pg_env), mlflow_server(tmp_path / "srv", pg_port, pg_env) as uri:
        env = {**pg_env, **SECRETS, "MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": "alice",
               "MLFLOW_EXPERIMENT_NAME": "sec", "UNDERSPEC_DATA_DIR": str(tiny_root)}
        env.pop("MLFLOW_RUN_ID", None)
        env.pop("MLFLOW_TRACKING_TOKEN")  # a token and a password at once: MLflow takes one; try each below
        storage = f"postgresql://underspec@127.0.0.1:{pg_port}/optuna"
        cmd = [sys.executable, str(REPO / "entrypoints" / "sweep.py"), "--name=sec", "--seeds=0,1", "--lambdas=0.0",
               "--classes=2,3", "--epochs=2", "--probe_size=20", "--workers=1", f"--storage={storage}"]
        res = procs.run(cmd, env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        again = procs.run([sys.executable, str(REPO / "entrypoints" / "analyze.py"), "--sweep=sec",
                           "--bootstrap=20", "--out_dir=reports2"],
                          env={**env, "MLFLOW_TRACKING_TOKEN": SECRETS["MLFLOW_TRACKING_TOKEN"],
                               "MLFLOW_TRACKING_PASSWORD": ""}, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        found = leaks(res.stdout + res.stderr + again.stdout + again.stderr, "the workers' output")
        n_runs, n_files, in_tracking = scan_tracking(MlflowClient(uri), tmp_path)
        found += in_tracking
        monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)  # this process's own look at the study
        study = optuna.load_study(study_name="sec", storage=storage.replace("postgresql://", "postgresql+psycopg://"))
        found += leaks(repr(study.user_attrs) + repr(study._storage.get_study_system_attrs(study._study_id)),
                       "the study's attributes")
        for t in study.get_trials():
            found += leaks(repr((t.params, t.user_attrs, t.system_attrs)), f"trial {t.number}")
        for f in [*(tmp_path / "reports").rglob("*"), *(tmp_path / "reports2").rglob("*")]:
            if f.is_file():
                found += leaks(f.read_bytes(), str(f.relative_to(tmp_path)))
        found += leaks((tmp_path / "srv" / "mlflow-server.log").read_text(), "the server's log")
        assert found == []
        client = MlflowClient(uri)  # the scan can fail: a planted secret is found
        client.set_tag(client.search_runs([e.experiment_id for e in client.search_experiments()], "")[0].info.run_id,
                       "planted", SECRETS["AWS_SECRET_ACCESS_KEY"])
        assert scan_tracking(client, tmp_path / "again")[2]
        assert n_runs >= 6 and n_files >= 8  # the scan saw the training runs, the sweep and the analysis
        print(f"secrets scan: {n_runs} runs, {n_files} artifacts, {len(study.get_trials())} trials, no leak")
