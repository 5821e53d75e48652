"""The `analyze` step: find a sweep's runs by tag, compute every cell's metrics, write and log
the tables, the figures and a report. Robust to a real store: a corrupt or missing artifact is
named by run id and path, every other cell is still computed, and the exit status says so.
"""
from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from underspec import tracking
from underspec.base.progress import Progress
from underspec.measures.barrier import N_MATCH
from underspec.measures.cells import cell_rows, epoch_rows
from underspec.measures.sources import source_rows
from underspec.measures.targets import SeedData
from underspec.reporting.panels import COLUMNS as PANEL_COLUMNS
from underspec.reporting.panels import panel_rows, panels_fig, panels_md
from underspec.reporting.report import gif_cells, to_csv, write_outputs
from underspec.spec.config import AnalyzeConfig, ConfigError
from underspec.spec.settings import RunSpec, run_name, spec_of_params
from underspec.training.artifacts import replaced_dir
from underspec.training.data import DataError, default_data_dir, fold_labels, load_mnist, require_mnist

CSV_COLUMNS = ["lambda", "classes", "target", "metric", "mode", "mean", "std", "ci_low", "ci_high", "n_pairs"]
NEEDED = {"trajectory.npz": ("W1", "b1", "W2", "b2", "grad_W1", "grad_W2"), "embeddings.npz": ("h",)}


