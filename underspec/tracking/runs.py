"""Runs: names, tags, params, metrics and artifacts, from creation to their end, and what a run
records when a failure ends it.

Runs are created with MlflowClient and an explicit parent id (never the fluent thread-local
active run), so many runs can be open at once and nesting never depends on global state.
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient, get_tracking_uri
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_RUN_NOTE
from requests.exceptions import RequestException
from sqlalchemy.engine import make_url

from underspec.base.locks import file_lock
from underspec.base.redaction import redact
from underspec.spec.settings import FORMAT_VERSION, RunSettings, RunSpec, config_hash, run_name, run_params
from underspec.tracking import ui
from underspec.tracking.mlflow_shim import build_store
from underspec.tracking.resilient import Resilient, fail_fast

if TYPE_CHECKING:  # a type only: tracking imports neither torch nor the training layer
    from underspec.training.artifacts import Staged

# MLflow prints a "View run <name> at: <tracking URI>" line per ended run: 378 lines for a sweep,
# one extra get_run request each, and the URI's credentials in plain text. Our own summary line
# shows the URI redacted instead.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

DEFAULT_EXPERIMENT = "underspec"
TAG_ROLE = "underspec.role"
TAG_SWEEP = "underspec.sweep"
TAG_HASH = "underspec.config_hash"
TAG_DUPLICATE = "underspec.duplicate_of"
TAG_WORKER = "underspec.worker"
TAG_ERROR = "underspec.error"
TAG_FORMAT = "underspec.format_version"
TAG_PARENT_HASH = "underspec.branch_parent_hash"  # a branched child's parent: its config hash
TAG_PARENT_RUN = "underspec.branch_parent_run"  # and its run id, where the parent is in the store
FINISHED = RunStatus.to_string(RunStatus.FINISHED)
KILLED = RunStatus.to_string(RunStatus.KILLED)
FAILED = RunStatus.to_string(RunStatus.FAILED)
TRACKING_ERRORS = (MlflowException, RequestException)


def environment_tags(torch_version: str, device: str) -> dict[str, str]:
    """Where a training run ran: the torch version and device (given by the step that trains),
    this host and process."""
    return {"underspec.torch": torch_version, "underspec.device": device,
            "underspec.host": socket.gethostname(), "underspec.pid": str(os.getpid())}


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def experiment_id(client: MlflowClient, create: bool = True) -> str | None:
    """The experiment MLflow selects (MLFLOW_EXPERIMENT_ID / _NAME), else `underspec`; under
    `mlflow run`, the experiment of MLflow Projects' run."""
    if os.environ.get("MLFLOW_RUN_ID"):
        return client.get_run(os.environ["MLFLOW_RUN_ID"]).info.experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    exp = client.get_experiment_by_name(experiment_name())
    if exp or not create:
        return exp.experiment_id if exp else None
    try:
        return client.create_experiment(experiment_name())
    except MlflowException:  # another worker created it first
        return client.get_experiment_by_name(experiment_name()).experiment_id


@dataclass(frozen=True)
class ParentSpec:
    """What the run that owns one invocation is: its role tag, sweep, name, the run it nests in
    (an analysis under the sweep run that started it), extra tags and description (markdown)."""

    role: str
    sweep: str = ""
    name: str = "batch"
    nested_in: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def creation_tags(self) -> dict[str, str]:
        """The identifying tags: they go into the request that creates the run, so a worker killed
        right after it does not leave a RUNNING run that no recovery can attribute to it."""
        return {TAG_ROLE: self.role, **({TAG_SWEEP: self.sweep} if self.sweep else {}), **self.tags,
                **({MLFLOW_RUN_NOTE: self.note} if self.note else {})}


class Parent:
    """The run that owns one invocation, named and described as its ParentSpec says: MLflow
    Projects' run (renamed) when there is one, else our own."""

    def __init__(self, spec: ParentSpec):
        self.client = client()
        self.owned = spec.nested_in is not None or not os.environ.get("MLFLOW_RUN_ID")
        tags = spec.creation_tags()
        if self.owned:
            created = {MLFLOW_RUN_NAME: spec.name, **tags}
            if spec.nested_in:
                created[MLFLOW_PARENT_RUN_ID] = spec.nested_in
            exp = experiment_id(self.client)
            ui.mark_experiment(self.client, exp)
            run = self.client.create_run(exp, tags=created)
        else:  # MLflow Projects' run: `mlflow run` ends it whatever happens to this process
            run = self.client.get_run(os.environ["MLFLOW_RUN_ID"])
            self.client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
            ui.rename(self.client, run.info.run_id, spec.name)
            ui.mark_experiment(self.client, run.info.experiment_id)
        self.run_id = run.info.run_id
        self.experiment_id = run.info.experiment_id

    def describe(self, text: str) -> None:
        ui.describe(self.client, self.run_id, text)

    def end(self, status: str, reason: str | None = None) -> None:
        """End this run if it is ours; with a reason (an error), best effort and without retries."""
        if not self.owned:
            return
        if reason is None:
            self.client.set_terminated(self.run_id, status)
        else:
            end_runs(self.client, [self.run_id], status, reason)


@contextmanager
def parent_run(spec: ParentSpec) -> Iterator[Parent]:
    """The invocation's Parent, ended FINISHED, or KILLED / FAILED with the reason when the block raises."""
    parent = Parent(spec)
    try:
        yield parent
    except KeyboardInterrupt:
        parent.end(KILLED, "interrupted")
        raise
    except BaseException as exc:
        parent.end(FAILED, error_line(exc))
        raise
    parent.end(FINISHED)


