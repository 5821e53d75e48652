"""Reading what a step wrote and making the stores it writes to: a CSV's rows, the analysis
config over the `small_sweep` store, and a fresh MLflow store for `mlflow run` (MLflow Projects,
local env manager) with the command that runs an entry point against it."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from underspec.spec.config import AnalyzeConfig

from helpers.paths import REPO

PROJECT_EXPERIMENT = "e2e"


def read_rows(path) -> list[dict[str, str]]:
    """A CSV file's rows, as text keyed by the header."""
    with open(path) as fh:
        return list(csv.DictReader(fh))


def analyze_cfg(tmp_path: Path, data_root: Path, **kw) -> AnalyzeConfig:
    """The analysis of sweep `small` (the `small_sweep` fixture's), 50 bootstrap draws, its reports
    under tmp_path/reports; the stress suite off unless asked for (its rows are tested in
    test_stress.py, through the default)."""
    kw.setdefault("stress", "none")
    return AnalyzeConfig(sweep="small", bootstrap=50, out_dir=str(tmp_path / "reports"), data_dir=str(data_root),
                         **kw)


def mlflow_project_store(tmp_path: Path, data_root: Path) -> tuple:
    """A fresh SQLite store in tmp_path with the experiment `mlflow_run` logs to: (client, experiment
    id, env). The env puts this venv first on PATH (`--env-manager local` runs PATH's python), the
    data under data_root, and drops any run or experiment inherited from the caller."""
    from mlflow.tracking import MlflowClient  # here, not at the top: collecting a test loads no MLflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment(PROJECT_EXPERIMENT, artifact_location=str(tmp_path / "artifacts"))
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": bindir + os.pathsep + os.environ["PATH"],
           "UNDERSPEC_DATA_DIR": str(data_root)}
    for k in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(k, None)
    return client, exp, env


def mlflow_run(procs, env: dict[str, str], entry: str, *params: str) -> subprocess.CompletedProcess:
    """`mlflow run` of this repository's entry point with `-P` params, in the experiment of
    `mlflow_project_store`, started through the `procs` fixture."""
    cmd = [str(Path(sys.executable).parent / "mlflow"), "run", str(REPO), "-e", entry,
           "--env-manager", "local", "--experiment-name", PROJECT_EXPERIMENT]
    for p in params:
        cmd += ["-P", p]
    return procs.run(cmd, env=env)
