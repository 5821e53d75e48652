"""The `sweep` step: Optuna schedules the grid, the fused engine trains it, MLflow records it.

A worker claims up to `chunk` grid points (ask), completes those the ledger already holds (a
FINISHED run with the same config hash in this sweep), trains the rest (the engine fuses the runs
that share a minibatch stream and a width: engine.group_key), and tells each trial its final
test accuracy. Several workers may share one study; see `scheduling.study` for how a grid point
is trained once.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import time
from dataclasses import dataclass, field

from underspec import tracking
from underspec.base import interrupts
from underspec.base.progress import Progress, Tally
from underspec.scheduling import study as st
from underspec.spec import settings
from underspec.spec.config import SweepConfig
from underspec.spec.settings import RunSpec
from underspec.steps.common import TrainBatch, check_probe, settings_of, train_specs
from underspec.training.artifacts import Staged, remove_stale_staging
from underspec.training.data import MNISTTensors, data_root, load_mnist

POLL_S = 5.0  # how often a worker waiting for other workers' points looks again


@dataclass
class SweepRun:
    """This invocation's sweep run while it trains: the run, the points complete before it, the
    points it completed (with their run ids) and its progress bar."""

    parent: tracking.Parent
    base: int
    bar: Progress
    completed: list[tuple[RunSpec, str]] = field(default_factory=list)

    def done(self, p: RunSpec, run_id: str) -> None:
        """Point p is complete (trained, or found in the ledger) as run run_id."""
        self.completed.append((p, run_id))
        tracking.log_progress(self.parent, self.base + len(self.completed), len(self.completed))


@dataclass
class Worker:
    """One sweep worker: its config, the sweep's study and its storage, the grid's points, its id,
    and MNIST in memory."""

    cfg: SweepConfig
    study: st.Study
    storage: st.Storage
    points: set[RunSpec]
    wid: str
    data: MNISTTensors

    def recover(self, client) -> st.Snapshot:
        """Fail dead workers' trials, end their MLflow runs, re-enqueue what they left. Call under
        the sweep's lock: claims happen under it too, so a trial not yet attributed to a worker
        belongs to one that died while claiming."""
        name = self.cfg.name
        dead = st.fail_stale(self.storage, st.snapshot(self.study, self.points))
        # A worker killed between chunks holds no trial, but its sweep run is still RUNNING.
        attrs, now = self.study.user_attrs, time.time()
        dead |= {d for d in tracking.running_workers(client, name) if not st.worker_alive(attrs, d, now)}
        if dead:
            n = tracking.end_worker_runs(client, name, {d: st.failure_of(attrs, d) for d in dead})
            print(f"sweep {name}: {len(dead)} stopped worker(s); ended {n} of their runs "
                  "(FAILED with the worker's error, else KILLED)", file=sys.stderr)
        st.requeue_missing(self.study, self.points, st.attempted_points(self.study, self.points))
        return st.snapshot(self.study, self.points)

    def next_claims(self, client) -> tuple[st.Snapshot, dict[RunSpec, int]]:
        """Recover and claim the next chunk under the sweep's lock. While every point left is held
        by other live workers, wait for them (polling), taking over what a dead one leaves; return
        no claims only when the grid is complete."""
        said, name, points = False, self.cfg.name, self.points
        while True:
            with st.storage_lock(self.cfg.storage, f"underspec-sweep-{name}"):
                snap = self.recover(client)
                claims = self.claim(snap)
            if claims or len(snap.complete) == len(points):
                return snap, claims
            if not said:
                print(f"sweep {name}: waiting for the {len(points) - len(snap.complete)} point(s) other "
                      "workers are training (this worker takes over any a stopped worker leaves)", file=sys.stderr)
                said = True
            for _ in range(int(POLL_S / 0.5)):
                time.sleep(0.5)
                interrupts.check()

    def claim(self, snap: st.Snapshot) -> dict[RunSpec, int]:
        """Ask for up to `chunk` points (point -> trial number); a point someone else holds is
        dropped (lower number wins)."""
        free = self.points - set(snap.complete) - set(snap.live) - snap.waiting
        want = len(free) + len(snap.waiting)
        if self.cfg.chunk:
            want = min(want, self.cfg.chunk)
        mine: dict[RunSpec, int] = {}
        grid = self.cfg.grid()
        for _ in range(want):
            p, trial = st.ask_point(self.study, grid)
            if p in mine:
                st.tell(self.study, trial.number, failed=True)
                continue
            st.attribute(trial, self.wid)
            mine[p] = trial.number
        after = st.snapshot(self.study, self.points)
        for p, num in list(mine.items()):
            holder = min([after.complete.get(p, num), after.live.get(p, num)])
            if holder < num or (p in after.complete and after.complete[p] != num):
                st.tell(self.study, num, failed=True)
                del mine[p]
        return mine

    def run_chunk(self, run: SweepRun, claims: dict[RunSpec, int]) -> None:
        """Complete claims from the ledger (a FINISHED run with the same config hash in this sweep)
        or by training; every claim ends COMPLETE or FAIL."""
        cfg, study, s = self.cfg, self.study, settings_of(self.cfg)
        ledger = tracking.ledger(run.parent.client, run.parent.experiment_id, cfg.name)
        todo = []
        for p, num in claims.items():
            found = ledger.get(tracking.config_hash(p, s))
            if found is not None:
                st.tell(study, num, tracking.final_metric(found, "test_acc"))
                run.bar.skip(s.epochs, points=1)
                run.done(p, found.info.run_id)
            else:
                todo.append(p)
        done: set[RunSpec] = set()

        def finished(result: Staged, run_id: str) -> None:
            st.tell(study, claims[result.spec], float(result.metrics["test_acc"][-1]))
            done.add(result.spec)
            run.done(result.spec, run_id)

        try:
            interrupts.check()  # claims are made; stopping here ends them FAIL below
            if todo:
                batch = TrainBatch(run.parent, data_root(cfg.data_dir), self.data, s, cfg.workers, sweep=cfg.name,
                                   extra_tags={tracking.TAG_WORKER: self.wid}, bar=run.bar, on_done=finished)
                train_specs(batch, sorted(todo))
        finally:
            for p in todo:
                if p not in done:
                    st.tell(study, claims[p], failed=True)

    def work(self, claims: dict[RunSpec, int], base: int) -> SweepRun:
        """Train chunk after chunk under this invocation's sweep run until the grid is complete;
        claims: the first chunk; base: the points complete before it."""
        cfg, points, wid = self.cfg, self.points, self.wid
        head = tracking.ParentSpec("sweep", cfg.name, f"sweep-{cfg.name}", tags={tracking.TAG_WORKER: wid},
                                   note=sweep_note(cfg, len(points), base))
        try:
            with tracking.parent_run(head) as parent:
                tracking.log_text(parent, st.grid_json(cfg.grid()), "grid.json")
                with progress_of(cfg, len(points), base) as bar:
                    run = SweepRun(parent, base, bar)
                    while claims:
                        self.run_chunk(run, claims)
                        interrupts.check()
                        _, claims = self.next_claims(parent.client)
                tracking.remove_twins(parent.client, cfg.name, wid, keep={parent.run_id})
                tracking.log_text(parent, self.summary_csv(parent), "summary.csv")
                final = len(st.snapshot(self.study, points).complete)
                parent.describe(sweep_note(cfg, len(points), final, len(run.completed)))
        except tracking.TRACKING_ERRORS as exc:
            # The tracking server is gone: say so in the study (a separate store) for whoever
            # resumes; it ends this worker's runs FAILED with this line.
            st.record_failure(self.study, wid, tracking.failure_line(exc))
            raise
        return run

    def summary_csv(self, parent: tracking.Parent) -> str:
        """One row per grid point: its axes, its trial, run, status and final accuracy."""
        cfg = self.cfg
        runs = tracking.sweep_runs(parent.client, parent.experiment_id, cfg.name)
        s = settings_of(cfg)
        by_hash: dict[str, list] = {}
        for r in runs:
            by_hash.setdefault(r.data.tags.get(tracking.TAG_HASH), []).append(r)
        snap = st.snapshot(self.study, self.points)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow([a.key for a in settings.AXES] + ["trial", "run_id", "status", "test_acc"])
        for p in sorted(self.points):
            rs = sorted(by_hash.get(tracking.config_hash(p, s), []), key=lambda r: r.info.status != "FINISHED")
            r = rs[0] if rs else None
            acc = tracking.final_metric(r, "test_acc") if r and r.info.status == "FINISHED" else ""
            w.writerow([*settings.point_text(p).values(), snap.complete.get(p, ""),
                        r.info.run_id if r else "", r.info.status if r else "MISSING", acc])
        return out.getvalue()


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
            snap, claims = w.next_claims(tracking.client())
            if not claims:
                return nothing_left(cfg, points)
            run = w.work(claims, len(snap.complete))
        finally:
            heartbeat.close()
    final = st.snapshot(study, points)
    sweep_run_id, exp_id = run.parent.run_id, run.parent.experiment_id
    print(f"sweep {cfg.name}: {len(final.complete)}/{len(points)} grid points complete "
          f"({len(run.completed)} by this worker). {tracking.browse_line(exp_id, sweep_run_id)}", file=sys.stderr)
    if cfg.analyze and len(final.complete) == len(points):
        analyze_now(cfg, sweep_run_id)
    return len(run.completed)


def analyze_now(cfg: SweepConfig, sweep_run_id: str) -> None:
    from underspec.steps.analyze import run_analysis_for_sweep  # imported late: matplotlib is not needed to train

    run_analysis_for_sweep(cfg.name, sweep_run_id, cfg.data_dir)


def nothing_left(cfg: SweepConfig, points: set[RunSpec]) -> int:
    """Every point is complete: say so (and analyze, under `mlflow run`); returns 0 trained."""
    print(f"sweep {cfg.name}: nothing to do, all {len(points)} grid points are complete", file=sys.stderr)
    tracking.tag_projects_run("sweep", cfg.name, f"sweep-{cfg.name}",
                              sweep_note(cfg, len(points), len(points)) + " Nothing was left to train.")
    if cfg.analyze and os.environ.get("MLFLOW_RUN_ID"):
        analyze_now(cfg, os.environ["MLFLOW_RUN_ID"])
    return 0


def sweep_note(cfg: SweepConfig, total: int, complete: int, trained: int | None = None) -> str:
    """The sweep run's description: the grid, where it stands, what this worker did."""
    done = (f"This worker trained {trained}; {complete}/{total} points are complete."
            if trained is not None else f"{complete}/{total} points were complete when this worker started.")
    return (f"Sweep **{cfg.name}**: {tracking.grid_text(cfg)}. {done} Training runs are nested below; "
            f"`summary.csv` lists them. Report: `reports/{cfg.name}/report.md` once the grid is complete.")


def progress_of(cfg: SweepConfig, total: int, done: int) -> Progress:
    """The sweep's progress: grid points done / total, and the model-epochs left to train (all of
    them, as if this worker trained every point left): a bar on a terminal, a line every 10
    points or 60 s in a log."""
    return Progress(f"sweep {cfg.name}", Tally((total - done) * cfg.epochs, "model-epoch"),
                    Tally(total, "points", done))
