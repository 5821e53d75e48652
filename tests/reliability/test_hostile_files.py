"""Damaged and hostile artifacts, and what the code may load at all. The analysis names every bad
artifact by run id and path, computes the rest and exits 1; a crafted object array that would run
code when unpickled is refused without running it."""
from __future__ import annotations

import ast
import pathlib
import re
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from underspec.spec.config import AnalyzeConfig, TrainConfig
from underspec.steps.analyze import run_analysis
from underspec.steps.train import run_train

from helpers.paths import REPO


class _Payload:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _plant(path: Path, marker: Path) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["W1"] = np.array([_Payload(marker)], dtype=object)
    np.savez(path, **arrays)


def _folder(run) -> Path:
    return Path(run.info.artifact_uri.removeprefix("file://"))


def test_damaged_and_hostile_artifacts_are_named_and_the_rest_computed(tracking, tiny_root, tmp_path, capfd):
    run_train(TrainConfig(seeds=(0, 1, 2, 3), lambdas=(0.0,), classes=(2, 3), epochs=2, probe_size=20,
                          data_dir=str(tiny_root), sweep="h"))
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    runs = {(int(r.data.params["seed"]), int(r.data.params["classes"])): r
            for r in tracking.search_runs([exp], "tags.`underspec.role` = 'train'")}
    marker = tmp_path / "pwned"
    damage = {
        (3, 2): ("trajectory.npz", lambda p: p.write_bytes(p.read_bytes()[:700])),  # truncated
        (2, 2): ("embeddings.npz", lambda p: p.write_bytes(b"\x00garbage" * 50)),  # not a zip at all
        (3, 3): ("trajectory.npz", lambda p: _plant(p, marker)),  # every array there, W1 a pickle bomb
        (1, 3): ("trajectory.npz", lambda p: np.savez(p, W1=np.zeros(3))),  # arrays missing
        (2, 3): ("trajectory.npz", lambda p: shutil.rmtree(p.parent)),  # the run's artifacts deleted
    }
    for key, (name, spoil) in damage.items():
        spoil(_folder(runs[key]) / name)
    cfg = AnalyzeConfig(sweep="h", bootstrap=20, gif_cells="none", out_dir=str(tmp_path / "r"),
                        data_dir=str(tiny_root))
    assert run_analysis(cfg) == 1
    err = capfd.readouterr().err
    for key, (name, _) in damage.items():
        assert f"run {runs[key].info.run_id} artifact {name}" in err, (key, err[-3000:])
    hostile = next(ln for ln in err.splitlines() if f"run {runs[(3, 3)].info.run_id} artifact" in ln)
    assert "allow_pickle" in hostile, hostile  # numpy refused the object array: nothing was unpickled
    assert not marker.exists(), "unpickling ran code"
    rows = (tmp_path / "r" / "h" / "metrics.csv").read_text()
    assert "\n0.0,2,params,apc1,reference," in rows  # cell C=2 still has seeds 0 and 1
    assert "cell lambda=0.0 C=3: 1 readable seed(s); not compared" in err


SOURCES = sorted([*(REPO / "underspec").glob("*.py"), *(REPO / "entrypoints").glob("*.py"),
                  *(REPO / "benchmarks").glob("*.py")])


def unsafe_calls(src: str) -> list[str]:
    """Loads that could run code: np.load without allow_pickle=False, torch.load without
    weights_only=True, pickle.load(s), yaml.load, marshal.loads, eval, exec."""
    found = []
    for call in (n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Call)):
        name, kw = ast.unparse(call.func), {k.arg: ast.unparse(k.value) for k in call.keywords}
        if (name.endswith("np.load") or name == "numpy.load") and kw.get("allow_pickle") != "False" \
                or name.endswith("torch.load") and kw.get("weights_only") != "True" \
                or name in ("pickle.load", "pickle.loads", "yaml.load", "eval", "exec", "marshal.loads"):
            found.append(f"line {call.lineno}: {ast.unparse(call)}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_code_path_loads_with_pickle(path):
    src = path.read_text()
    assert unsafe_calls(src) == [], path.name
    if re.search(r"\bUnpickler\b", src):  # the one reader of a pickle: it must refuse every global but numpy's
        assert path.name == "data.py" and "def find_class" in src and "refusing to unpickle" in src


def test_the_scan_catches_unsafe_loads_and_passes_safe_ones():
    bad = "np.load(f)\nnp.load(f, allow_pickle=True)\ntorch.load(f)\npickle.loads(b)\neval(s)\nyaml.load(s)\n"
    assert len(unsafe_calls(bad)) == 6
    assert unsafe_calls("np.load(f, allow_pickle=False)\ntorch.load(f, weights_only=True)\n") == []


# Advisories fixed in the pinned releases (GitHub Advisory Database / NVD; see RELIABILITY.md).
FIXED_IN = [
    ("mlflow", "3.11.0", "CVE-2026-4137: world-writable model download temp folders"),
    ("mlflow", "3.10.0", "CVE-2026-2614: path traversal in model version sources (file read)"),
    ("mlflow", "3.10.0", "CVE-2026-2651: multipart artifact upload without authorization (--serve-artifacts)"),
    ("mlflow", "2.12.1", "CVE-2024-1558/1560/1594/3848, CVE-2024-1483: artifact path traversals"),
    ("mlflow", "2.10.0", "CVE-2023-6977: path traversal, arbitrary file read"),
    ("mlflow", "2.2.1", "CVE-2023-1177: path traversal / local file inclusion in mlflow server"),
    ("torch", "2.10.0", "CVE-2026-24747: memory corruption in the weights_only unpickler"),
    ("torch", "2.6.0", "CVE-2025-32434: torch.load(weights_only=True) remote code execution"),
    ("numpy", "1.16.3", "CVE-2019-6446: np.load unpickled object arrays by default"),
]


def _v(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", s.split("+")[0])[:3])


@pytest.mark.parametrize("pkg,fixed,what", FIXED_IN, ids=[f"{p}>={f}" for p, f, _ in FIXED_IN])
def test_pinned_versions_have_the_advisories_fixed(pkg, fixed, what):
    assert _v(version(pkg)) >= _v(fixed), f"{pkg} {version(pkg)} predates the fix of {what}"
    pins = (REPO / "pyproject.toml").read_text()
    pinned = re.search(rf'"{pkg}==([\d.]+)"', pins)
    assert pinned and _v(pinned.group(1)) >= _v(fixed), f"pyproject.toml pins {pkg} below {fixed}"