@dataclass(frozen=True)
class TrainRecord:
    """What every training run of one batch records besides its grid point: the shared settings
    and the thread count it trains at (params, config hash), where it runs (environment_tags,
    given by the step), extra tags (a sweep worker's id), its sweep, and the data set (its folder
    and digest, logged as one dataset input)."""

    settings: RunSettings
    threads: int
    environment: dict[str, str]
    data_dir: Path
    data_digest: str
    sweep: str = ""
    extra_tags: dict[str, str] = field(default_factory=dict)


def create_train_run(parent: Parent, spec: RunSpec, rec: TrainRecord) -> str:
    """A RUNNING training run nested under `parent`, with its params, identifying tags and its
    data set as one dataset input."""
    tags = {MLFLOW_PARENT_RUN_ID: parent.run_id, TAG_ROLE: "train", TAG_HASH: config_hash(spec, rec.settings),
            TAG_FORMAT: str(FORMAT_VERSION), **rec.environment, **rec.extra_tags}
    if rec.sweep:
        tags[TAG_SWEEP] = rec.sweep
    if spec.branched:
        tags |= branch_tags(parent.client, parent.experiment_id, spec, rec.settings)
    run = parent.client.create_run(parent.experiment_id, tags=tags, run_name=run_name(spec))
    params = [Param(k, v) for k, v in run_params(spec, rec.settings, rec.threads).items()]
    parent.client.log_batch(run.info.run_id, params=params)
    dataset = ui.dataset_input(rec.data_dir, rec.data_digest, spec.classes)
    ui.once_more_on_race(lambda: parent.client.log_inputs(run.info.run_id, datasets=[dataset]))
    return run.info.run_id


def branch_tags(client: MlflowClient, experiment_id: str, spec: RunSpec, settings: RunSettings) -> dict[str, str]:
    """A branched child's tags naming its parent (spec.parent): the config hash, and the run id
    of the parent's FINISHED run where the store holds one; the UI filters a family by either."""
    h = config_hash(spec.parent, settings)
    found = client.search_runs([experiment_id], f"tags.`{TAG_HASH}` = '{h}' and attributes.status = '{FINISHED}'",
                               max_results=1)
    return {TAG_PARENT_HASH: h, **({TAG_PARENT_RUN: found[0].info.run_id} if found else {})}


def finish_train_run(client: MlflowClient, run_id: str, staged: Staged) -> None:
    """Log metrics and the staged artifacts, then mark FINISHED: FINISHED means every piece is
    written. The staged folder is removed once logged."""
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, e + 1) for k, vals in staged.metrics.items()
               for e, v in enumerate(vals)]
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])
    try:
        client.log_artifacts(run_id, str(staged.folder))
    except BaseException:
        _discard_local_copies(client, run_id, staged.folder)
        raise
    staged.discard()
    client.set_terminated(run_id, FINISHED)


def _discard_local_copies(client: MlflowClient, run_id: str, staged: Path) -> None:
    """After a failed upload to a local artifact store (a full disk), remove what was copied, so a
    FAILED run holds no half-written file. Remote stores write an object whole or not at all."""
    try:
        folder = local_artifact_dir(client.get_run(run_id).info.artifact_uri)
        for f in Path(staged).iterdir() if folder else ():
            (folder / f.name).unlink(missing_ok=True)
    except Exception:
        pass


def local_artifact_dir(artifact_uri: str) -> Path | None:
    """The folder of a run's artifacts when the store is a local one (file:// or a plain path)."""
    parsed = urlparse(artifact_uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None


def end_runs(client: MlflowClient, run_ids, status: str, reason: str = "") -> list[str]:
    """Mark runs FAILED or KILLED (with the reason as a tag), quickly: after a tracking failure
    each call gets no retries, and the first that fails stops the rest (the server is gone; the
    sweep's next start ends them). Returns the runs left unmarked."""
    run_ids = list(run_ids)
    with fail_fast():
        for i, rid in enumerate(run_ids):
            try:
                if reason:
                    client.set_tag(rid, TAG_ERROR, reason[:5000])
                client.set_terminated(rid, status)
            except Exception:
                return run_ids[i:]
    return []


def error_line(exc: BaseException) -> str:
    """What a run records of the error that ended it: one redacted line."""
    if isinstance(exc, TRACKING_ERRORS):
        return failure_line(exc)
    return redact(f"{type(exc).__name__}: {' '.join(str(exc).split())}")[:1000]


def failure_line(exc: BaseException) -> str:
    """One line for a tracking failure: the tracking URI (redacted) and the cause, shortened."""
    msg = " ".join(str(exc).split())
    if len(msg) > 400:
        msg = msg[:400] + " ..."
    return redact(f"the tracking store at {display_uri()} failed: {msg}")


def client() -> MlflowClient:
    """A client of the current tracking URI (retrying a call whose answer broke off, see
    resilient). The first use of an SQLite store creates or migrates
    its schema; workers starting together would race to do it ("table already exists"), so that
    first use happens under a lock beside the database file."""
    uri = get_tracking_uri()
    if uri.startswith("sqlite:") and uri not in _READY:
        db = make_url(uri).database
        if db and db != ":memory:":
            with file_lock(db + ".lock"):
                build_store(uri)
        _READY.add(uri)
    return Resilient(MlflowClient())


_READY: set[str] = set()


def store_exists() -> bool:
    """False only for an SQLite tracking store whose file is absent (MLflow would create it)."""
    uri = get_tracking_uri()
    if not uri.startswith("sqlite:"):
        return True
    db = make_url(uri).database
    return bool(db) and (db == ":memory:" or Path(db).is_file())


def display_uri() -> str:
    """The tracking URI to show people (credentials never printed)."""
    return redact(get_tracking_uri())
