"""The image cannot be built here (no Docker engine): lint the Dockerfile, run its install steps
against a real environment, and check the compose file agrees with the image's interface."""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from helpers.paths import REPO

DOCKER = REPO / "docker"


def test_hadolint_reports_nothing():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    res = subprocess.run([exe, "--failure-threshold", "info", str(DOCKER / "Dockerfile")],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr


def test_image_pins_satisfy_the_project_and_are_what_the_suite_runs_with():
    import tomllib
    from importlib.metadata import version

    lines = (DOCKER / "requirements.txt").read_text().splitlines()
    pins = {Requirement(ln).name.lower(): Requirement(ln) for ln in lines if ln.strip() and not ln.startswith("#")}
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in map(Requirement, deps):
        pin = pins[dep.name.lower()]
        pinned = next(iter(pin.specifier)).version
        assert dep.specifier.contains(pinned), (dep, pinned)
        assert version(dep.name) == pinned, f"{dep.name}: suite runs {version(dep.name)}, image pins {pinned}"


@pytest.mark.slow
def test_install_steps_run_for_real(tmp_path):
    """docker/install.sh, as the Dockerfile runs it, in a fresh venv that sees this environment's
    packages (so nothing is downloaded): requirements resolve, the project installs, pip check passes."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "parent-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    app = tmp_path / "app"  # what the Dockerfile copies to /app; building there keeps the checkout clean
    app.mkdir()
    for name in ("pyproject.toml", "README.md", "underspec", "entrypoints", "docker"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, app / name)
    res = subprocess.run([str(app / "docker" / "install.sh"), py, str(app)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    where = subprocess.run([py, "-c", "import underspec.sweep, underspec; print(underspec.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert str(site) in where


def test_compose_matches_the_image_and_keeps_secrets_out():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "worker"} <= set(services)
    worker_env = set(services["worker"]["environment"])
    used = set(re.findall(r"\$\{?(UNDERSPEC_[A-Z_]+)", (DOCKER / "worker.sh").read_text()))
    assert worker_env & {v for v in worker_env if v.startswith("UNDERSPEC_")} <= used | {"UNDERSPEC_DATA_DIR"}
    assert "UNDERSPEC_STORAGE" in worker_env and "@" in services["worker"]["environment"]["UNDERSPEC_STORAGE"]
    assert ":" not in services["worker"]["environment"]["UNDERSPEC_STORAGE"].split("//")[1].split("@")[0]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "UNDERSPEC_DATA_DIR=/data" in dockerfile and services["worker"]["volumes"] == ["mnist:/data"]
    assert all(p.startswith("127.0.0.1:") for p in services["mlflow"]["ports"])
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["count"] == 1
    text = (DOCKER / "compose.yaml").read_text()
    assert "POSTGRES_PASSWORD:" not in text and "PGPASSWORD" not in text  # secrets only
    assert compose["secrets"]["pg_password"]["file"] == "./pg_password.txt"
    assert "pg_password.txt" in (REPO / ".gitignore").read_text()


def test_worker_script_refuses_without_a_storage(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "UNDERSPEC_STORAGE"}
    res = subprocess.run(["sh", str(DOCKER / "worker.sh")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode != 0 and "UNDERSPEC_STORAGE" in res.stderr
