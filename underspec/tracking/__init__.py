"""Every MLflow call of the project, in one package: run names, tags, params, metrics and artifact
paths (`runs`), the searches a sweep and the analysis make (`queries`), what else the steps log
(`outputs`), what the UI shows (`ui`), retries on a broken answer (`resilient`), and MLflow's
private API (`mlflow_shim`). The other layers import `underspec.tracking` and nothing from
MLflow; tracking imports neither torch nor the training layer (the steps hand it the torch
version and the data set's digest)."""
from underspec.base.redaction import redact
from underspec.tracking.outputs import log_analysis, log_progress, log_text, tag_projects_run
from underspec.tracking.queries import (
    artifact_path,
    end_worker_runs,
    final_metric,
    ledger,
    remove_twins,
    running_workers,
    search_all,
    sweep_runs,
)
from underspec.tracking.resilient import fail_fast
from underspec.tracking.runs import (
    FAILED,
    KILLED,
    TAG_DUPLICATE,
    TAG_ERROR,
    TAG_FORMAT,
    TAG_HASH,
    TAG_PARENT_HASH,
    TAG_PARENT_RUN,
    TAG_ROLE,
    TAG_SWEEP,
    TAG_WORKER,
    TRACKING_ERRORS,
    Parent,
    ParentSpec,
    TrainRecord,
    client,
    config_hash,
    create_train_run,
    display_uri,
    end_runs,
    environment_tags,
    error_line,
    experiment_id,
    experiment_name,
    failure_line,
    finish_train_run,
    parent_run,
    run_name,
    run_params,
    store_exists,
)
from underspec.tracking.ui import browse_line, dataset_input, grid_text, link_analysis, train_name, ui_link

__all__ = [
    "FAILED", "KILLED", "TAG_DUPLICATE", "TAG_ERROR", "TAG_FORMAT", "TAG_HASH",
    "TAG_PARENT_HASH", "TAG_PARENT_RUN", "TAG_ROLE", "TAG_SWEEP",
    "TAG_WORKER", "TRACKING_ERRORS", "Parent", "ParentSpec", "TrainRecord", "artifact_path", "client", "config_hash",
    "create_train_run", "display_uri", "end_runs", "end_worker_runs", "environment_tags", "error_line",
    "experiment_id", "experiment_name", "fail_fast", "failure_line", "final_metric", "finish_train_run",
    "ledger", "log_analysis", "log_progress", "log_text", "parent_run", "redact", "remove_twins", "run_name",
    "run_params", "running_workers", "browse_line", "dataset_input", "link_analysis", "ui_link", "search_all",
    "grid_text", "train_name",
    "store_exists", "sweep_runs", "tag_projects_run",
]
