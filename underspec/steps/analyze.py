"""The `analyze` step: find a sweep's runs by tag, compute every cell's metrics, write and log
the tables, the figures and a report. Robust to a real store: a corrupt or missing artifact is
named by run id and path, every other cell is still computed, and the exit status says so.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from underspec import tracking
from underspec.base.progress import Progress, Tally
from underspec.measures.cells import CellContext, cell_rows, epoch_rows
from underspec.measures.results import Analysis, Loaded, with_interval
from underspec.measures.sources import source_rows
from underspec.measures.stability import cell_stability, draws, lineage, stability_rows, studied_epochs
from underspec.measures.targets import SeedData
from underspec.reporting.panels import COLUMNS as PANEL_COLUMNS
from underspec.reporting.panels import panel_rows, panels_fig, panels_md
from underspec.reporting.report import gif_cells, to_csv, write_outputs
from underspec.spec.config import AnalyzeConfig, ConfigError
from underspec.spec.settings import RunSpec
from underspec.steps import stress
from underspec.steps.loading import Images, analysis_images, finished_runs, group_runs, load_run
from underspec.training.artifacts import replaced_dir
from underspec.training.data import fold_labels, require_mnist


def panel_name(panel: tuple) -> str:
    hidden, lr, batch = panel
    return f"h{hidden}-lr{lr!r}-b{batch}"


def paper_runs(specs) -> dict[int, RunSpec]:
    """{seed: spec} of the runs the paper's comparisons read: one seed, unjittered, unbranched."""
    return {sp.seed: sp for sp in specs if sp.one_seed and sp.jitter == 0 and not sp.branched}


@dataclass
class Inputs:
    """What a panel's analysis reads and how: the tracking client, the images (None: no
    functional comparisons), the config, and whether the decomposition by seed axes runs."""

    client: object
    images: Images | None
    cfg: AnalyzeConfig
    sources: bool = False


