"""Typed, frozen configuration of each step, built from CLI strings by the parsers of `parsing`.

A run's own settings are defined in `settings`; the step configs here add how a step runs.
`MLproject` is generated from these classes (`python -m underspec.spec.mlproject`; a test checks that
it is current). Every check raises ConfigError naming the parameter and the value; entry points
turn it into one line and exit 2.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

from underspec.spec.grids import grid_doc, grid_points
from underspec.spec.parsing import (  # noqa: F401 (re-exported: the configs' parsers and errors)
    DEVICES,
    SEED_MAX,
    ConfigError,
    float_list,
    int_list,
    parse_bool,
    parse_cells,
    parse_classes,
    parse_data_dir,
    parse_device,
    parse_float,
    parse_int,
    parse_lambdas,
    parse_name,
    parse_out_dir,
    parse_seeds,
    parse_storage,
    parse_stress,
)
from underspec.spec.settings import (  # noqa: F401 (FORMAT_VERSION re-exported)
    AXES,
    FORMAT_VERSION,
    RunSettings,
    RunSpec,
    as_text,
)

PAPER_SEEDS = (0, 42, 1337, 3213, 9999, 5783, 1023)
PAPER_LAMBDAS = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)
PAPER_CLASSES = tuple(range(2, 11))
MAX_EPOCHS = 10000  # a typo's guard: 1e5 epochs of even one run would take weeks here


@dataclass(frozen=True)
class GridConfig(RunSettings):
    """What `train` and `sweep` share: the grid axes (their cross product is trained), the shared
    run settings (from RunSettings), and how the engine runs."""

    seeds: tuple[int, ...] = (0,)
    init_seeds: tuple[int, ...] = ()
    order_seeds: tuple[int, ...] = ()
    jitters: tuple[int, ...] = (RunSpec.jitter,)
    lambdas: tuple[float, ...] = (0.001,)
    classes: tuple[int, ...] = (10,)
    hidden: tuple[int, ...] = (RunSpec.hidden,)
    lr: tuple[float, ...] = (RunSpec.lr,)
    batch_size: tuple[int, ...] = (RunSpec.batch_size,)
    branch_epochs: tuple[int, ...] = ()  # (): no branch
    branch_order_seeds: tuple[int, ...] = ()
    device: str = "auto"
    workers: int = 1
    data_dir: str = ""

    def __post_init__(self):
        if bool(self.init_seeds) != bool(self.order_seeds):
            given = "init_seeds" if self.init_seeds else "order_seeds"
            raise ConfigError(given, as_text(getattr(self, given)), "give init_seeds and order_seeds together")
        if bool(self.branch_epochs) != bool(self.branch_order_seeds):
            given = "branch_epochs" if self.branch_epochs else "branch_order_seeds"
            raise ConfigError(given, as_text(getattr(self, given)),
                              "give branch_epochs and branch_order_seeds together")
        late = [k for k in self.branch_epochs if k > self.epochs]
        if late:
            raise ConfigError("branch_epochs", as_text(self.branch_epochs),
                              f"{late[0]} is past the last epoch (epochs={self.epochs})")

    def axes(self) -> dict[str, tuple]:
        """The grid's lists; `seeds` only when the two seed lists are not given."""
        return {k: getattr(self, k) for k in AXIS_OPTIONS}

    def points(self) -> list[RunSpec]:
        """The grid points (the cross product, each in its canonical form once), sorted."""
        return grid_points(self.grid())

    def grid(self) -> dict:
        """The normalised grid as a sweep's study stores it: spelled the same however it was typed."""
        return grid_doc(self.axes(), self)


AXIS_OPTIONS = ("seeds", "init_seeds", *(a.option for a in AXES if a.option != "seeds"))
GRID_PARSERS = {
    "seeds": parse_seeds, "lambdas": parse_lambdas, "classes": parse_classes,
    "init_seeds": int_list("init_seeds", 0, SEED_MAX, empty_ok=True),
    "order_seeds": int_list("order_seeds", 0, SEED_MAX, empty_ok=True),
    "jitters": int_list("jitters", 0, SEED_MAX),
    "branch_epochs": int_list("branch_epochs", 0, MAX_EPOCHS, empty_ok=True),
    "branch_order_seeds": int_list("branch_order_seeds", 0, SEED_MAX, empty_ok=True),
    "epochs": lambda t: parse_int("epochs", t, lo=1, hi=MAX_EPOCHS),
    "batch_size": int_list("batch_size", 1, 60000),  # MNIST's training set
    "lr": float_list("lr", positive=True),
    "hidden": int_list("hidden", 1, 4096),
    "probe_size": lambda t: parse_int("probe_size", t, lo=1, hi=10000),
    "device": parse_device,
    "workers": lambda t: parse_int("workers", t, lo=1, hi=max(1, os.cpu_count() or 1) * 4),
    "data_dir": lambda t: parse_data_dir(t),
}


# Options whose '' means "the library default": MLproject passes every parameter, so `seeds` there
# defaults to '' and is left out when init_seeds and order_seeds are given.
EMPTY_IS_DEFAULT = ("seeds",)


def given(key: str, value) -> bool:
    """Whether a CLI value was given: not None, and not '' for the EMPTY_IS_DEFAULT options."""
    return value is not None and not (key in EMPTY_IS_DEFAULT and str(value).strip() == "")


