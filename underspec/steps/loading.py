"""What the analyze step reads: a sweep's FINISHED training runs from the store, each run's
artifacts (never unpickled; a bad one is named by run id and path, never fatal), the runs grouped
into panels and cells, and the MNIST images the functional comparisons use."""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from underspec import tracking
from underspec.measures.barrier import N_MATCH
from underspec.measures.targets import SeedData
from underspec.spec.config import AnalyzeConfig, ConfigError
from underspec.spec.settings import RunSpec, run_name, spec_of_params
from underspec.training.data import DataError, default_data_dir, load_mnist

NEEDED = {"trajectory.npz": ("W1", "b1", "W2", "b2", "grad_W1", "grad_W2"), "embeddings.npz": ("h",)}


def read_npz(path: Path, keys) -> dict[str, np.ndarray]:
    """Load an npz without pickle; raise ValueError naming what is missing or malformed."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise ValueError(f"missing arrays {missing}")
        return {k: z[k] for k in z.files}


def load_run(client, run, images, keep_embeddings: bool) -> tuple[SeedData | None, list[str], dict]:
    rid, problems, digests, arrays = run.info.run_id, [], {}, {}
    for name, keys in NEEDED.items():
        try:
            path = tracking.artifact_path(client, run, name)
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
            arrays[name] = read_npz(path, keys)
        except Exception as exc:  # any unreadable artifact is reported, never fatal
            problems.append(f"run {rid} artifact {name}: {type(exc).__name__}: {exc}")
    if "trajectory.npz" not in arrays:
        return None, problems, digests
    t = arrays["trajectory.npz"]
    emb = arrays.get("embeddings.npz")
    sd = SeedData(rid, t, h=emb["h"][-1].astype(np.float64) if emb else None,
                  h0=emb["h"][0].astype(np.float64) if emb else None,
                  test_acc=float(run.data.metrics.get("test_acc", float("nan"))))
    if emb and keep_embeddings:
        sd.extra.update(h_all=emb["h"], y=emb["y"])
    if images is not None:
        with torch.no_grad():
            for attr, e in (("pred", -1), ("pred0", 0)):
                W1, b1, W2, b2 = (torch.from_numpy(t[k][e]) for k in ("W1", "b1", "W2", "b2"))
                setattr(sd, attr, (torch.relu(images.test_x @ W1.T + b1) @ W2.T + b2).argmax(1).numpy())
            sd.extra["z"] = {"test": _preact(t, -1, images.test_x), "train": _preact(t, -1, images.train_x)}
            if t["W1"].shape[0] > 2:  # the yardstick: the same run's last two checkpoints
                sd.extra["z_prev"] = {"test": _preact(t, -2, images.test_x)}
    return sd, problems, digests


def _preact(t: dict, e: int, X: torch.Tensor) -> np.ndarray:
    """Z (N, H) = X W1^T + b1 at epoch e, float32 as the weights: computed once per run and epoch,
    then only interpolated along each path."""
    return torch.addmm(torch.from_numpy(t["b1"][e]), X, torch.from_numpy(t["W1"][e]).T).numpy()


def group_runs(runs, problems: list[str]) -> dict[tuple, dict[tuple[float, int], dict[RunSpec, object]]]:
    """{panel: {(lambda, C): {spec: run}}} from the runs' params; a panel is one (hidden, lr,
    batch size); a second run of one configuration is reported and left out."""
    panels: dict[tuple, dict] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        spec = spec_of_params(run.data.params)
        cells = panels.setdefault((spec.hidden, spec.lr, spec.batch_size), {})
        cell = cells.setdefault((spec.lam, spec.classes), {})
        if spec in cell:
            problems.append(f"run {run.info.run_id}: a second FINISHED run of {run_name(spec)}; "
                            f"kept {cell[spec].info.run_id}")
            continue
        cell[spec] = run
    return panels


def finished_runs(cfg: AnalyzeConfig, client) -> tuple[list, list[RunSpec]]:
    """The sweep's FINISHED training runs (duplicates left out) and their specs; ConfigError
    when there are none, when they mix format versions, or the reference seed is not theirs."""
    exp = tracking.experiment_id(client, create=False)
    if exp is None or not tracking.sweep_runs(client, exp, cfg.sweep, "FINISHED", max_results=1):
        raise ConfigError("sweep", cfg.sweep, "no FINISHED training runs tagged "
                          f"underspec.sweep={cfg.sweep} in experiment {tracking.experiment_name()}")
    runs = [r for r in tracking.sweep_runs(client, exp, cfg.sweep, "FINISHED")
            if tracking.TAG_DUPLICATE not in r.data.tags]
    versions = sorted({r.data.tags.get(tracking.TAG_FORMAT, "1") for r in runs})  # untagged runs: 1
    if len(versions) > 1:
        raise ConfigError("sweep", cfg.sweep, f"its runs were trained in format versions {' and '.join(versions)} "
                          "(different minibatch orders), which never mix; re-run it under a new name")
    specs = [spec_of_params(r.data.params) for r in runs]
    seeds = {sp.seed for sp in specs if sp.one_seed and not sp.branched}
    if cfg.reference_seed >= 0 and cfg.reference_seed not in seeds:
        raise ConfigError("reference_seed", cfg.reference_seed, f"not a seed of sweep {cfg.sweep} "
                          f"(its seeds: {', '.join(map(str, sorted(seeds)))})")
    return runs, specs


@dataclass
class Images:
    """What the functional comparisons read: the test images and labels (prediction disagreement,
    the barriers' loss and error) and the first N_MATCH training images (activation matching and
    REPAIR's statistics; never the test set, on which the barrier is measured)."""

    test_x: torch.Tensor
    test_y: torch.Tensor
    train_x: torch.Tensor
    stress: object = None  # the stress suite, attached by steps.stress.with_suite when it is on


def analysis_images(data_dir: str) -> Images | None:
    """A data_dir given but empty is bad input; the default location missing only skips the
    functional comparisons."""
    try:
        m = load_mnist(Path(data_dir) if data_dir else default_data_dir())
    except DataError:
        if data_dir:
            raise
        print(f"analyze: no MNIST under {default_data_dir()}; prediction disagreement and barriers are skipped",
              file=sys.stderr)
        return None
    return Images(m.test_x, m.test_y, m.train_x[:N_MATCH])