@dataclass
class Loaded:
    """What the analysis read: per-run artifact digests, problems, and the few cells kept in
    memory for the unit pictures and animations (every other cell is dropped once computed)."""

    cells: dict[tuple[float, int], dict[int, SeedData]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    digests: dict[str, dict[str, str]] = field(default_factory=dict)
    n_cells: int = 0
    pe_pairs: dict[tuple[float, int], dict] = field(default_factory=dict)  # cell -> {(a, b): PE}
    barriers: dict[tuple[float, int], dict] = field(default_factory=dict)  # cell -> {(a, b): barrier metrics}
    paths: dict[tuple[float, int], dict] = field(default_factory=dict)  # kept cells -> {(a, b): {method: curves}}
    seeds: set[int] = field(default_factory=set)


def read_npz(path: Path, keys) -> dict[str, np.ndarray]:
    """Load an npz without pickle; raise ValueError naming what is missing or malformed."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise ValueError(f"missing arrays {missing}")
        return {k: z[k] for k in z.files}


def _load_run(client, run, images, keep_embeddings: bool) -> tuple[SeedData | None, list[str], dict]:
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


def panel_name(panel: tuple) -> str:
    hidden, lr, batch = panel
    return f"h{hidden}-lr{lr!r}-b{batch}"


def analyse(client, by_cell: dict, images, cfg: AnalyzeConfig, sources: bool = False, label: str = ""):
    """Load one cell at a time (bounded memory), compute its rows; returns rows, epoch rows,
    per-run values, notes and what was loaded. The paper's analysis reads the runs whose init and
    order seeds are one seed, unjittered; with `sources`, every run of a cell also enters the
    decomposition by what differs between two runs. Progress: cells, and seed pairs (barriers)."""
    out = Analysed()
    keep = set(gif_cells(cfg.gif_cells, by_cell))
    out.loaded.n_cells = len(by_cell)
    n_pairs = {cell: len(s) * (len(s) - 1) // 2 for cell, s in by_cell.items()}  # an upper bound
    with ThreadPoolExecutor(8) as pool, \
            Progress(f"analysis {cfg.sweep}{label}", sum(n_pairs.values()), "pair", len(by_cell), "cells") as bar:
        for cell, spec_runs in sorted(by_cell.items()):
            before = bar.units_done
            _analyse_cell(client, pool, cell, spec_runs, images, cfg, cell in keep, out, bar.update, sources)
            bar.update(n_pairs[cell] - (bar.units_done - before), points=1)  # pairs without barriers
    return out.rows, out.erows, out.per_run, out.notes, out.loaded


@dataclass
class Analysed:
    loaded: Loaded = field(default_factory=Loaded)
    rows: list = field(default_factory=list)
    erows: list = field(default_factory=list)
    per_run: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def _analyse_cell(client, pool, cell, spec_runs, images, cfg, kept: bool, out: Analysed, tick, sources) -> None:
    (lam, C), loaded = cell, out.loaded
    results = pool.map(lambda r: _load_run(client, r, images, kept), spec_runs.values())
    by_spec = {}
    for spec, (sd, problems, digests) in zip(spec_runs, results, strict=True):
        loaded.problems += problems
        loaded.digests[spec_runs[spec].info.run_id] = digests
        if sd is not None:
            by_spec[spec] = sd
    if sources:
        r, e = source_rows(lam, C, by_spec, cfg.bootstrap)
        out.rows += r
        out.erows += e
    paper = {sp.seed: sp for sp in spec_runs if sp.one_seed and sp.jitter == 0}  # the paper's comparisons
    seeds = {seed: by_spec[sp] for seed, sp in paper.items() if sp in by_spec}
    ref = cfg.reference_seed if cfg.reference_seed >= 0 else min(paper, default=-1)
    if len(seeds) < 2 or ref not in seeds:
        out.notes.append(f"cell lambda={lam!r} C={C}: {len(seeds)} readable seed(s)"
                         + ("" if ref in seeds else f", reference seed {ref} missing") + "; not compared")
        return
    y = fold_labels(images.test_y, C).numpy() if images is not None else None
    r, pr, pairs = cell_rows(lam, C, seeds, ref, cfg.bootstrap, paper[ref].lr, y, tick)
    loaded.pe_pairs[cell] = pairs["pe"]
    if "barriers" in pairs:
        loaded.barriers[cell] = pairs["barriers"]
        if kept:
            loaded.paths[cell] = pairs["paths"]
    for s in seeds.values():  # the pre-activations are needed for this cell only
        s.extra.pop("z", None), s.extra.pop("z_prev", None)
    loaded.seeds |= set(seeds)
    out.rows += r
    out.per_run.update(pr)
    out.erows += epoch_rows(lam, C, seeds, ref)
    if kept:
        loaded.cells[cell] = seeds


def run_analysis(cfg: AnalyzeConfig, nested_in: str | None = None) -> int:
    """Analyse a sweep; returns the process exit status (1 when any artifact was unreadable)."""
    if cfg.data_dir:
        require_mnist(cfg.data_dir)  # given explicitly: refused before anything is read or written
    if not tracking.store_exists():  # asking an absent SQLite store would create it
        raise ConfigError("sweep", cfg.sweep, f"no tracking store at {tracking.display_uri()}")
    client = tracking.client()
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
    seeds = {sp.seed for sp in specs if sp.one_seed}
    if cfg.reference_seed >= 0 and cfg.reference_seed not in seeds:
        raise ConfigError("reference_seed", cfg.reference_seed, f"not a seed of sweep {cfg.sweep} "
                          f"(its seeds: {', '.join(map(str, sorted(seeds)))})")
    images = analysis_images(cfg.data_dir)
    problems: list[str] = []
    panels = group_runs(runs, problems)
    sources = any(not sp.one_seed or sp.jitter for sp in specs)  # the seed axes beyond the paper's
    out_dir = Path(cfg.out_dir) / cfg.sweep
    results = {}
    for panel, by_cell in sorted(panels.items()):
        label = f" {panel_name(panel)}" if len(panels) > 1 else ""
        results[panel] = analyse(client, by_cell, images, cfg, sources, label)
        for r in results[panel][0] if label else ():
            r["panel"] = label.strip()  # names the analysis' cell runs; not a metrics.csv column
    with replaced_dir(out_dir) as tmp:  # a failure (a full disk) leaves the previous report whole
        files = []
        for panel, (rows, erows, _, notes, loaded) in results.items():
            sub = tmp / panel_name(panel) if len(panels) > 1 else tmp
            files += write_outputs(sub, cfg, loaded, rows, erows, notes, to_csv(rows, CSV_COLUMNS),
                                   to_csv(erows, ["lambda", "classes", "target", "epoch", "metric", "mean"]))
        if len(panels) > 1:
            files += write_panels(tmp, {panel: res[0] for panel, res in results.items()})
        digests = {k: v for *_, loaded in results.values() for k, v in loaded.digests.items()}
        inputs = json.dumps({"sweep": cfg.sweep, "runs": digests}, indent=1, sort_keys=True)
        (tmp / "inputs.json").write_text(inputs)
    rows = [r for res in results.values() for r in res[0]]
    per_run = {k: v for res in results.values() for k, v in res[2].items()}
    notes = [n for res in results.values() for n in res[3]]
    loaded = Loaded(problems=problems + [p for res in results.values() for p in res[4].problems],
                    digests=digests, n_cells=sum(res[4].n_cells for res in results.values()))
    note = (f"Analysis of sweep **{cfg.sweep}**: {len(loaded.digests)} runs in {loaded.n_cells} cells. "
            f"`report.md` and `figures/` are in this run's artifacts and in `{out_dir}`.")
    head = tracking.ParentSpec("analysis", cfg.sweep, f"analysis-{cfg.sweep}", nested_in, note=note)
    with tracking.parent_run(head) as parent:
        tracking.log_analysis(parent, out_dir, rows, per_run, len(loaded.digests), cfg)
    if nested_in:
        tracking.link_analysis(parent.client, nested_in, parent.run_id, parent.experiment_id, out_dir / "report.md")
    for line in loaded.problems + notes:
        print(f"analyze: {line}", file=sys.stderr)
    print(f"analyze: {loaded.n_cells} cells, {len(rows)} metric rows; wrote {len(files)} files to "
          f"{out_dir} and logged them to run {parent.run_id}.\n"
          f"analyze: {tracking.browse_line(parent.experiment_id, parent.run_id)}", file=sys.stderr)
    return 1 if loaded.problems else 0


def write_panels(out: Path, results: dict[tuple, list[dict]]) -> list[Path]:
    """The panels side by side, at the top of the report folder (see panels)."""
    rows = panel_rows(results)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    files = [out / "panels.csv", out / "figures" / "panels.png", out / "report.md"]
    files[0].write_text(to_csv(rows, PANEL_COLUMNS))
    panels_fig(rows, files[1])
    files[2].write_text(panels_md(rows))
    return files


@dataclass
class Images:
    """What the functional comparisons read: the test images and labels (prediction disagreement,
    the barriers' loss and error) and the first N_MATCH training images (activation matching and
    REPAIR's statistics; never the test set, on which the barrier is measured)."""

    test_x: torch.Tensor
    test_y: torch.Tensor
    train_x: torch.Tensor


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


def run_analysis_for_sweep(name: str, sweep_run_id: str, data_dir: str = "") -> int:
    """The analysis a sweep runs when it finds its grid complete: its own run, nested in the sweep's."""
    return run_analysis(AnalyzeConfig(sweep=name, data_dir=data_dir), nested_in=sweep_run_id)
