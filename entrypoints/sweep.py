"""`mlflow run . -e sweep`: Optuna's GridSampler schedules the grid; each point is an MLflow run."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from entrypoints._guard import starting  # noqa: E402

with starting("underspec-sweep"):  # imports take seconds: a Ctrl-C there gets one line, not a traceback
    from entrypoints._cli import finish, main, make_parser  # noqa: E402
    from entrypoints.train import HELP as TRAIN_HELP  # noqa: E402
    from underspec.spec.config import SweepConfig  # noqa: E402
    from underspec.steps.sweep import run_sweep  # noqa: E402

HELP = {
    **TRAIN_HELP,
    "name": "the sweep's name: its Optuna study and the underspec.sweep tag of its runs",
    "storage": "Optuna storage URL without password (sqlite:///FILE or postgresql://USER@HOST/DB; "
    "credentials through PGPASSWORD or ~/.pgpass)",
    "chunk": "grid points a worker claims at once (0: all that remain)",
    "analyze": "run the analysis when this worker finds the grid complete (true/false)",
}


def parser() -> argparse.ArgumentParser:
    return make_parser(
        "underspec-sweep",
        "Run or resume a sweep over the grid axes (seeds, or init_seeds x order_seeds; jitters, lambdas, "
        "classes, hidden widths, learning rates, batch sizes; branch_epochs x branch_order_seeds: children "
        "branched from each parent; default: the paper's 7 seeds x 6 lambdas x "
        "9 classes, 50 epochs). Re-running the same command trains only what is missing; several "
        "workers may share one storage.",
        SweepConfig, HELP)


def run(cfg: SweepConfig) -> int:
    run_sweep(cfg)
    return 0


if __name__ == "__main__":
    finish(main(parser(), SweepConfig.from_strings, run))
