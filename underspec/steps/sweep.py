"""The `sweep` step: Optuna schedules the grid, the fused engine trains it, MLflow records it.

A worker claims up to `chunk` grid points (ask), completes those the ledger already holds (a
FINISHED run with the same config hash in this sweep), trains the rest fused by seed, and tells
each trial its final test accuracy. Several workers may share one study; see `study` for how a
grid point is trained once.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import time
from dataclasses import dataclass

from underspec import tracking
from underspec.base import interrupts
from underspec.scheduling import study as st
from underspec.spec import settings
from underspec.spec.config import SweepConfig
from underspec.spec.settings import RunSpec
from underspec.steps.common import check_probe, settings_of, train_specs
from underspec.steps.common import progress as train_progress
from underspec.training.artifacts import remove_stale_staging
from underspec.training.data import data_root, load_mnist


@dataclass
class Worker:
    """One sweep worker's state: its config, the study and its storage, the grid's points, its
    id, and MNIST in memory."""

    cfg: SweepConfig
    study: object
    storage: object
    points: set[RunSpec]
    wid: str
    data: object = None


def recover(w: Worker, client) -> st.Snapshot:
    """Fail dead workers' trials, end their MLflow runs, re-enqueue what they left. Call under
    the sweep's lock: claims happen under it too, so a trial not yet attributed to a worker
    belongs to one that died while claiming."""
    cfg, study, points = w.cfg, w.study, w.points
    dead = st.fail_stale(w.storage, st.snapshot(study, points))
    # A worker killed between chunks holds no trial, but its sweep run is still RUNNING.
    attrs, now = study.user_attrs, time.time()
    dead |= {d for d in tracking.running_workers(client, cfg.name) if not st.worker_alive(attrs, d, now)}
    if dead:
        n = tracking.end_worker_runs(client, cfg.name, {d: st.failure_of(attrs, d) for d in dead})
        print(f"sweep {cfg.name}: {len(dead)} stopped worker(s); ended {n} of their runs "
              "(FAILED with the worker's error, else KILLED)", file=sys.stderr)
    st.requeue_missing(study, points, st.attempted_points(study, points))
    return st.snapshot(study, points)


def next_claims(w: Worker, client) -> tuple[st.Snapshot, dict]:
    """Recover and claim the next chunk under the sweep's lock. While every point left is held by
    other live workers, wait for them (polling), taking over what a dead one leaves; return no
    claims only when the grid is complete."""
    said, cfg, points = False, w.cfg, w.points
    while True:
        with st.storage_lock(cfg.storage, f"underspec-sweep-{cfg.name}"):
            snap = recover(w, client)
            claims = claim(w, snap)
        if claims or len(snap.complete) == len(points):
            return snap, claims
        if not said:
            print(f"sweep {cfg.name}: waiting for the {len(points) - len(snap.complete)} point(s) other "
                  "workers are training (this worker takes over any a stopped worker leaves)", file=sys.stderr)
            said = True
        for _ in range(int(POLL_S / 0.5)):
            time.sleep(0.5)
            interrupts.check()


POLL_S = 5.0


def claim(w: Worker, snap: st.Snapshot) -> dict[RunSpec, int]:
    """Ask for up to `chunk` points; a point someone else holds is dropped (lower number wins)."""
    study, cfg, points, wid = w.study, w.cfg, w.points, w.wid
    free = points - set(snap.complete) - set(snap.live) - snap.waiting
    want = len(free) + len(snap.waiting)
    if cfg.chunk:
        want = min(want, cfg.chunk)
    mine: dict[RunSpec, int] = {}
    grid = cfg.grid()
    for _ in range(want):
        trial = study.ask()
        p = st.suggest_point(trial, grid)
        if p in mine:
            st.tell(study, trial.number, failed=True)
            continue
        trial.set_user_attr(st.WORKER_ATTR, wid)
        mine[p] = trial.number
    after = st.snapshot(study, points)
    for p, num in list(mine.items()):
        holder = min([after.complete.get(p, num), after.live.get(p, num)])
        if holder < num or (p in after.complete and after.complete[p] != num):
            st.tell(study, num, failed=True)
            del mine[p]
    return mine


def run_chunk(w: Worker, parent, claims: dict[RunSpec, int], ledger: dict, progress, bar) -> None:
    """Complete claims from the ledger or by training; every claim ends COMPLETE or FAIL."""
    cfg, study = w.cfg, w.study
    s = settings_of(cfg)
    todo = []
    for p, num in claims.items():
        run = ledger.get(tracking.config_hash(p, s))
        if run is not None:
            st.tell(study, num, tracking.final_metric(run, "test_acc"))
            bar.skip(s.epochs, points=1)
            progress(p, run.info.run_id)
        else:
            todo.append(p)
    done: set[RunSpec] = set()

    def finished(result, run_id: str) -> None:
        st.tell(study, claims[result.spec], float(result.metrics["test_acc"][-1]))
        done.add(result.spec)
        progress(result.spec, run_id)

    try:
        interrupts.check()  # claims are made; stopping here ends them FAIL below
        if todo:
            train_specs(parent, sorted(todo), data_root(cfg.data_dir), w.data, s, cfg.workers, cfg.name,
                        on_done=finished, extra_tags={tracking.TAG_WORKER: w.wid}, bar=bar)
    finally:
        for p in todo:
            if p not in done:
                st.tell(study, claims[p], failed=True)


def run_sweep(cfg: SweepConfig) -> int:
    """Run (or resume) the sweep; returns the number of grid points this worker completed."""
    data = load_mnist(data_root(cfg.data_dir))
    check_probe(cfg, data)  # before any store is opened
    points = set(cfg.points())
    remove_stale_staging()
    with interrupts.deferred():  # a signal while the stores are written waits for the next safe point
        storage = st.open_storage(cfg.storage)
        study = st.open_study(storage, cfg.name, cfg.grid())
        w = Worker(cfg, study, storage, points, st.worker_id(), data)
        heartbeat = st.Heartbeat(study, w.wid)
        try:
            snap, claims = next_claims(w, tracking.client())
            if not claims:
                return nothing_left(cfg, points)
            completed, sweep_run_id, exp_id = work(w, claims, len(snap.complete))
        finally:
            heartbeat.close()
    final = st.snapshot(study, points)
    print(f"sweep {cfg.name}: {len(final.complete)}/{len(points)} grid points complete "
          f"({len(completed)} by this worker). {tracking.browse_line(exp_id, sweep_run_id)}", file=sys.stderr)
    if cfg.analyze and len(final.complete) == len(points):
        analyze_now(cfg, sweep_run_id)
    return len(completed)


def analyze_now(cfg: SweepConfig, sweep_run_id: str) -> None:
    from underspec.steps.analyze import run_analysis_for_sweep  # imported late: matplotlib is not needed to train

    run_analysis_for_sweep(cfg.name, sweep_run_id, cfg.data_dir)


def nothing_left(cfg: SweepConfig, points: set[RunSpec]) -> int:
    """Every point is complete: say so (and analyse, under `mlflow run`); returns 0 trained."""
    print(f"sweep {cfg.name}: nothing to do, all {len(points)} grid points are complete", file=sys.stderr)
    tracking.tag_projects_run("sweep", cfg.name, f"sweep-{cfg.name}",
                              sweep_note(cfg, len(points), len(points)) + " Nothing was left to train.")
    if cfg.analyze and os.environ.get("MLFLOW_RUN_ID"):
        analyze_now(cfg, os.environ["MLFLOW_RUN_ID"])
    return 0


def work(w: Worker, claims: dict, base: int) -> tuple[list, str, str]:
    """Train chunk after chunk under this invocation's sweep run until the grid is complete;
    claims: the first chunk; base: the points complete before it."""
    cfg, study, points, wid = w.cfg, w.study, w.points, w.wid
    completed: list[tuple[RunSpec, str]] = []
    try:
        with tracking.parent_run("sweep", cfg.name, f"sweep-{cfg.name}", tags={tracking.TAG_WORKER: wid},
                                 note=sweep_note(cfg, len(points), base)) as parent:
            tracking.log_text(parent, st.grid_json(cfg.grid()), "grid.json")

            def progress(p: RunSpec, run_id: str) -> None:
                completed.append((p, run_id))
                tracking.log_progress(parent, base + len(completed), len(completed))

            with progress_of(cfg, len(points), base) as bar:
                while claims:
                    ledger = tracking.ledger(parent.client, parent.experiment_id, cfg.name)
                    run_chunk(w, parent, claims, ledger, progress, bar)
                    interrupts.check()
                    _, claims = next_claims(w, parent.client)
            tracking.remove_twins(parent.client, cfg.name, wid, keep={parent.run_id})
            tracking.log_text(parent, summary_csv(cfg, study, points, parent), "summary.csv")
            final = len(st.snapshot(study, points).complete)
            parent.describe(sweep_note(cfg, len(points), final, len(completed)))
    except tracking.TRACKING_ERRORS as exc:
        # The tracking server is gone: say so in the study (a separate store) for whoever
        # resumes; it ends this worker's runs FAILED with this line.
        st.record_failure(study, wid, tracking.failure_line(exc))
        raise
    return completed, parent.run_id, parent.experiment_id


def sweep_note(cfg: SweepConfig, total: int, complete: int, trained: int | None = None) -> str:
    """The sweep run's description: the grid, where it stands, what this worker did."""
    done = (f"This worker trained {trained}; {complete}/{total} points are complete."
            if trained is not None else f"{complete}/{total} points were complete when this worker started.")
    return (f"Sweep **{cfg.name}**: {tracking.grid_text(cfg)}. {done} Training runs are nested below; "
            f"`summary.csv` lists them. Report: `reports/{cfg.name}/report.md` once the grid is complete.")


