"""Without a Docker engine (the image itself is built and run by tests/test_containers.py, opt-in):
lint the Dockerfile, run its install steps against a real environment, and check the compose
files agree with the image's interface and with the options derived from the configs."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from entrypoints.from_env import compose_text, env_names, step_args

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
    # the two steps import every subpackage (scheduling through the sweep, the rest through the analysis)
    code = "import underspec.steps.sweep, underspec.steps.analyze, underspec; print(underspec.__file__)"
    where = subprocess.run([py, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert str(site) in where


def test_compose_matches_the_image_and_keeps_secrets_out():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "worker", "analyze"} <= set(services)
    known = set(env_names())
    for name in ("worker", "analyze"):
        assert services[name]["extends"] == {"file": "options.yaml", "service": "options"}
        own = {v for v in services[name]["environment"] if v.startswith("UNDERSPEC_")}
        assert own <= known, own - known  # a fixed value only for an option the steps have
        assert services[name]["depends_on"]["mlflow"] == {"condition": "service_healthy"}
    storage = services["worker"]["environment"]["UNDERSPEC_STORAGE"]
    assert "@" in storage and ":" not in storage.split("//")[1].split("@")[0]
    assert all("healthcheck" in services[s] for s in ("postgres", "mlflow"))
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "UNDERSPEC_DATA_DIR=/data" in dockerfile and services["worker"]["volumes"][0].endswith(":/data")
    assert all(p.startswith("127.0.0.1:") for p in services["mlflow"]["ports"])
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["count"] == 1
    text = (DOCKER / "compose.yaml").read_text()
    assert "POSTGRES_PASSWORD:" not in text and "PGPASSWORD" not in text and "PGPASSFILE" not in text
    assert compose["secrets"]["pg_password"]["file"].endswith(":-./pg_password.txt}")
    assert "pg_password.txt" in (REPO / ".gitignore").read_text()
    assert "pg_password.txt" in (REPO / ".dockerignore").read_text()


def test_options_file_is_generated_from_the_configs():
    """docker/options.yaml passes every UNDERSPEC_<OPTION> through; it is compose_text(), current."""
    assert (DOCKER / "options.yaml").read_text() == compose_text()
    listed = yaml.safe_load(compose_text())["services"]["options"]["environment"]
    assert {"UNDERSPEC_SEEDS", "UNDERSPEC_INIT_SEEDS", "UNDERSPEC_JITTERS", "UNDERSPEC_HIDDEN", "UNDERSPEC_LR",
            "UNDERSPEC_BATCH_SIZE", "UNDERSPEC_GRACE_S", "UNDERSPEC_SWEEP", "UNDERSPEC_OUT_DIR"} <= set(listed)
    assert "UNDERSPEC_NAME" not in listed  # the sweep's name is UNDERSPEC_SWEEP, as the analysis reads it


def test_environment_becomes_the_steps_options():
    env = {"UNDERSPEC_SEEDS": "0,1", "UNDERSPEC_SWEEP": "s", "UNDERSPEC_LR": "", "UNDERSPEC_OUT_DIR": "/r"}
    assert step_args("sweep", env) == ["--name=s", "--seeds=0,1"]
    assert step_args("analyze", env) == ["--sweep=s", "--out_dir=/r"]


def test_from_env_refuses_an_unknown_step(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "entrypoints" / "from_env.py"), "train"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "step='train'" in res.stderr


def test_cpu_override_drops_the_gpu_reservation_only():
    cpu = ResetLoader((DOCKER / "compose.cpu.yaml").read_text()).get_single_data()
    assert set(cpu["services"]) == {"worker"} and cpu["services"]["worker"]["deploy"] == "!reset"
    assert cpu["services"]["worker"]["environment"]["UNDERSPEC_DEVICE"].endswith(":-cpu}")


class ResetLoader(yaml.SafeLoader):
    """compose's `!reset` tag, read as the string '!reset'."""


ResetLoader.add_constructor("!reset", lambda loader, node: "!reset")


def test_worker_script_refuses_without_a_storage(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "UNDERSPEC_STORAGE"}
    res = subprocess.run(["sh", str(DOCKER / "worker.sh")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode != 0 and "UNDERSPEC_STORAGE" in res.stderr