def _seeds_given(raw: dict, values: dict) -> dict:
    """`seeds` is the shorthand for init = order: refused beside init_seeds / order_seeds, and
    its default dropped when they are given."""
    if values.get("init_seeds") or values.get("order_seeds"):
        if given("seeds", raw.get("seeds")):
            raise ConfigError("seeds", raw["seeds"],
                              "give seeds (init = order) or init_seeds and order_seeds, not both")
        values["seeds"] = ()
    return values


@dataclass(frozen=True)
class TrainConfig(GridConfig):
    """`train`: the cross product of the grid axes (seeds, or init_seeds x order_seeds; x jitters
    x lambdas x classes x hidden x lr x batch_size x branch_epochs x branch_order_seeds), trained
    fused, one MLflow run each (a child that is its parent or another run, trained once)."""

    sweep: str = ""

    @classmethod
    def from_strings(cls, **raw) -> TrainConfig:
        """Build from CLI strings, validating each; raises ConfigError on the first bad value."""
        conv = {**GRID_PARSERS, "sweep": lambda t: parse_name("sweep", t, allow_empty=True)}
        return cls(**_seeds_given(raw, {k: conv[k](v) for k, v in raw.items() if given(k, v)}))


def field_defaults(cls) -> dict[str, object]:
    """{field: default} of a step config, in the order people read them (CLI, MLproject): the
    sweep's name, then the grid axes, then the rest as declared."""
    first = ("name", *AXIS_OPTIONS)
    fs = sorted(fields(cls), key=lambda f: first.index(f.name) if f.name in first else len(first))
    return {f.name: f.default for f in fs}


@dataclass(frozen=True)
class FetchConfig:
    """`fetch_data`: where MNIST goes."""

    data_dir: str = ""

    @classmethod
    def from_strings(cls, data_dir=None) -> FetchConfig:
        if data_dir is None:
            return cls()
        path = parse_data_dir(data_dir)
        if os.path.exists(path) and not os.path.isdir(path):
            raise ConfigError("data_dir", path, "exists and is not a folder")
        return cls(path)


@dataclass(frozen=True)
class SweepConfig(GridConfig):
    """`sweep`: the grid scheduled by Optuna's GridSampler, one MLflow run per grid point. The
    default grid is the paper's."""

    seeds: tuple[int, ...] = PAPER_SEEDS
    lambdas: tuple[float, ...] = PAPER_LAMBDAS
    classes: tuple[int, ...] = PAPER_CLASSES
    workers: int = 2
    name: str = "paper"
    storage: str = "sqlite:///optuna.db"
    chunk: int = 0
    analyze: bool = True

    @classmethod
    def from_strings(cls, **raw) -> SweepConfig:
        own = {"name": lambda t: parse_name("name", t), "storage": parse_storage,
               "chunk": lambda t: parse_int("chunk", t, lo=0), "analyze": lambda t: parse_bool("analyze", t)}
        values = {k: GRID_PARSERS[k](v) for k, v in raw.items() if k in GRID_PARSERS and given(k, v)}
        values.update({k: own[k](v) for k, v in raw.items() if k in own and v is not None})
        return cls(**_seeds_given(raw, values))

    def __post_init__(self):
        super().__post_init__()
        if self.branch_epochs:
            _check_branches(self)


def _check_branches(cfg: GridConfig) -> None:
    """A sweep's branches must spell distinct runs (the GridSampler schedules every combination):
    no branch at the last epoch, no post-branch seed that is an order seed, and k = 0 (the run
    with the post-branch seed as its order seed) with one of order_seeds only (beside init_seeds:
    with two, (init, o1, k 0, q) and (init, o2, k 0, q) would both be the run (init, q))."""
    orders = set(cfg.order_seeds or cfg.seeds)
    if max(cfg.branch_epochs) >= cfg.epochs:
        raise ConfigError("branch_epochs", as_text(cfg.branch_epochs),
                          f"a branch at epoch {cfg.epochs} (epochs) is its parent; branch before it")
    if orders & set(cfg.branch_order_seeds):
        raise ConfigError("branch_order_seeds", as_text(cfg.branch_order_seeds),
                          f"{min(orders & set(cfg.branch_order_seeds))} is an order seed too: that child is its parent")
    if 0 in cfg.branch_epochs and len(cfg.order_seeds) > 1:  # with `seeds`, (s, q) differ by s
        raise ConfigError("branch_epochs", as_text(cfg.branch_epochs),
                          "k = 0 is the run with the post-branch seed as its order seed: with several order "
                          "seeds two children would be that one run; give one order seed or drop 0")


@dataclass(frozen=True)
class AnalyzeConfig:
    """`analyze`: a sweep's metrics, figures and report, logged back to the tracking server."""

    sweep: str = "paper"
    reference_seed: int = -1
    bootstrap: int = 1000
    gif_cells: str = "auto"
    out_dir: str = "reports"
    data_dir: str = ""
    stress: str = "all"  # the stress suite: all, none, or a comma list of its families

    @classmethod
    def from_strings(cls, **raw) -> AnalyzeConfig:
        conv = {"sweep": lambda t: parse_name("sweep", t),
                "reference_seed": lambda t: parse_int("reference_seed", t, lo=-1),
                "bootstrap": lambda t: parse_int("bootstrap", t, lo=10, hi=100000),
                "gif_cells": parse_cells, "out_dir": parse_out_dir, "data_dir": parse_data_dir,
                "stress": parse_stress}
        return cls(**{k: conv[k](v) for k, v in raw.items() if v is not None})

