"""The bad-input matrix: every entry point, wrong types, ranges, empty and duplicate lists, path-like
names and malformed URLs. Each must give one line naming the parameter and the value, exit 2, and
create nothing: no store, no run, no trial, no file (the tracking store below is checked before
and after)."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest
from mlflow.tracking import MlflowClient

from helpers.paths import REPO
from helpers.stores import mlflow_project_store, mlflow_run

NAMES = ["", "../x", "..", ".", "/abs", "/etc/passwd", "%2e%2e", "%2e%2e%2fx", "a/b", "a\\b", ".hidden",
         "x" * 65, "naïve", "a b", "a;b", "$(id)", "`id`", "~"]
INT_NOISE = ["", " ", "x", "1.5", "1e3", "0x10", "nan", "inf", "[1]", "None", "9" * 30]
LISTS_INT = ["", ",", "0,", ",0", "0,,1", "0;1", "[0,1]", "a", "1.5", "-1", "0,0", "0, 0"]

BAD: dict[str, list[tuple[str, str]]] = {
    "train": [
        *[("seeds", v) for v in LISTS_INT[1:] + ["9" * 30, "0x1"]],  # '' is the library default
        *[("init_seeds", v) for v in LISTS_INT[1:] + ["0,1"]],  # "0,1" alone: order_seeds missing
        *[("order_seeds", v) for v in LISTS_INT[1:] + ["3"]],
        *[("jitters", v) for v in LISTS_INT],
        *[("branch_epochs", v) for v in LISTS_INT[1:] + ["2"]],  # "2" alone: branch_order_seeds missing
        *[("branch_order_seeds", v) for v in LISTS_INT[1:] + ["3"]],
        *[("lambdas", v) for v in ["", ",", "0,,1", "-0.1", "nan", "inf", "-inf", "x", "0.1,0.1", "1e-3,0.001",
                                   "0.1;0.2"]],
        *[("classes", v) for v in ["", "1", "0", "11", "-2", "2,2", "two", "2,,3", "2.5", "10,11"]],
        *[("epochs", v) for v in [*INT_NOISE, "0", "-1", "100001"]],
        *[("batch_size", v) for v in ["0", "-64", "x", "64.0", "60001", "64,64", "64,"]],
        *[("lr", v) for v in ["0", "-1", "nan", "inf", "x", "", "0.1,0.1", "0.1,0"]],
        *[("hidden", v) for v in ["0", "-16", "x", "16.5", "100000", "8,8", ""]],
        *[("probe_size", v) for v in ["0", "10001", "x", "-1"]],
        *[("device", v) for v in ["gpu", "CUDA", "cuda:0", "", "tpu", "cpu "]],
        *[("workers", v) for v in ["0", "-1", "x", "1000", ""]],
        *[("sweep", v) for v in NAMES if v != ""],
        *[("data_dir", v) for v in ["nowhere", " lead", "trail ", "/nonexistent/mnist", "../../nowhere"]],
    ],
    "sweep": [
        *[("name", v) for v in NAMES],
        *[("seeds", v) for v in ["0,0", "-1", "a"]],
        *[("init_seeds", v) for v in ["0,0", "0,1"]],
        *[("lambdas", v) for v in ["", "-1", "nan"]],
        *[("classes", v) for v in ["1", "11", "2,2"]],
        *[("epochs", v) for v in ["0", "x", ""]],
        ("probe_size", "201"),  # more than the (tiny) test set holds: refused before any store opens
        *[("storage", v) for v in ["", "optuna.db", "sqlite://", "sqlite:///nowhere/optuna.db", "postgresql://host",
                                   "postgresql://u:hunter2@host/db", "postgresql://u:p%40ss@host/db",
                                   "mysql://host/db", "http://host/db", "redis://host", "not a url", "%2e%2e",
                                   "sqlite:///../nowhere/x.db", "postgresql:///db"]],
        *[("chunk", v) for v in ["-1", "x", "1.5", ""]],
        *[("analyze", v) for v in ["maybe", "", "2", "yes please"]],
        *[("workers", v) for v in ["0", "x"]],
        *[("device", v) for v in ["gpu", ""]],
    ],
    "analyze": [
        *[("sweep", v) for v in NAMES],
        *[("reference_seed", v) for v in ["-2", "x", "1.5", ""]],
        *[("bootstrap", v) for v in ["0", "9", "100001", "x", ""]],
        *[("gif_cells", v) for v in ["", "x", "0.1", "0.1:11", "0.1:1", "x:2", "0.1:2,", "-1:2", "nan:2"]],
        *[("out_dir", v) for v in ["", " ", "/dev/null", "/proc/version"]],
        *[("data_dir", v) for v in ["nowhere", "/nonexistent", " lead"]],
        *[("stress", v) for v in ["blurr", "all,blur", "rotate,,blur", "ROTATE"]],
    ],
    "fetch_data": [("data_dir", v) for v in [" lead", "trail ", "/proc/version", "/dev/null"]],
}
CASES = [(e, p, v) for e, rows in BAD.items() for p, v in rows]


def load_entry(name: str):
    spec = importlib.util.spec_from_file_location(f"entry_{name}", REPO / "entrypoints" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def call(entry: str, args: list[str], monkeypatch, capsys) -> tuple[int, list[str]]:
    """Run an entry point's main in this process, as its CLI would; returns (status, stderr lines)."""
    mod = load_entry(entry)
    monkeypatch.setattr(sys, "argv", [f"{entry}.py", *args])
    build = {"train": "TrainConfig", "sweep": "SweepConfig", "analyze": "AnalyzeConfig", "fetch_data": "FetchConfig"}
    from underspec.spec import config

    run = {"train": lambda c: mod.run_train(c) and 0, "sweep": getattr(mod, "run", None),
           "analyze": getattr(mod, "run_analysis", None), "fetch_data": lambda c: pytest.fail("fetch ran")}[entry]
    status = mod.main(mod.parser(), getattr(config, build[entry]).from_strings, run)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    return status, lines


