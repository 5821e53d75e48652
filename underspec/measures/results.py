"""What the analysis produces: metrics.csv rows, the one index that finds a row by its keys, and a
panel's result (`Analysis`, with what was loaded for it, `Loaded`). Pure data.

A row is a dict with the columns of metrics.csv (`CSV_COLUMNS`); its key is (lambda, classes,
target, metric, mode), a `RowKey`. Every lookup of a row by its key goes through `RowIndex`;
every summary of one measure over the cells starts from `over_cells`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from underspec.measures.targets import SeedData

if TYPE_CHECKING:  # the stress measures import torch; a result object needs only the name
    from underspec.measures.stability import CellStability
    from underspec.measures.stress_trends import StressCell

KEY_COLUMNS = ("lambda", "classes", "target", "metric", "mode")
CSV_COLUMNS = [*KEY_COLUMNS, "mean", "std", "ci_low", "ci_high", "n_pairs", "interval"]
EPOCH_COLUMNS = ["lambda", "classes", "target", "epoch", "metric", "mean"]

Stats = tuple[float, float, float, float, int]  # (mean, std, ci_low, ci_high, n_pairs)


class RowKey(NamedTuple):
    """A row's key: its cell (lambda, C) and what it measures (target, metric, mode)."""

    lam: float
    classes: int
    target: str
    metric: str
    mode: str

    @classmethod
    def of(cls, row: dict) -> RowKey:
        return cls(*(row[c] for c in KEY_COLUMNS))


def interval_of(mode: str) -> str:
    """What a row's ci_low / ci_high hold, by its mode (metrics.csv's `interval` column):
    `bootstrap_95` (resampling whole seeds), `bootstrap_95_given_reference` (the reference seed's
    pairs: conditional on it), `null_range_95` (a null's 2.5th and 97.5th percentiles), `min_max`
    (the smallest and largest value over seeds: no interval), `none` (a point value)."""
    if mode == "seeds":
        return "min_max"
    if mode in ("seed_min", "seed_max", "measured", "chance_uniform", "stability_rule") or mode.startswith("sources_"):
        return "none"
    return {"reference": "bootstrap_95_given_reference", "chance_bernoulli": "null_range_95"}.get(mode, "bootstrap_95")


def with_interval(rows: list[dict]) -> list[dict]:
    """The rows with their `interval` column, for writing: a row's own where it set one (the
    stability rows over at most three parents: min_max), else its mode's."""
    return [{**r, "interval": r.get("interval") or interval_of(r["mode"])} for r in rows]


def metric_row(key: RowKey, stats: Stats) -> dict:
    """The metrics.csv row of one key and its (mean, std, ci_low, ci_high, n_pairs)."""
    mean, std, lo, hi, n = stats
    return {**dict(zip(KEY_COLUMNS, key, strict=True)),
            "mean": mean, "std": std, "ci_low": lo, "ci_high": hi, "n_pairs": n}


class RowIndex:
    """Rows by their key, the first row of a key kept. `axes`: columns before the key that tell
    rows of several panels apart (e.g. hidden, lr, batch_size); `get` then takes their values."""

    def __init__(self, rows, axes: tuple[str, ...] = ()):
        self._rows: dict[tuple, dict] = {}
        for r in rows:
            self._rows.setdefault((tuple(r[a] for a in axes), RowKey.of(r)), r)

    def get(self, key: RowKey, at: tuple = ()) -> dict | None:
        """The row of `key` (in the panel whose axes take the values `at`), None if absent."""
        return self._rows.get((tuple(at), key))


def over_cells(rows, target: str, metric: str, mode: str, key: str = "mean") -> list[dict]:
    """The rows of (target, metric, mode) in every cell whose `key` column is finite, in row order:
    what a summary over the cells (a mean, a median, a count) reads."""
    return [r for r in rows if (r["target"], r["metric"], r["mode"]) == (target, metric, mode) and r[key] == r[key]
            and abs(r[key]) != float("inf")]


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
    stress: dict = field(default_factory=dict)  # the stress suite's per-seed accuracies and samples
    suite: object = None  # the stress suite read (steps.stress.Stress), None when it was off
    stress_cells: dict[tuple[float, int], StressCell] = field(default_factory=dict)  # what the stress trends read
    stability: dict[tuple[float, int], CellStability] = field(default_factory=dict)  # cells with branched runs
    parents: list[tuple] = field(default_factory=list)  # the branched runs' parents (stability.lineage), sorted
    branch_epochs: list[int] = field(default_factory=list)  # the branch epochs the panel studies


@dataclass
class Analysis:
    """One panel's analysis: metrics.csv rows, metrics_over_epochs.csv rows (`epoch_rows`),
    per-run values against the reference ({run_id: {name: value}}), notes, and what was loaded."""

    loaded: Loaded = field(default_factory=Loaded)
    rows: list[dict] = field(default_factory=list)
    epoch_rows: list[dict] = field(default_factory=list)
    per_run: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
