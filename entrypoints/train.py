"""`mlflow run . -e train`: train a grid of the paper's MLP (the cross product of its axes: seeds,
or init and order seeds; jitters, lambdas, classes, widths, learning rates, batch sizes, branch
epochs and post-branch order seeds), one MLflow run each."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from entrypoints._guard import starting  # noqa: E402

with starting("underspec-train"):  # imports take seconds: a Ctrl-C there gets one line, not a traceback
    from entrypoints._cli import finish, main, make_parser  # noqa: E402
    from underspec.spec.config import TrainConfig  # noqa: E402
    from underspec.steps.train import run_train  # noqa: E402

HELP = {
    "seeds": "comma-separated non-negative integer seeds, each for the init and the minibatch order",
    "init_seeds": "seeds of the initial weights; with order_seeds, instead of seeds: their cross product",
    "order_seeds": "seeds of the minibatch order; with init_seeds, instead of seeds",
    "jitters": "comma-separated integers >= 0: a one-ulp nudge of every initial weight, directions "
    "drawn from this seed (0: none)",
    "lambdas": "comma-separated L1 strengths on the first layer (>= 0)",
    "classes": "comma-separated class counts in 2..10 (digits >= C fold into class 0)",
    "epochs": "epochs per run", "batch_size": "comma-separated minibatch sizes",
    "lr": "comma-separated SGD learning rates", "hidden": "comma-separated hidden widths (the embedding size)",
    "probe_size": "test images whose embeddings are recorded each epoch",
    "device": "auto, cpu or cuda", "workers": "engine processes (results do not depend on it)",
    "data_dir": "MNIST root; empty: $UNDERSPEC_DATA_DIR or ./data",
    "sweep": "tag the runs with underspec.sweep=<name>",
    "branch_epochs": "comma-separated branch epochs k in 0..epochs (empty: no branch): a child trains "
    "epochs 1..k as its parent, then on the minibatch order of a post-branch seed",
    "branch_order_seeds": "the children's post-branch order seeds (with branch_epochs; named apart from "
    "order_seeds, which the parent's first k epochs use)",
}


def parser() -> argparse.ArgumentParser:
    return make_parser(
        "underspec-train",
        "Train the cross product of the grid axes (seeds, or init_seeds x order_seeds; jitters, lambdas, "
        "classes, hidden widths, learning rates, batch sizes; branch_epochs x branch_order_seeds) of the "
        "784-H-C MLP on MNIST, fused per minibatch stream (order seed, branch, post-branch seed, batch "
        "size, width); each configuration becomes a nested MLflow "
        "run with per-epoch metrics and trajectory.npz / embeddings.npz artifacts.",
        TrainConfig, HELP)


if __name__ == "__main__":
    finish(main(parser(), TrainConfig.from_strings, lambda cfg: run_train(cfg) and 0))
