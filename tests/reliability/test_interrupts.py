"""Ctrl-C, SIGTERM and SIGKILL at random moments of a sweep on the embedded default (SQLite stores),
several times in a row, then one uninterrupted run: exactly one FINISHED run per grid point, no
RUNNING run or trial, every FINISHED run complete, no half-written file anywhere.

The moments and signals come from a seeded generator (UNDERSPEC_CHAOS_SEED, default 7) and are
printed, so a failure can be replayed."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from helpers.paths import REPO
from helpers.procs import DEADLINE_S

pytestmark = pytest.mark.slow
EPOCHS = 100
POINTS = 12
NEEDED = {"trajectory.npz": {"W1", "b1", "W2", "b2", "grad_W1", "grad_W2"}, "embeddings.npz": {"h", "y"}}


def sweep_cmd(storage: str, data_dir: Path) -> list[str]:
    return [sys.executable, str(REPO / "entrypoints" / "sweep.py"), "--name=chaos", "--seeds=0,1",
            "--lambdas=0.0,0.01", "--classes=2,3,4", f"--epochs={EPOCHS}", "--probe_size=20", "--workers=2",
            "--chunk=3", "--analyze=false", f"--storage={storage}", f"--data_dir={data_dir}"]


def check_finished_runs_complete(client, exp) -> list:
    """Every FINISHED run has all its metric steps and both artifacts, readable without pickle."""
    runs = client.search_runs([exp], "tags.`underspec.role` = 'train' and attributes.status = 'FINISHED'")
    for r in runs:
        assert len(client.get_metric_history(r.info.run_id, "test_acc")) == EPOCHS, r.info.run_name
        folder = Path(r.info.artifact_uri.removeprefix("file://"))
        for name, keys in NEEDED.items():
            with np.load(folder / name, allow_pickle=False) as z:
                assert keys <= set(z.files), (r.info.run_name, name)
    return runs


def running(client, exp) -> set[str]:
    return {r.info.run_id for r in client.search_runs([exp], "") if r.info.status == "RUNNING"}


def staging_dirs() -> set[Path]:
    """The staging folders in this test's own temp folder (TMPDIR, set per test by conftest)."""
    return set(Path(tempfile.gettempdir()).glob("underspec-staging-*"))


def no_partial_files(root: Path) -> None:
    assert not [p for p in root.rglob("*") if p.name.endswith(".part")], "a half-written file"


def test_random_interruptions_then_exactly_once(tracking, tmp_path, tiny_root, procs):
    rng = random.Random(int(os.environ.get("UNDERSPEC_CHAOS_SEED", "7")))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    env = {**os.environ}
    log = []
    staging_before = staging_dirs()
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL] * 3
    rng.shuffle(signals)
    for sig in signals:
        delay = rng.uniform(0.5, 12.0)
        running_before = running(tracking, exp)
        proc = procs.start(sweep_cmd(storage, tiny_root), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        time.sleep(delay)  # the random moment is what this test tests; every outcome below is awaited
        if sig == signal.SIGTERM:
            proc.send_signal(sig)  # what a scheduler or `kill` sends: the main process only
        else:
            os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole group; SIGKILL: the OOM killer, say
        _, err = proc.communicate(timeout=DEADLINE_S)
        expected = {signal.SIGKILL: -9}.get(sig, 130)
        assert proc.returncode in (expected, 0), (sig.name, delay, proc.returncode, err[-3000:])
        log.append(f"{sig.name} at {delay:.1f} s -> {proc.returncode}")
        check_finished_runs_complete(tracking, exp)
        no_partial_files(tmp_path)
        if sig != signal.SIGKILL:  # a handled signal ends what it stopped (a SIGKILLed one's wait)
            assert running(tracking, exp) <= running_before, (log, err[-2000:])
    done = procs.run(sweep_cmd(storage, tiny_root), cwd=tmp_path, env=env, timeout=2 * DEADLINE_S)
    assert done.returncode == 0, done.stderr[-3000:]
    finished = check_finished_runs_complete(tracking, exp)
    assert len(finished) == POINTS, log
    assert len({r.data.tags["underspec.config_hash"] for r in finished}) == POINTS, log
    assert not [r for r in tracking.search_runs([exp], "") if r.info.status == "RUNNING"]
    ts = optuna.load_study(study_name="chaos", storage=storage).get_trials()
    assert not [t for t in ts if t.state == TrialState.RUNNING]
    assert len([t for t in ts if t.state == TrialState.COMPLETE]) == POINTS
    no_partial_files(tmp_path)
    assert staging_dirs() <= staging_before, "staging folders of killed processes were left behind"
    print("interruptions: " + "; ".join(log))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_process_exits_leaves_its_status(sig):
    """An entry point's exit: a signal that arrives while the interpreter shuts down (sent here
    from an atexit hook, where the default handlers are back) neither kills the process with the
    signal's status nor changes the step's. Without `finish` the same script ends -15 / -2."""
    script = """
import atexit, os, signal, sys
sys.path.insert(0, sys.argv[1])
from entrypoints._cli import finish
signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a bare process has it for SIGTERM
atexit.register(lambda: os.kill(os.getpid(), int(sys.argv[4])))
(finish if sys.argv[3] == "finish" else sys.exit)(int(sys.argv[2]))
"""
    run = lambda how: subprocess.run([sys.executable, "-c", script, str(REPO), "3", how, str(int(sig))],  # noqa: E731
                                     timeout=DEADLINE_S).returncode
    held, bare = run("finish"), run("bare")
    assert held == 3 and bare == -int(sig), (held, bare)
