"""Finding runs: a sweep's runs by tag, its ledger of FINISHED runs, the runs of stopped workers,
and a local path to an artifact wherever the store keeps it."""
from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from underspec.tracking.runs import (
    FAILED,
    KILLED,
    TAG_DUPLICATE,
    TAG_HASH,
    TAG_ROLE,
    TAG_SWEEP,
    TAG_WORKER,
    end_runs,
    local_artifact_dir,
)


def search_all(client: MlflowClient, experiment_ids: list[str], flt: str, max_results=None) -> list:
    """Every run matching flt (at most max_results), page by page."""
    out, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=flt,
                                  max_results=min(1000, max_results or 1000), page_token=token)
        out += list(page)
        token = page.token
        if not token or (max_results and len(out) >= max_results):
            return out


def sweep_runs(client: MlflowClient, experiment_id: str, sweep: str, status: str | None = None,
               max_results: int | None = None) -> list:
    flt = f"tags.`{TAG_ROLE}` = 'train' and tags.`{TAG_SWEEP}` = '{sweep}'"
    if status:
        flt += f" and attributes.status = '{status}'"
    return search_all(client, [experiment_id], flt, max_results)


_SCRATCH: list[tempfile.TemporaryDirectory] = []


def artifact_path(client: MlflowClient, run, name: str) -> Path:
    """A local path to one artifact: read in place from a local artifact store, else downloaded
    (through `mlflow server`'s proxy, for instance) into a scratch folder removed at exit."""
    folder = local_artifact_dir(run.info.artifact_uri)
    if folder is not None:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{name} not in {run.info.artifact_uri}")
        return folder / name
    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="underspec-analysis-"))
    dst = Path(_SCRATCH[0].name) / run.info.run_id
    dst.mkdir(exist_ok=True)
    return Path(client.download_artifacts(run.info.run_id, name, str(dst)))


def ledger(client: MlflowClient, experiment_id: str, sweep: str) -> dict:
    """config hash -> the FINISHED training run of this sweep that counts (the earliest); any later
    FINISHED run with the same hash is tagged underspec.duplicate_of and left out of the analysis."""
    out = {}
    runs = sweep_runs(client, experiment_id, sweep, "FINISHED")
    runs.sort(key=lambda r: (r.info.start_time, r.info.run_id))
    for r in runs:
        if TAG_DUPLICATE in r.data.tags:
            continue
        kept = out.setdefault(r.data.tags.get(TAG_HASH), r)
        if kept is not r:
            client.set_tag(r.info.run_id, TAG_DUPLICATE, kept.info.run_id)
    return out


def final_metric(run, key: str) -> float:
    return float(run.data.metrics[key])


def _running(client: MlflowClient, sweep: str) -> list:
    """This sweep's RUNNING runs (training and sweep runs), in every experiment."""
    flt = f"tags.`{TAG_SWEEP}` = '{sweep}' and attributes.status = 'RUNNING'"
    return search_all(client, [e.experiment_id for e in client.search_experiments()], flt)


def remove_twins(client: MlflowClient, sweep: str, worker: str, keep=()) -> int:
    """Delete this worker's RUNNING runs other than `keep`, when it has ended every run it trained.
    Such a run is a twin: MLflow's client retries a create request whose answer was lost (the
    server went away after storing it), and the first run it created is never used again. It
    holds its creation tags and nothing else; one that holds a param or a metric is ended KILLED
    instead, so nothing recorded is lost. Returns the number deleted."""
    runs = [r for r in _running(client, sweep) if r.data.tags.get(TAG_WORKER) == worker
            and r.info.run_id not in keep]
    empty = [r for r in runs if not r.data.params and not r.data.metrics]
    for r in empty:
        client.delete_run(r.info.run_id)
    rest = [r.info.run_id for r in runs if r not in empty]
    if rest:
        end_runs(client, rest, KILLED, f"worker {worker} ended without using this run")
    return len(empty)


def running_workers(client: MlflowClient, sweep: str) -> set[str]:
    """Worker ids of this sweep's RUNNING runs."""
    return {r.data.tags[TAG_WORKER] for r in _running(client, sweep) if TAG_WORKER in r.data.tags}


def end_worker_runs(client: MlflowClient, sweep: str, workers: dict[str, str], keep=()) -> int:
    """End the RUNNING runs (training and sweep) of stopped workers: FAILED with the worker's own
    reason when it recorded one (a tracking failure, say), else KILLED. workers: id -> reason."""
    runs = [r for r in _running(client, sweep) if r.data.tags.get(TAG_WORKER) in workers
            and r.info.run_id not in keep]
    for wid in {r.data.tags[TAG_WORKER] for r in runs}:
        ids = [r.info.run_id for r in runs if r.data.tags[TAG_WORKER] == wid]
        reason = workers[wid] or f"worker {wid} stopped before ending this run"
        end_runs(client, ids, FAILED if workers[wid] else KILLED, reason)
    return len(runs)
