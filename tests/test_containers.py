"""The image built and the compose topology run for real (opt-in: `make test-containers`, which
needs a Docker engine with the two base images and the compose v2 plugin; skipped with the
reason otherwise): PostgreSQL, `mlflow server` and 3 CPU workers on a 12-point grid, one worker
`docker kill`ed while it trains, the others taking its points over after a short grace period,
then the analysis in a container. Exactly once, and the report on its volume and in its run."""
import json
import os
import shutil
import subprocess
import uuid

import pytest
from mlflow.tracking import MlflowClient

from helpers.paths import REPO
from helpers.procs import DEADLINE_S, wait_until
from helpers.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.containers]
BASES = ("python:3.11-slim-bookworm", "postgres:16-bookworm")
GRID = {"UNDERSPEC_SWEEP": "ctest", "UNDERSPEC_SEEDS": "0,1,2", "UNDERSPEC_LAMBDAS": "0.0,0.01",
        "UNDERSPEC_CLASSES": "2,4", "UNDERSPEC_EPOCHS": "15", "UNDERSPEC_PROBE_SIZE": "20",
        "UNDERSPEC_CHUNK": "1", "UNDERSPEC_GRACE_S": "15", "UNDERSPEC_HEARTBEAT_S": "2",
        "UNDERSPEC_BOOTSTRAP": "50", "UNDERSPEC_GIF_CELLS": "none", "MLFLOW_EXPERIMENT_NAME": "ctest"}
POINTS = 12
TRIALS = """
import json, optuna
s = optuna.load_study(study_name="ctest", storage="postgresql+psycopg://underspec@postgres:5432/optuna")
print(json.dumps([[t.state.name, t.params] for t in s.get_trials()]))
"""


def _why_not() -> str | None:
    if os.environ.get("UNDERSPEC_CONTAINER_TESTS") != "1":
        return "opt-in: run `make test-containers` (sets UNDERSPEC_CONTAINER_TESTS=1)"
    if shutil.which("docker") is None:
        return "no docker CLI"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine answers"
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        return "no compose v2 plugin"
    missing = [b for b in BASES if subprocess.run(["docker", "image", "inspect", b], capture_output=True).returncode]
    return f"base images absent: {', '.join(missing)}" if missing else None


if (_reason := _why_not()) is not None:
    pytestmark.append(pytest.mark.skip(reason=_reason))


class Compose:
    """`docker compose` on the project's files with the CPU override, as its own project."""

    def __init__(self, env: dict):
        self.project = f"underspec-test-{uuid.uuid4().hex[:8]}"
        self.env = env

    def __call__(self, *args, timeout: float = DEADLINE_S, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["docker", "compose", "-p", self.project, "-f", "docker/compose.yaml", "-f",
               "docker/compose.cpu.yaml", *args]
        res = subprocess.run(cmd, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert not check or res.returncode == 0, f"{' '.join(args)}: {res.stderr[-3000:]}\n{self.logs()}"
        return res

    def logs(self) -> str:
        res = subprocess.run(["docker", "compose", "-p", self.project, "-f", "docker/compose.yaml", "logs",
                              "--tail", "30", "--no-color"], cwd=REPO, env=self.env, capture_output=True,
                             text=True, timeout=120)
        return res.stdout[-8000:]

    def containers(self, service: str) -> list[str]:
        return self("ps", "-a", "-q", service).stdout.split()


@pytest.fixture(scope="module")
def image():
    res = subprocess.run(["docker", "build", "-q", "-f", "docker/Dockerfile", "-t", "underspec:latest", "."],
                         cwd=REPO, env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True, text=True,
                         timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture()
def compose(image, tmp_path, mnist_root):
    secret = tmp_path / "pg_password.txt"
    secret.write_text(uuid.uuid4().hex)
    secret.chmod(0o600)  # as a careful user makes it: only its owner (root here) may read it
    port = free_port()
    env = {**os.environ, **GRID, "UNDERSPEC_PG_PASSWORD_FILE": str(secret), "UNDERSPEC_MLFLOW_PORT": str(port),
           "UNDERSPEC_MNIST": str(mnist_root.resolve())}
    c = Compose(env)
    c.uri = f"http://127.0.0.1:{port}"
    try:
        yield c
    finally:
        c("--profile", "analyze", "down", "-v", "--remove-orphans", "--timeout", "5", check=False)  # its volume too


def train_runs(client: MlflowClient, status: str | None = None) -> list:
    exp = client.get_experiment_by_name("ctest")
    if exp is None:
        return []
    where = "tags.`underspec.role` = 'train'" + (f" and attributes.status = '{status}'" if status else "")
    return client.search_runs([exp.experiment_id], where)


def kill_a_training_worker(compose: Compose, client: MlflowClient) -> str:
    """Once 2 runs are FINISHED, SIGKILL (`docker kill`) a worker that has a run RUNNING."""
    wait_until(lambda: len(train_runs(client, "FINISHED")) >= 2, "two FINISHED runs", poll=1)
    workers = compose.containers("worker")
    assert len(workers) == 3, compose.logs()

    def victim():
        hosts = {r.data.tags.get("underspec.host") for r in train_runs(client, "RUNNING")}
        return next((w for w in workers if w[:12] in hosts), None)

    dead = wait_until(victim, "a worker with a RUNNING run", poll=0.5)
    subprocess.run(["docker", "kill", dead], check=True, capture_output=True)
    return dead


def test_compose_on_cpu_three_workers_one_killed_exactly_once_and_analysis(compose):
    compose("up", "-d", "--no-build", "--scale", "worker=3", timeout=900)
    client = MlflowClient(compose.uri)
    dead = kill_a_training_worker(compose, client)
    for w in compose.containers("worker"):
        if w != dead:
            res = subprocess.run(["docker", "wait", w], capture_output=True, text=True, timeout=DEADLINE_S)
            assert res.stdout.strip() == "0", f"worker {w[:12]} exited {res.stdout}\n{compose.logs()}"
    runs = train_runs(client)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    hashes = {r.data.tags["underspec.config_hash"] for r in finished}
    assert len(finished) == POINTS and len(hashes) == POINTS, [(r.info.run_name, r.info.status) for r in runs]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    on_dead = [r for r in runs if r.data.tags.get("underspec.host") == dead[:12]]
    assert on_dead and {r.info.status for r in on_dead} <= {"FINISHED", "KILLED"}, [r.info.status for r in on_dead]
    trials = json.loads(compose("run", "--rm", "--no-deps", "worker", "python", "-c", TRIALS).stdout.splitlines()[-1])
    complete = [json.dumps(p, sort_keys=True) for s, p in trials if s == "COMPLETE"]
    assert len(complete) == POINTS and len(set(complete)) == POINTS, trials
    assert not [t for t in trials if t[0] == "RUNNING"], trials
    check_analysis(compose, client)


def check_analysis(compose: Compose, client: MlflowClient) -> None:
    compose("run", "--rm", "analyze")
    report = compose("run", "--rm", "--no-deps", "analyze", "cat", "/reports/ctest/report.md").stdout
    assert f"{POINTS} FINISHED training runs" in report
    exp = client.get_experiment_by_name("ctest").experiment_id
    analysis = client.search_runs([exp], "tags.`underspec.role` = 'analysis'")
    assert len(analysis) == 1 and analysis[0].info.status == "FINISHED"
    assert "report.md" in {a.path for a in client.list_artifacts(analysis[0].info.run_id)}