@pytest.fixture()
def empty_cwd(tmp_path, monkeypatch, tiny_root):
    """An empty working folder holding the would-be stores (MLflow and Optuna, both SQLite)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    monkeypatch.setenv("UNDERSPEC_DATA_DIR", str(tiny_root))
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(var, raising=False)
    return work


@pytest.mark.parametrize("entry,param,value", CASES, ids=[f"{e}-{p}-{v!r}" for e, p, v in CASES])
def test_bad_input_one_line_exit_2_nothing_created(entry, param, value, empty_cwd, monkeypatch, capsys):
    status, lines = call(entry, [f"--{param}={value}"], monkeypatch, capsys)
    assert status == 2, lines
    assert len(lines) == 1, lines
    assert f"invalid {param}=" in lines[0], lines
    shown = value.replace("hunter2", "***").replace("p%40ss", "***")
    assert repr(shown).strip("'") in lines[0] or shown.strip() in lines[0], lines
    assert "hunter2" not in lines[0]
    assert sorted(os.listdir(empty_cwd)) == [], "bad input created files"


def test_the_matrix_is_large_enough_to_mean_something():
    """RELIABILITY.md quotes this count; every entry point and every parameter appears."""
    assert len(CASES) >= 200
    from underspec.spec.config import AnalyzeConfig, FetchConfig, SweepConfig, TrainConfig, field_defaults

    for entry, cls in (("train", TrainConfig), ("analyze", AnalyzeConfig), ("fetch_data", FetchConfig)):
        assert {p for e, p, _ in CASES if e == entry} == set(field_defaults(cls)), entry
    own = set(field_defaults(SweepConfig)) - set(field_defaults(TrainConfig))
    assert own <= {p for e, p, _ in CASES if e == "sweep"}


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, tiny_root):
    """A real store holding one tiny sweep (`rel`, seeds 0 and 1), for the checks that need one."""
    from underspec.spec.config import TrainConfig
    from underspec.steps.train import run_train

    work = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the function-scoped monkeypatch is not at hand
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
        mp.setenv("MLFLOW_EXPERIMENT_NAME", "rel")
        run_train(TrainConfig(seeds=(0, 1), lambdas=(0.0,), classes=(2,), epochs=1, probe_size=20,
                              data_dir=str(tiny_root), sweep="rel"))
    return work


def store_state(work) -> tuple:
    c = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()], "")
    return len(runs), sorted((r.info.run_id, r.info.status, len(r.data.metrics)) for r in runs)


@pytest.mark.parametrize("args,needle", [
    (["--sweep=other"], "invalid sweep='other'"),
    (["--sweep=rel", "--reference_seed=7"], "invalid reference_seed=7"),
    (["--sweep=rel", "--data_dir=nowhere"], "invalid data_dir='nowhere'"),
])
def test_analyze_refuses_what_only_the_store_can_tell(trained_store, args, needle, tmp_path, monkeypatch, capsys):
    before = store_state(trained_store)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{trained_store / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "rel")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    status, lines = call("analyze", [*args, "--out_dir=reports"], monkeypatch, capsys)
    assert status == 2 and len(lines) == 1 and needle in lines[0], lines
    assert store_state(trained_store) == before  # no analysis run, nothing logged
    assert not (tmp_path / "reports").exists()


def test_analyze_without_a_store_does_not_create_one(empty_cwd, monkeypatch, capsys):
    status, lines = call("analyze", ["--sweep=paper"], monkeypatch, capsys)
    assert status == 2 and len(lines) == 1 and "no tracking store" in lines[0], lines
    assert os.listdir(empty_cwd) == []


THROUGH_MLFLOW = [("train", "sweep=../x"), ("train", "seeds=0,0"), ("sweep", "name=%2e%2e"),
                  ("sweep", "storage=postgresql://u:hunter2@db.example/optuna"), ("sweep", "chunk=-1"),
                  ("analyze", "sweep=/etc/passwd"), ("analyze", "bootstrap=x"), ("fetch_data", "data_dir=/dev/null")]


def repo_state() -> dict:
    """What a step could leave in the project folder: new entries, or a touched store (the sweep's
    default Optuna storage is ./optuna.db there)."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) if p.name.startswith("optuna.db") else None
            for p in REPO.iterdir()}


@pytest.mark.slow
@pytest.mark.parametrize("entry,param", THROUGH_MLFLOW)
def test_bad_input_through_mlflow_run_only_mlflows_run_failed(entry, param, tmp_path, tiny_root, procs):
    """MLflow's own run for the command exists and ends FAILED; nothing else is created."""
    client, exp, env = mlflow_project_store(tmp_path, tiny_root)
    before = repo_state()
    res = mlflow_run(procs, env, entry, param)
    assert res.returncode != 0
    ours = [ln for ln in res.stderr.splitlines() if ln.startswith("underspec-")]
    assert len(ours) == 1 and f"invalid {param.split('=')[0]}=" in ours[0], res.stderr[-2000:]
    assert "hunter2" not in ours[0]  # MLflow Projects itself echoes and logs -P values: hence the refusal
    runs = client.search_runs([exp], "")
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    assert "underspec.role" not in runs[0].data.tags and not client.list_artifacts(runs[0].info.run_id)
    assert repo_state() == before  # no optuna.db, no reports, nothing in the project folder
