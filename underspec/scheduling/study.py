"""Every Optuna call of the project: the sweep's study, claims (ask, suggest, attribute), tells,
snapshots, heartbeats and stale workers; Optuna's private API is in optuna_shim. (The sweep step
holds the study and reads its `user_attrs` for worker_alive and failure_of; it calls nothing else
of Optuna.)

One study per sweep name, a GridSampler with a fixed seed over the grid's search space (the seed,
or the init and order seeds, lambda and classes always; jitter, hidden, lr and batch size when
they take more than one value, the branch axes when given; see grids.search_space), driven by ask-and-tell. Exactly-once
rests on three things: claims (ask, then attributing the trial to its worker) and recovery
(failing dead workers' trials, re-enqueueing what they left) happen under one storage-wide lock
per sweep; a point is re-enqueued only when it is not done, not waiting and not held by a live
worker; and a worker that finds every remaining point held by others waits for them instead of
leaving, so a point a worker dies with is always taken over.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import optuna
from optuna.samplers import GridSampler
from optuna.trial import TrialState
from sqlalchemy import text

from underspec.base.locks import file_lock, pid_alive
from underspec.scheduling.optuna_shim import fail_trial, fixed_params, grid_params, stored_state
from underspec.spec.config import ConfigError
from underspec.spec.grids import search_space, trial_params, trial_spec
from underspec.spec.settings import RunSpec

GRID_ATTR = "underspec.grid"
WORKER_ATTR = "underspec.worker"
HEARTBEAT_PREFIX = "underspec.heartbeat."
SAMPLER_SEED = 0
HEARTBEAT_ENV, GRACE_ENV = "UNDERSPEC_HEARTBEAT_S", "UNDERSPEC_GRACE_S"  # also settable in containers
HEARTBEAT_S = float(os.environ.get(HEARTBEAT_ENV, "20"))
GRACE_S = float(os.environ.get(GRACE_ENV, "120"))

optuna.logging.set_verbosity(optuna.logging.WARNING)

# The types the sweep step holds (it imports no Optuna itself).
Study = optuna.Study
Storage = optuna.storages.RDBStorage


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The RDB storage; its schema is created here, once, under the storage-wide lock, so workers
    starting together on a fresh database do not race to create the same tables."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    with storage_lock(url, "underspec-schema"):
        if url.startswith("sqlite"):
            # WAL: cheaper commits (each claim is several) and readers never block the writer.
            with sqlite3.connect(url.split("///", 1)[1], timeout=60) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def open_study(storage, name: str, grid: dict) -> optuna.Study:
    """Create or load the sweep's study; refuse (ConfigError) a different grid under this name."""
    sampler = GridSampler(search_space(grid), seed=SAMPLER_SEED)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get(GRID_ATTR)
    if stored is None:
        study.set_user_attr(GRID_ATTR, grid)
        return study
    old_version = stored.get("format_version", 1)  # grids stored before versions were recorded: 1
    if old_version != grid["format_version"]:
        raise ConfigError("name", name, f"this sweep was trained in format version {old_version}, and this "
                          f"underspec trains format version {grid['format_version']} (another minibatch "
                          "order): the two never mix; give the new sweep another name")
    if stored != grid:
        diff = sorted(k for k in grid if stored.get(k) != grid[k])
        raise ConfigError("name", name, f"a sweep of this name exists with a different grid "
                          f"(differs in {', '.join(diff)}); choose another name or the same grid")
    return study


def suggest_point(trial: optuna.Trial, grid: dict) -> RunSpec:
    return trial_spec({k: trial.suggest_categorical(k, values) for k, values in search_space(grid).items()}, grid)


def ask_point(study: optuna.Study, grid: dict) -> tuple[RunSpec, optuna.Trial]:
    """A new trial (ask) and the grid point it suggests (call under storage_lock, then attribute it)."""
    trial = study.ask()
    return suggest_point(trial, grid), trial


def attribute(trial: optuna.Trial, wid: str) -> None:
    """Mark a claimed trial as worker `wid`'s."""
    trial.set_user_attr(WORKER_ATTR, wid)


def _trial_point(t, sampler, grid: dict) -> RunSpec | None:
    """A trial's grid point; also for a trial killed between its suggest calls, whose params are
    incomplete: GridSampler recorded its grid id when the trial was created."""
    point = trial_spec(dict(fixed_params(t) or t.params), grid)
    if point is not None or not isinstance(sampler, GridSampler):
        return point
    params = grid_params(sampler, t)
    return None if params is None else trial_spec(params, grid)


@dataclass
class Snapshot:
    """Who holds which grid point, as the storage says now."""

    complete: dict[RunSpec, int] = field(default_factory=dict)  # point -> lowest trial number
    live: dict[RunSpec, int] = field(default_factory=dict)  # RUNNING under a live worker, lowest
    stale: list = field(default_factory=list)  # RUNNING trials of dead workers (FrozenTrial)
    waiting: set[RunSpec] = field(default_factory=set)


