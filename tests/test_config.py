import os
import subprocess
import sys

import pytest
import yaml

from underspec.spec.config import (
    EMPTY_IS_DEFAULT,
    AnalyzeConfig,
    ConfigError,
    FetchConfig,
    SweepConfig,
    TrainConfig,
    field_defaults,
)
from underspec.spec.settings import as_text

from helpers.paths import REPO

BAD_TRAIN = [
    ("seeds", "a"), ("seeds", "-1"), ("seeds", "0,0"), ("seeds", "1.5"), ("seeds", "0,,1"),
    ("init_seeds", "0,0"), ("order_seeds", "-1"), ("jitters", "x"), ("jitters", "-1"), ("hidden", "8,8"),
    ("lr", "0.1,0"), ("batch_size", "64,0"),
    ("lambdas", "-0.1"), ("lambdas", "nan"), ("lambdas", "inf"), ("lambdas", "x"), ("lambdas", "0.1,0.1"),
    ("classes", "1"), ("classes", "11"), ("classes", "2,2"), ("classes", "two"),
    ("epochs", "0"), ("epochs", "x"), ("batch_size", "0"), ("lr", "0"), ("lr", "-1"), ("lr", "nan"),
    ("hidden", "0"), ("probe_size", "0"), ("probe_size", "10001"), ("device", "gpu"),
    ("workers", "0"), ("sweep", "../x"), ("sweep", "a/b"), ("sweep", "%2e%2e"), ("sweep", "/abs"),
]


@pytest.mark.parametrize("param,value", BAD_TRAIN)
def test_bad_train_input_names_parameter_and_value(param, value):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_strings(**{param: value})
    assert str(info.value).startswith(f"invalid {param}={value!r}")
    assert "\n" not in str(info.value)


def test_good_input_is_normalised():
    cfg = TrainConfig.from_strings(seeds="0, 42", lambdas="0,1e-3", classes="2,10", epochs="2")
    assert cfg.seeds == (0, 42) and cfg.lambdas == (0.0, 0.001) and cfg.classes == (2, 10)
    assert cfg.epochs == 2 and cfg.lr == (0.01,)


def _cli(args, cwd, **env):
    full = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db", **env}
    full.pop("MLFLOW_RUN_ID", None)
    return subprocess.run([sys.executable, str(REPO / "entrypoints" / "train.py"), *args], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["--lambdas=-1"], "lambdas='-1'"), (["--classes=2,11"], "classes='2,11'"),
    (["--seeds=0,0"], "seeds='0,0'"), (["--device=tpu"], "device='tpu'"),
    (["--data_dir=nowhere"], "data_dir='nowhere'"),
])
def test_cli_bad_input_exits_2_with_one_line_and_creates_nothing(tmp_path, args, needle):
    res = _cli(args, tmp_path)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert list(tmp_path.iterdir()) == []  # no store, no run, no stray file


def test_cli_cuda_without_cuda_is_refused(tmp_path, tiny_root):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    res = _cli(["--device=cuda", f"--data_dir={tiny_root}"], tmp_path)
    assert res.returncode == 2 and "device='cuda'" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_help_lists_every_parameter():
    res = subprocess.run([sys.executable, str(REPO / "entrypoints" / "train.py"), "--help"],
                         capture_output=True, text=True, check=True)
    for name in field_defaults(TrainConfig):
        assert f"--{name}" in res.stdout


STEPS = {"train": TrainConfig, "fetch_data": FetchConfig, "sweep": SweepConfig,
         "analyze": AnalyzeConfig}


@pytest.mark.parametrize("entry", sorted(STEPS))
def test_mlproject_mirrors_the_config_and_passes_every_parameter(entry):
    spec = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"][entry]
    defaults = field_defaults(STEPS[entry])
    declared = {k: str(v["default"]) for k, v in spec["parameters"].items()}
    want = {k: "" if k in EMPTY_IS_DEFAULT else as_text(v) for k, v in defaults.items()}
    assert declared == want
    for name in declared:
        assert f"--{name}={{{name}}}" in spec["command"]


def test_mlproject_is_the_generated_one():
    """MLproject is written by `python -m underspec.spec.mlproject` from the configs; --check says so."""
    from underspec.spec.mlproject import render

    assert (REPO / "MLproject").read_text() == render()
    res = subprocess.run([sys.executable, "-m", "underspec.spec.mlproject", "--check"], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_one_text_spelling_of_values():
    """as_text is the one spelling of a value as text (params, run names, MLproject, messages)."""
    assert [as_text(v) for v in (0.001, 1e-05, 0.0, 3, "auto", True)] == ["0.001", "1e-05", "0.0", "3", "auto", "True"]
    assert as_text((0, 42)) == "0,42" and as_text((0.0, 0.0025)) == "0.0,0.0025" and as_text(()) == ""


def test_settings_are_defined_once():
    """The shared run settings' defaults come from settings.RunSettings, everywhere."""
    from dataclasses import fields

    from underspec.spec.settings import RunSettings
    from underspec.training.engine import EngineSettings

    for f in fields(RunSettings):
        for cls in (TrainConfig, SweepConfig, EngineSettings):
            assert field_defaults(cls)[f.name] == f.default, (cls.__name__, f.name)


def test_the_seed_axes_take_seeds_or_the_two_lists():
    """seeds='' (MLproject's default) is the library default; init_seeds and order_seeds replace
    seeds (their cross product), only together, and never beside explicit seeds."""
    assert SweepConfig.from_strings(seeds="").seeds == SweepConfig().seeds
    cfg = SweepConfig.from_strings(seeds="", init_seeds="0,1", order_seeds="2,3,4", jitters="0,1")
    assert cfg.seeds == () and len(cfg.points()) == 2 * 3 * 2 * 6 * 9
    assert {(p.seed, p.order_seed) for p in cfg.points()} == {(i, o) for i in (0, 1) for o in (2, 3, 4)}
    for raw, param in (({"seeds": "0", "init_seeds": "0", "order_seeds": "1"}, "seeds"),
                       ({"init_seeds": "0,1"}, "init_seeds"), ({"order_seeds": "1"}, "order_seeds")):
        with pytest.raises(ConfigError, match=f"invalid {param}="):
            TrainConfig.from_strings(**raw)
