"""The stress suite in MLflow: each shifted set as a dataset input of the analysis run (context
`stress`, digest of its bytes), and the stress figures as run images."""
from __future__ import annotations

import json
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from underspec.tracking.ui import once_more_on_race
from underspec.training.shifts import SUITE, Suite

CONTEXT = "stress"
PREVIEWED = ("stress.png", "stress_scatter.png")


def stress_inputs(suite: Suite) -> list[DatasetInput]:
    """One dataset input per shifted set: `mnist-stress/<shift>`, its digest, its cached file."""
    out = []
    for shift in suite.shifts:
        source = json.dumps({"uri": str((suite.folder / f"{shift.name}.npy").resolve()) if suite.folder else "",
                             "suite": suite.key, "family": shift.family, "severity": shift.severity})
        ds = Dataset(f"{SUITE}/{shift.name}", suite.digests[shift.name], "local", source)
        out.append(DatasetInput(ds, tags=[InputTag(MLFLOW_DATASET_CONTEXT, CONTEXT)]))
    return out


def log_stress(client: MlflowClient, run_id: str, suite: Suite, figures: Path) -> None:
    """The suite as dataset inputs of the run, and the stress figures as its run images."""
    from PIL import Image

    inputs = stress_inputs(suite)
    once_more_on_race(lambda: client.log_inputs(run_id, datasets=inputs))
    for name in PREVIEWED:
        if (figures / name).is_file():
            with Image.open(figures / name) as im:
                client.log_image(run_id, im.convert("RGB"), key=name.removesuffix(".png"), step=0)