def worker_alive(attrs: dict, wid: str | None, now: float) -> bool:
    """A worker is alive while its heartbeat is fresh; on this host, also while its pid runs."""
    if not wid:
        return False
    host, pid, _ = wid.rsplit(":", 2)
    if host == socket.gethostname() and not pid_alive(int(pid)):
        return False
    beat = attrs.get(HEARTBEAT_PREFIX + wid)
    return beat is not None and now - float(beat) < GRACE_S


def snapshot(study: optuna.Study, grid_points: set[RunSpec]) -> Snapshot:
    snap, now, attrs = Snapshot(), time.time(), study.user_attrs
    grid = attrs[GRID_ATTR]
    for t in study.get_trials(deepcopy=False):
        p = _trial_point(t, study.sampler, grid)
        if p is None or p not in grid_points:
            continue
        if t.state == TrialState.COMPLETE:
            snap.complete[p] = min(snap.complete.get(p, t.number), t.number)
        elif t.state == TrialState.WAITING:
            snap.waiting.add(p)
        elif t.state == TrialState.RUNNING:
            # A trial is attributed to its worker right after ask(), both under the sweep's lock,
            # which every snapshot that acts on staleness also holds: one found unattributed
            # belongs to a worker that died in between.
            if worker_alive(attrs, t.user_attrs.get(WORKER_ATTR), now):
                snap.live[p] = min(snap.live.get(p, t.number), t.number)  # the lowest number holds it
            else:
                snap.stale.append(t)
    return snap


@contextmanager
def storage_lock(url: str, key: str):
    """A lock shared by every worker of this storage: flock beside an SQLite file, else a
    PostgreSQL advisory lock held for the duration of a transaction."""
    if url.startswith("sqlite"):
        with file_lock(url.split("///", 1)[1] + ".lock"):
            yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
            yield
    finally:
        engine.dispose()


FAILURE_PREFIX = "underspec.failure."


def record_failure(study: optuna.Study, wid: str, line: str) -> None:
    """Leave the reason this worker stopped, for whoever ends its runs (best effort)."""
    try:
        study.set_user_attr(FAILURE_PREFIX + wid, line)
    except Exception:
        pass


def failure_of(attrs: dict, wid: str) -> str:
    return str(attrs.get(FAILURE_PREFIX + wid, ""))


def fail_stale(storage, snap: Snapshot) -> set[str]:
    """Mark dead workers' RUNNING trials FAIL; returns those workers' ids."""
    dead = set()
    for t in snap.stale:
        try:
            fail_trial(storage, t)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        dead.add(t.user_attrs.get(WORKER_ATTR, ""))
    return dead - {""}


def requeue_missing(study: optuna.Study, grid_points: set[RunSpec], attempted: set[RunSpec]) -> int:
    """Enqueue each attempted point that is not done, waiting or live (call under storage_lock)."""
    snap = snapshot(study, grid_points)
    n = 0
    for p in sorted(attempted - set(snap.complete) - set(snap.live) - snap.waiting):
        study.enqueue_trial(trial_params(p, study.user_attrs[GRID_ATTR]))
        n += 1
    return n


def attempted_points(study: optuna.Study, grid_points: set[RunSpec]) -> set[RunSpec]:
    grid = study.user_attrs[GRID_ATTR]
    pts = {_trial_point(t, study.sampler, grid) for t in study.get_trials(deepcopy=False)}
    return {p for p in pts if p in grid_points}


def tell(study: optuna.Study, trial_number: int, value: float | None = None, failed=False) -> None:
    """Tell a result. Optuna stores the state even when the sampler's after_trial then raises, and
    GridSampler's does: study.stop() after the last point is a RuntimeError under ask-and-tell, and
    with one grid point left it reads a `grid_id` that an enqueued (re-queued) trial does not have
    (KeyError). Such an error is ignored once the storage holds the state that was told."""
    state = TrialState.FAIL if failed else TrialState.COMPLETE
    try:
        study.tell(trial_number, None if failed else value, state=state)
    except Exception:
        if stored_state(study, trial_number) != state:
            raise


class Heartbeat:
    """Refreshes this worker's heartbeat in the study every HEARTBEAT_S seconds, off the hot path."""

    def __init__(self, study: optuna.Study, wid: str):
        self.study, self.wid, self.stop = study, wid, threading.Event()
        self.beat()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def beat(self) -> None:
        self.study.set_user_attr(HEARTBEAT_PREFIX + self.wid, time.time())

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                self.beat()
            except Exception:  # a missed beat is tolerated; the grace period is several beats
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def grid_json(grid: dict) -> str:
    return json.dumps(grid, sort_keys=True, indent=1)