def analyze(inputs: Inputs, by_cell: dict, label: str = "") -> Analysis:
    """Load one cell at a time (bounded memory), compute its rows; returns the panel's Analysis.
    The paper's analysis reads the runs whose init and order seeds are one seed, unjittered;
    with `inputs.sources`, every run of a cell also enters the decomposition by what differs
    between two runs. Progress: cells, and seed pairs (barriers)."""
    out, cfg = Analysis(), inputs.cfg
    keep = set(gif_cells(cfg.gif_cells, by_cell))
    out.loaded.n_cells = len(by_cell)
    out.loaded.parents = sorted({lineage(sp.parent) for specs in by_cell.values() for sp in specs if sp.branched})
    out.loaded.branch_epochs = studied_epochs(by_cell.values())
    n_pairs = {cell: len(s) * (len(s) - 1) // 2 for cell, s in by_cell.items()}  # an upper bound
    with ThreadPoolExecutor(8) as pool, stress.Queue(inputs.images, cfg.bootstrap) as queue, \
            Progress(f"analysis {cfg.sweep}{label}", Tally(sum(n_pairs.values()), "pair"),
                     Tally(len(by_cell), "cells")) as bar:
        cells = CellAnalyzer(inputs, pool, out, bar.update, queue)
        for cell, spec_runs in sorted(by_cell.items()):
            before = bar.units_done
            cells.analyze(cell, spec_runs, cell in keep)
            bar.update(n_pairs[cell] - (bar.units_done - before), points=1)  # pairs without barriers
        queue.drain(out)
    return out


@dataclass
class CellAnalyzer:
    """What every cell of one panel's analysis shares: its inputs, a pool of loader threads, the
    Analysis the cells add to, the progress tick (one per seed pair's barriers) and the queue of
    the cells' stress work."""

    inputs: Inputs
    pool: ThreadPoolExecutor
    out: Analysis
    tick: Callable[[int], object]
    queue: stress.Queue

    def analyze(self, cell: tuple[float, int], spec_runs: dict[RunSpec, object], kept: bool) -> None:
        """Load the cell's runs, compute its rows and add them to `out`; `kept`: keep its seeds
        and paths for the unit pictures and animations."""
        by_spec = self._load(spec_runs, kept)
        if self.out.loaded.parents and self.inputs.images is not None:
            self._stability(cell, by_spec)
        if self.inputs.sources:
            r, e = source_rows(*cell, by_spec, self.inputs.cfg.bootstrap)
            self.out.rows += r
            self.out.epoch_rows += e
        context = self._paper_cell(cell, spec_runs, by_spec)
        if context is not None:
            self._compare(cell, context, kept)

    def _stability(self, cell: tuple[float, int], by_spec: dict[RunSpec, SeedData]) -> None:
        """The instability analysis of a cell's branched children (none: nothing added)."""
        (lam, C), loaded = cell, self.out.loaded
        cs = cell_stability(by_spec, fold_labels(self.inputs.images.test_y, C).numpy(), self.tick)
        if cs.pairs:
            idx = draws(loaded.parents, self.inputs.cfg.bootstrap)  # the same resamples in every cell
            self.out.rows += stability_rows(lam, C, cs, loaded.parents, idx, loaded.branch_epochs)
            loaded.stability[cell] = cs

    def _load(self, spec_runs: dict[RunSpec, object], kept: bool) -> dict[RunSpec, SeedData]:
        loaded = self.out.loaded
        client, images = self.inputs.client, self.inputs.images
        results = self.pool.map(lambda r: load_run(client, r, images, kept), spec_runs.values())
        by_spec = {}
        for spec, (sd, problems, digests) in zip(spec_runs, results, strict=True):
            loaded.problems += problems
            loaded.digests[spec_runs[spec].info.run_id] = digests
            if sd is not None:
                by_spec[spec] = sd
        return by_spec

    def _paper_cell(self, cell, spec_runs, by_spec) -> CellContext | None:
        """The paper's comparison of the cell: its one-seed, unjittered runs against the reference
        seed; None (and a note) when fewer than two are readable or the reference is not."""
        (lam, C), cfg, images = cell, self.inputs.cfg, self.inputs.images
        paper = paper_runs(spec_runs)
        seeds = {seed: by_spec[sp] for seed, sp in paper.items() if sp in by_spec}
        ref = cfg.reference_seed if cfg.reference_seed >= 0 else min(paper, default=-1)
        if not paper and any(sp.branched for sp in spec_runs):
            return None  # a branch study's cell: its children are compared by the stability analysis
        if len(seeds) < 2 or ref not in seeds:
            self.out.notes.append(f"cell lambda={lam!r} C={C}: {len(seeds)} readable seed(s)"
                                  + ("" if ref in seeds else f", reference seed {ref} missing") + "; not compared")
            return None
        y = fold_labels(images.test_y, C).numpy() if images is not None else None
        return CellContext(lam, C, seeds, ref, cfg.bootstrap, paper[ref].lr, y)

    def _compare(self, cell, context: CellContext, kept: bool) -> None:
        out, loaded = self.out, self.out.loaded
        r, pr, pairs = cell_rows(context, self.tick)
        loaded.pe_pairs[cell] = pairs["pe"]
        if "barriers" in pairs:
            loaded.barriers[cell] = pairs["barriers"]
            if kept:
                loaded.paths[cell] = pairs["paths"]
        for s in context.seeds.values():  # the pre-activations are needed for this cell only
            s.extra.pop("z", None), s.extra.pop("z_prev", None)
        loaded.seeds |= set(context.seeds)
        out.rows += r
        out.per_run.update(pr)
        out.epoch_rows += epoch_rows(context)
        self.queue.submit(cell, context.seeds, out)  # its rows follow the cell's own
        if kept:
            loaded.cells[cell] = context.seeds


def run_analysis(cfg: AnalyzeConfig, nested_in: str | None = None) -> int:
    """Analyze a sweep; returns the process exit status (1 when any artifact was unreadable)."""
    if cfg.data_dir:
        require_mnist(cfg.data_dir)  # given explicitly: refused before anything is read or written
    if not tracking.store_exists():  # asking an absent SQLite store would create it
        raise ConfigError("sweep", cfg.sweep, f"no tracking store at {tracking.display_uri()}")
    client = tracking.client()
    runs, specs = finished_runs(cfg, client)
    images = stress.with_suite(analysis_images(cfg.data_dir), cfg)
    problems: list[str] = []
    panels = group_runs(runs, problems)
    sources = any(not sp.one_seed or sp.jitter for sp in specs)  # the seed axes beyond the paper's
    inputs, results = Inputs(client, images, cfg, sources), {}
    for panel, by_cell in sorted(panels.items()):
        label = f" {panel_name(panel)}" if len(panels) > 1 else ""
        results[panel] = analyze(inputs, by_cell, label)
        for r in results[panel].rows if label else ():
            r["panel"] = label.strip()  # names the analysis' cell runs; not a metrics.csv column
    out_dir = Path(cfg.out_dir) / cfg.sweep
    files, digests = write_all(out_dir, cfg, results)
    total = Loaded(problems=problems + [p for res in results.values() for p in res.loaded.problems],
                   digests=digests, n_cells=sum(res.loaded.n_cells for res in results.values()),
                   suite=stress.suite_of(images))
    return log_and_say(cfg, (out_dir, files), results, total, nested_in)


def write_all(out_dir: Path, cfg: AnalyzeConfig, results: dict[tuple, Analysis]) -> tuple[list[Path], dict]:
    """Every panel's outputs (in a folder of its own when there are several, with the panels side
    by side on top) and inputs.json; returns the files and the runs' artifact digests."""
    with replaced_dir(out_dir) as tmp:  # a failure (a full disk) leaves the previous report whole
        files = []
        for panel, res in results.items():
            sub = tmp / panel_name(panel) if len(results) > 1 else tmp
            files += write_outputs(sub, cfg, res)
        if len(results) > 1:
            files += write_panels(tmp, {panel: res.rows for panel, res in results.items()})
        digests = {k: v for res in results.values() for k, v in res.loaded.digests.items()}
        inputs = json.dumps({"sweep": cfg.sweep, "runs": digests}, indent=1, sort_keys=True)
        (tmp / "inputs.json").write_text(inputs)
    return files, digests


def log_and_say(cfg: AnalyzeConfig, written: tuple[Path, list[Path]], results: dict[tuple, Analysis],
                total: Loaded, nested_in: str | None) -> int:
    """Log the outputs written (out_dir, files) to an analysis run (with the stress suite, when
    on, as its dataset inputs), print problems, notes and a summary; the exit status (1 when any
    artifact was unreadable)."""
    (out_dir, files), loaded = written, total
    rows = [r for res in results.values() for r in res.rows]
    per_run = {k: v for res in results.values() for k, v in res.per_run.items()}
    notes = [n for res in results.values() for n in res.notes]
    note = (f"Analysis of sweep **{cfg.sweep}**: {len(loaded.digests)} runs in {loaded.n_cells} cells. "
            f"`report.md` and `figures/` are in this run's artifacts and in `{out_dir}`.")
    head = tracking.ParentSpec("analysis", cfg.sweep, f"analysis-{cfg.sweep}", nested_in, note=note)
    with tracking.parent_run(head) as parent:
        tracking.log_analysis(parent, out_dir, rows, per_run, len(loaded.digests), cfg)
        stress.log(parent, loaded.suite, out_dir)
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
    files[0].write_text(to_csv(with_interval(rows), PANEL_COLUMNS))
    panels_fig(rows, files[1])
    files[2].write_text(panels_md(rows))
    return files


def run_analysis_for_sweep(name: str, sweep_run_id: str, data_dir: str = "") -> int:
    """The analysis a sweep runs when it finds its grid complete: its own run, nested in the sweep's."""
    return run_analysis(AnalyzeConfig(sweep=name, data_dir=data_dir), nested_in=sweep_run_id)
