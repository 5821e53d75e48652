"""A full disk while writing artifacts: a real, small tmpfs as the artifact store (needs root to
mount, as on this project's machines and CI), and ENOSPC injected into the writers for the
parts of the atomic-write contract a mount cannot reach (and where mounting is not allowed)."""
from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from underspec.reporting import figures
from underspec.spec.config import AnalyzeConfig, TrainConfig
from underspec.steps.analyze import run_analysis
from underspec.steps.train import run_train
from underspec.training import artifacts

from helpers.paths import REPO

GRID = ["--name=full", "--seeds=0,1", "--lambdas=0.0,0.01", "--classes=2,3", "--epochs=3", "--probe_size=20",
        "--workers=1", "--chunk=2", "--analyze=false"]


@pytest.fixture()
def small_tmpfs(tmp_path):
    """A 1.5 MB tmpfs: room for about three runs' artifacts of GRID, not eight."""
    mnt = tmp_path / "artifacts"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mnt)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip()}); the injected-ENOSPC tests still run")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def digests(client, runs) -> dict[str, str]:
    out = {}
    for r in runs:
        folder = Path(r.info.artifact_uri.removeprefix("file://"))
        for name in ("trajectory.npz", "embeddings.npz"):
            with np.load(folder / name, allow_pickle=False) as z:  # complete and readable
                assert z.files
            out[f"{r.info.run_id}/{name}"] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_disk_full_fails_the_run_keeps_the_rest_and_resume_works(tracking, small_tmpfs, tmp_path, tiny_root,
                                                                   procs):
    env = {**os.environ, "UNDERSPEC_DATA_DIR": str(tiny_root)}
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    cmd = [sys.executable, str(REPO / "entrypoints" / "sweep.py"), *GRID, f"--storage={storage}"]
    res = procs.run(cmd, env=env, cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("underspec-sweep: error:") and "No space left on device" in last, last
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    runs = tracking.search_runs([exp], "tags.`underspec.role` = 'train'")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert finished and failed and not [r for r in runs if r.info.status == "RUNNING"]
    kept = digests(tracking, finished)  # earlier artifacts intact
    for r in failed:
        assert "No space left on device" in r.data.tags["underspec.error"]
        folder = Path(r.info.artifact_uri.removeprefix("file://"))
        assert not folder.exists() or not list(folder.iterdir()), "a FAILED run kept a half-written file"
    assert not list(small_tmpfs.rglob("*.part"))
    trials = optuna.load_study(study_name="full", storage=storage).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)  # space freed
    res = procs.run(cmd, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = tracking.search_runs([exp], "tags.`underspec.role` = 'train' and attributes.status = 'FINISHED'")
    assert len(runs) == 8 and len({r.data.tags["underspec.config_hash"] for r in runs}) == 8
    after = digests(tracking, runs)
    assert {k: after[k] for k in kept} == kept
    print(f"disk full after {len(finished)} runs; {len(failed)} FAILED; resumed to 8")


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_npz_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "trajectory.npz"
    artifacts.save_npz(target, {"a": np.arange(3)})
    before = target.read_bytes()

    def half_then_full(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        enospc()

    monkeypatch.setattr(artifacts.np, "savez", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        artifacts.save_npz(target, {"a": np.arange(5)})
    assert target.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["trajectory.npz"]


def test_a_full_disk_during_the_analysis_leaves_the_previous_report_whole(tracking, tiny_root, tmp_path,
                                                                          monkeypatch):
    run_train(TrainConfig(seeds=(0, 1), lambdas=(0.0,), classes=(2, 3), epochs=2, probe_size=20,
                          data_dir=str(tiny_root), sweep="a"))
    cfg = AnalyzeConfig(sweep="a", bootstrap=20, gif_cells="none", out_dir=str(tmp_path / "reports"),
                        data_dir=str(tiny_root))
    assert run_analysis(cfg) == 0
    out = tmp_path / "reports" / "a"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert Path("metrics.csv") in before and Path("figures/fig3_1.png") in before
    n_runs = len(tracking.search_runs([e.experiment_id for e in tracking.search_experiments()], ""))
    monkeypatch.setattr(figures, "function_fig", enospc)  # fails after metrics.csv and fig3_1 are written
    with pytest.raises(OSError, match="No space left"):
        run_analysis(cfg)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(os.listdir(tmp_path / "reports")) == ["a"]  # no partial folder left behind
    assert len(tracking.search_runs([e.experiment_id for e in tracking.search_experiments()], "")) == n_runs