def progress_of(cfg: SweepConfig, total: int, done: int):
    """The sweep's progress: grid points done / total, and the model-epochs left to train (all of
    them, as if this worker trained every point left)."""
    return train_progress(total - done, cfg.epochs, f"sweep {cfg.name}", total, done)


def summary_csv(cfg, study, points, parent) -> str:
    """One row per grid point: its trial, run, status and final accuracy."""
    runs = tracking.sweep_runs(parent.client, parent.experiment_id, cfg.name)
    s = settings_of(cfg)
    by_hash: dict[str, list] = {}
    for r in runs:
        by_hash.setdefault(r.data.tags.get(tracking.TAG_HASH), []).append(r)
    snap = st.snapshot(study, points)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([a.key for a in settings.AXES] + ["trial", "run_id", "status", "test_acc"])
    for p in sorted(points):
        rs = sorted(by_hash.get(tracking.config_hash(p, s), []), key=lambda r: r.info.status != "FINISHED")
        r = rs[0] if rs else None
        acc = tracking.final_metric(r, "test_acc") if r and r.info.status == "FINISHED" else ""
        w.writerow([*settings.point_text(p).values(), snap.complete.get(p, ""),
                    r.info.run_id if r else "", r.info.status if r else "MISSING", acc])
    return out.getvalue()
