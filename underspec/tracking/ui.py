"""What a person sees in the MLflow UI: the experiment's kind, run names and descriptions, links,
the data set as a dataset input, and figures the run page previews.

The 3.x UI ignores the experiment-kind tag when it picks its mode: it reads `workflowType` from the
URL (or local storage) and defaults to GenAI. So every link printed carries UI_QUERY.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient, get_tracking_uri
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_RUN_NOTE

from underspec.base.redaction import redact
from underspec.spec.settings import AXES, DATASET, LETTERS, as_text

TAG_KIND = "mlflow.experimentKind"
KIND = "custom_model_development"  # traditional ML, not GenAI
UI_QUERY = "?workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
TAG_ANALYSIS = "underspec.analysis_run"
PREVIEWED = ("fig3_1.png", "sources.png", "barriers.png", "stability.png")  # figures also logged as run images


def mark_experiment(client: MlflowClient, experiment_id: str) -> None:
    """Tag the experiment as traditional ML, once (a read, and a write only when it is missing)."""
    if client.get_experiment(experiment_id).tags.get(TAG_KIND) != KIND:
        once_more_on_race(lambda: client.set_experiment_tag(experiment_id, TAG_KIND, KIND))


RACE_MARKS = ("UniqueViolation", "UNIQUE constraint failed", "IntegrityError", "Duplicate entry")


def once_more_on_race(call):
    """MLflow's SQL store creates an experiment tag or a dataset row by check-then-insert: two
    workers doing it at one moment make the later insert fail on the unique key (seen with two
    workers on PostgreSQL behind `mlflow server`). The row then exists, so one more call succeeds."""
    try:
        return call()
    except MlflowException as exc:
        if not any(m in str(exc) for m in RACE_MARKS):
            raise
        return call()


def ui_base() -> str | None:
    """The UI's address when the tracking URI is a server's (credentials removed); None for a
    local store, which `mlflow ui` serves."""
    uri = get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    u = urlparse(uri)
    return f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}{u.path.rstrip('/')}"


def ui_link(experiment_id: str, run_id: str | None = None, base: str | None = None) -> str:
    """A link to the experiment (or one run) that opens the UI in traditional-ML mode."""
    page = f"#/experiments/{experiment_id}" + (f"/runs/{run_id}" if run_id else "")
    return f"{base or ui_base() or LOCAL_UI}/{page}{UI_QUERY}"


def browse_line(experiment_id: str, run_id: str | None = None) -> str:
    """How to look at the runs: the link, and for a local store the command that serves it."""
    link = ui_link(experiment_id, run_id)
    if ui_base():
        return f"Browse: {link}"
    return f"Browse: mlflow ui --backend-store-uri {redact(get_tracking_uri())}, then open {link}"


def describe(client: MlflowClient, run_id: str, text: str) -> None:
    """The run's description (the UI's "Description" box): markdown."""
    client.set_tag(run_id, MLFLOW_RUN_NOTE, text)


def rename(client: MlflowClient, run_id: str, name: str) -> None:
    client.update_run(run_id, name=name)


def dataset_input(root: Path, digest: str, classes: int) -> DatasetInput:
    """The data set as MLflow sees it: name, digest of the files (data.dataset_digest, computed by
    the step), the folder, the label folding."""
    ds = Dataset(DATASET, digest, "local", json.dumps({"uri": str(Path(root).resolve())}))
    return DatasetInput(ds, tags=[InputTag(MLFLOW_DATASET_CONTEXT, f"classes={classes}")])


def log_previews(client: MlflowClient, run_id: str, figures: Path) -> None:
    """Log the main figures as run images too, so the run page shows them without a click."""
    from PIL import Image

    for name in PREVIEWED:
        if (figures / name).is_file():
            with Image.open(figures / name) as im:
                client.log_image(run_id, im.convert("RGB"), key=name.removesuffix(".png"), step=0)


def link_analysis(client: MlflowClient, run_id: str, analysis_run_id: str, experiment_id: str, report: Path) -> None:
    """On the run that started an analysis: a tag with its id and a description line with its link."""
    client.set_tag(run_id, TAG_ANALYSIS, analysis_run_id)
    note = client.get_run(run_id).data.tags.get(MLFLOW_RUN_NOTE, "")
    link = ui_link(experiment_id, analysis_run_id)
    describe(client, run_id, note.rstrip() + f"\n\nAnalysis: [analysis run]({link}); report: `{report}`")


def _shown(axes: dict[str, tuple]) -> dict[str, list]:
    """The axes worth naming: the seeds, lambdas and classes always, any other when it is not
    its default alone."""
    default = {a.option: (a.default,) for a in AXES}
    return {k: sorted(v) for k, v in axes.items()
            if v and (k in ("seeds", "init_seeds", "order_seeds", "lambdas", "classes") or tuple(v) != default.get(k))}


def train_name(cfg) -> str:
    """A train batch's run name: `train-s0,42-l0.001-c2,9-e50`; a list longer than 3 as its count."""
    parts = [LETTERS[k] + (",".join(map(as_text, v)) if len(v) <= 3 else f"{len(v)}x")
             for k, v in _shown(cfg.axes()).items()]
    return "-".join(["train", *parts, f"e{cfg.epochs}"])


def grid_text(cfg) -> str:
    """What a batch or sweep trains, in words, for a run description."""
    lists = " x ".join(f"{k} {', '.join(map(as_text, v))}" for k, v in _shown(cfg.axes()).items())
    return f"{len(cfg.points())} runs = {lists}; {cfg.epochs} epochs"
