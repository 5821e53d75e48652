"""Three sweep workers on the embedded default: one SQLite Optuna storage and one SQLite MLflow
store, both fresh, the workers started at the same moment and claiming one point at a time (the
most contention). They must share the grid without "database is locked" or schema-creation
failures and train each point once."""
from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from helpers.paths import REPO
from helpers.procs import DEADLINE_S

pytestmark = pytest.mark.slow


def test_three_workers_share_one_sqlite_study_exactly_once(tracking, tmp_path, tiny_root, procs):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    cmd = [sys.executable, str(REPO / "entrypoints" / "sweep.py"), "--name=pair", "--seeds=0,1,2",
           "--lambdas=0.0,0.01", "--classes=2,3", "--epochs=5", "--probe_size=20", "--workers=1", "--chunk=1",
           "--analyze=false", f"--storage={storage}", f"--data_dir={tiny_root}"]
    workers = [procs.start(cmd, cwd=tmp_path, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for _ in range(3)]
    outs = [p.communicate(timeout=DEADLINE_S) for p in workers]
    errs = [e for _, e in outs]
    assert [p.returncode for p in workers] == [0, 0, 0], [e[-3000:] for e in errs]
    assert not [e for e in errs if "locked" in e.lower() or "Traceback" in e], errs
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    runs = tracking.search_runs([exp], "tags.`underspec.role` = 'train'")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(runs) == len(finished) == 12
    assert len({r.data.tags["underspec.config_hash"] for r in finished}) == 12
    assert len({r.data.tags["underspec.worker"] for r in finished}) >= 2  # the grid was shared
    ts = optuna.load_study(study_name="pair", storage=storage).get_trials()
    assert len([t for t in ts if t.state == TrialState.COMPLETE]) == 12
    assert not [t for t in ts if t.state == TrialState.RUNNING]
