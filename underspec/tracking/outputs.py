"""What the steps log besides training runs: the analysis (tables, figures, one run per cell,
values on the training runs), text artifacts, a sweep's progress metric, and the tags of MLflow
Projects' run."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from underspec.tracking import ui
from underspec.tracking.runs import TAG_ROLE, TAG_SWEEP, Parent, client


def log_analysis(parent: Parent, out_dir: Path, rows: list[dict], per_run: dict, n_runs: int, cfg) -> None:
    """The analysis run's params and artifacts, one nested run per cell, and new metrics on each
    training run against the reference seed (added under new keys; nothing existing changes)."""
    c = parent.client
    if parent.owned:
        params = {"sweep": cfg.sweep, "reference_seed": str(cfg.reference_seed), "bootstrap": str(cfg.bootstrap)}
        c.log_batch(parent.run_id, params=[Param(k, v) for k, v in params.items()])
    c.log_batch(parent.run_id, metrics=[Metric("runs_used", n_runs, int(time.time() * 1000), 0)])
    c.log_artifacts(parent.run_id, str(out_dir))
    ui.log_previews(c, parent.run_id, out_dir / "figures")
    now = int(time.time() * 1000)
    cells: dict[tuple, list] = {}
    for r in rows:
        if np.isfinite(r["mean"]):
            key = f"{r['metric']}.{r['target']}.{r['mode']}".replace("+", "_")  # MLflow keys admit no '+'
            cell = (r.get("panel", ""), r["lambda"], r["classes"])
            cells.setdefault(cell, []).append(Metric(key, float(r["mean"]), now, 0))
    for (panel, lam, C), metrics in sorted(cells.items()):
        tags = {MLFLOW_PARENT_RUN_ID: parent.run_id, TAG_ROLE: "analysis-cell", TAG_SWEEP: cfg.sweep}
        name = f"cell-{panel + '-' if panel else ''}l{lam!r}-c{C}"
        run = c.create_run(parent.experiment_id, tags=tags, run_name=name)
        c.log_batch(run.info.run_id, metrics=metrics[:1000], params=[Param("lambda", repr(lam)),
                                                                    Param("classes", str(C))])
        c.set_terminated(run.info.run_id, "FINISHED")
    for rid, vals in per_run.items():
        c.log_batch(rid, metrics=[Metric(k, float(v), now, 0) for k, v in vals.items()])


def log_text(parent: Parent, text: str, name: str) -> None:
    parent.client.log_text(parent.run_id, text, name)


def log_progress(parent: Parent, points_done: int, step: int) -> None:
    parent.client.log_metric(parent.run_id, "points_done", points_done, step=step)


def tag_projects_run(role: str, sweep: str, name: str, note: str) -> None:
    """Under `mlflow run`, tag, name and describe MLflow Projects' run even when there is nothing to do."""
    if os.environ.get("MLFLOW_RUN_ID"):
        c, rid = client(), os.environ["MLFLOW_RUN_ID"]
        c.log_batch(rid, tags=[RunTag(TAG_ROLE, role), RunTag(TAG_SWEEP, sweep)])
        ui.rename(c, rid, name)
        ui.describe(c, rid, note)
