"""`mlflow run . -e analyze`: a sweep's APC / PE and more, logged back with Figure 3.1 and a report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from entrypoints._guard import starting  # noqa: E402

with starting("underspec-analyze"):  # imports take seconds: a Ctrl-C there gets one line, not a traceback
    from entrypoints._cli import finish, main, make_parser  # noqa: E402
    from underspec.spec.config import AnalyzeConfig  # noqa: E402
    from underspec.steps.analyze import run_analysis  # noqa: E402

HELP = {
    "sweep": "the sweep to analyze (its runs carry underspec.sweep=<name>)",
    "reference_seed": "seed every other seed is compared with; -1: the smallest seed of each cell",
    "bootstrap": "bootstrap resamples for the 95%% intervals",
    "gif_cells": "cells to draw unit pictures and PCA animations for: auto, none, or lambda:C,...",
    "out_dir": "local folder for the outputs (also logged to the analysis run)",
    "data_dir": "MNIST root, for prediction disagreement; empty: $UNDERSPEC_DATA_DIR or ./data",
    "stress": "the stress suite of shifted test sets: all, none, or a comma list of families",
}


def parser() -> argparse.ArgumentParser:
    return make_parser(
        "underspec-analyze",
        "Find a sweep's FINISHED training runs by tag, align hidden units across seeds "
        "(Hungarian matching on |Pearson|), compute APC-1, APC-2, PE (reference and all-pairs, with "
        "chance baselines), live-unit variants, CKA and disagreement; write metrics.csv, figures "
        "and report.md, and log them to an analysis run. Exit status 1 if an artifact was unreadable.",
        AnalyzeConfig, HELP)


if __name__ == "__main__":
    finish(main(parser(), AnalyzeConfig.from_strings, run_analysis))
