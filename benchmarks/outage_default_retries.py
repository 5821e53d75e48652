"""How long a sweep worker waits for a vanished tracking server with MLflow's default retries
before it gives up (RELIABILITY.md). Starts a real `mlflow server`, a tiny sweep against it, kills
the server once two runs are FINISHED, and times the worker's exit.

    .venv/bin/python benchmarks/outage_default_retries.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's code, and the tests' helpers

from mlflow.tracking import MlflowClient  # noqa: E402

from helpers.servers import MlflowServer  # noqa: E402
from helpers.tiny_mnist import write_tiny_mnist  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="underspec-outage-"))
    srv = MlflowServer(tmp / "srv", f"sqlite:///{tmp / 'srv.db'}", dict(os.environ))
    srv.start()
    env = {**os.environ, "MLFLOW_TRACKING_URI": srv.uri, "MLFLOW_EXPERIMENT_NAME": "giveup",
           "UNDERSPEC_DATA_DIR": str(write_tiny_mnist(tmp / "mnist"))}
    env.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
    cmd = [sys.executable, str(REPO / "entrypoints" / "sweep.py"), "--name=giveup", "--seeds=0,1",
           "--lambdas=0.0,0.01", "--classes=2,3", "--epochs=150", "--probe_size=20", "--workers=1", "--chunk=2",
           "--analyze=false", f"--storage=sqlite:///{tmp / 'optuna.db'}"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(srv.uri)
    while proc.poll() is None:
        exp = client.get_experiment_by_name("giveup")
        if exp and len(client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")) >= 2:
            break
        time.sleep(0.2)
    srv.stop()
    t0 = time.time()
    _, err = proc.communicate()
    print(f"exit {proc.returncode} {time.time() - t0:.0f} s after the server went away (MLflow defaults)")
    print(err.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
