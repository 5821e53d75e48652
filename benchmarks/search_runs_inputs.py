"""What one dataset input per training run costs `search_runs` (the issue "The sweep as a researcher
sees it"): the paper grid's 378 training runs searched by tag, before and after their inputs.

Takes a store made by `make sweep` (its mlflow.db and mlruns/) and never writes to it: it copies
mlflow.db twice, logs one MNIST dataset input onto every FINISHED training run of the second copy
(MLflow accepts inputs on FINISHED runs), then times the analysis' search (`sweep_runs`, all
pages) on both copies, alternately, `--repeats` times each. Prints a markdown table.

Usage: python benchmarks/search_runs_inputs.py --store DIR [--sweep paper] [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlflow.tracking import MlflowClient  # noqa: E402

from underspec.tracking import dataset_input, sweep_runs  # noqa: E402
from underspec.training.data import dataset_digest, default_data_dir  # noqa: E402


def timed_search(uri: str, sweep: str) -> tuple[float, int, int]:
    """Seconds for one full search of the sweep's FINISHED training runs (a fresh client, as a
    process that starts the analysis has), the runs found, and the dataset inputs they carry."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("underspec").experiment_id
    t0 = time.perf_counter()
    runs = sweep_runs(client, exp, sweep, "FINISHED")
    dt = time.perf_counter() - t0
    return dt, len(runs), sum(len(r.inputs.dataset_inputs) for r in runs)


def add_inputs(uri: str, sweep: str, data_dir: Path) -> float:
    """Log one dataset input on every training run of the sweep; returns seconds per run."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("underspec").experiment_id
    runs = sweep_runs(client, exp, sweep, "FINISHED")
    t0 = time.perf_counter()
    for r in runs:
        dataset = dataset_input(data_dir, dataset_digest(data_dir), int(r.data.params["classes"]))
        client.log_inputs(r.info.run_id, datasets=[dataset])
    return (time.perf_counter() - t0) / max(len(runs), 1)


def machine() -> str:
    names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
             if ln.startswith("model name")] if Path("/proc/cpuinfo").is_file() else []
    return f"{platform.machine()}, {names[0] if names else 'cpu'}, {os.cpu_count()} cores"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, help="folder holding the sweep's mlflow.db (and mlruns/)")
    ap.add_argument("--sweep", default="paper")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--data_dir", default="", help="MNIST root (default: $UNDERSPEC_DATA_DIR or ./data)")
    args = ap.parse_args()
    db = Path(args.store) / "mlflow.db"
    if not db.is_file():
        print(f"search_runs_inputs: error: invalid store={args.store}: no mlflow.db there", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="underspec-bench-") as tmp:
        uris = {}
        for label in ("before", "after"):
            shutil.copy(db, Path(tmp) / f"{label}.db")
            uris[label] = f"sqlite:///{Path(tmp) / f'{label}.db'}"
        per_run = add_inputs(uris["after"], args.sweep, Path(args.data_dir) if args.data_dir else default_data_dir())
        times: dict[str, list[float]] = {"before": [], "after": []}
        found = {}
        for _ in range(args.repeats):
            for label, uri in uris.items():
                dt, n, n_inputs = timed_search(uri, args.sweep)
                times[label].append(dt)
                found[label] = (n, n_inputs)
    print(f"Machine: {machine()}; python {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d')}. Logging the inputs: {per_run * 1000:.1f} ms per run.\n")
    print("| store | runs found | dataset inputs | median s | min s | max s | repeats |")
    print("|---|---|---|---|---|---|---|")
    for label, ts in times.items():
        n, n_inputs = found[label]
        print(f"| {label} inputs | {n} | {n_inputs} | {statistics.median(ts):.3f} | {min(ts):.3f} | {max(ts):.3f} | "
              f"{len(ts)} |")
    ratio = statistics.median(times["after"]) / statistics.median(times["before"])
    print(f"\nafter / before (medians): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
