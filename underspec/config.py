"""Typed, frozen configuration of each step, and the parsing that validates user input.

A run's own settings are defined in `settings`; the step configs here add how a step runs.
`MLproject` is generated from these classes (`python -m underspec.mlproject`; a test checks that
it is current). Every check raises
ConfigError naming the parameter and the value; entry points turn it into one line and exit 2.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from .settings import AXES, FORMAT_VERSION, RunSettings, RunSpec, grid_doc, grid_points  # noqa: F401

PAPER_SEEDS = (0, 42, 1337, 3213, 9999, 5783, 1023)
PAPER_LAMBDAS = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)
PAPER_CLASSES = tuple(range(2, 11))
DEVICES = ("auto", "cpu", "cuda")
MAX_EPOCHS = 10000  # a typo's guard: 1e5 epochs of even one run would take weeks here


class ConfigError(ValueError):
    """Bad user input: one line naming the parameter and the offending value."""

    def __init__(self, param: str, value, why: str):
        super().__init__(f"invalid {param}={value!r}: {why}")
        self.param = param


def _items(param: str, text: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",")]
    if not text or not str(text).strip() or any(t == "" for t in items):
        raise ConfigError(param, text, "expected a non-empty comma-separated list")
    return items


def parse_int(param: str, text, lo: int | None = None, hi: int | None = None, whole=None) -> int:
    """An integer in [lo, hi]; `whole` is the full list value to quote when text is one item."""
    quoted, item = (text, "") if whole is None else (whole, f"{text!r} ")
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(param, quoted, f"{item}is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ConfigError(param, quoted, f"{item}must be {bounds}".lstrip())
    return value


def parse_float(param: str, text, positive: bool = False, whole=None) -> float:
    quoted, item = (text, "") if whole is None else (whole, f"{text!r} ")
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ConfigError(param, quoted, f"{item}is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(param, quoted, f"{item}must be a finite number " + ("> 0" if positive else ">= 0"))
    return value


def _unique(param: str, text, values: list) -> tuple:
    if len(set(values)) != len(values):
        raise ConfigError(param, text, "values repeat")
    return tuple(values)


def int_list(param: str, lo: int, hi: int | None = None, empty_ok: bool = False):
    """A parser of a comma list of distinct integers in [lo, hi]; '' is () where empty_ok."""
    def parse(text) -> tuple[int, ...]:
        if empty_ok and str(text).strip() == "":
            return ()
        return _unique(param, text, [parse_int(param, t, lo=lo, hi=hi, whole=text) for t in _items(param, text)])
    return parse


def float_list(param: str, positive: bool = False):
    """A parser of a comma list of distinct finite numbers >= 0 (> 0 when positive)."""
    def parse(text) -> tuple[float, ...]:
        return _unique(param, text, [parse_float(param, t, positive, whole=text) for t in _items(param, text)])
    return parse


SEED_MAX = 2**63 - 1
parse_seeds = int_list("seeds", 0, SEED_MAX)
parse_lambdas = float_list("lambdas")
parse_classes = int_list("classes", 2, 10)


def parse_device(text) -> str:
    if text not in DEVICES:
        raise ConfigError("device", text, f"expected one of {', '.join(DEVICES)}")
    return text


def parse_bool(param: str, text) -> bool:
    low = str(text).strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise ConfigError(param, text, "expected true or false")


def join(values) -> str:
    """The MLproject spelling of a tuple default: '0,42' (floats with repr)."""
    return ",".join(repr(v) if isinstance(v, float) else str(v) for v in values)


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
    device: str = "auto"
    workers: int = 1
    data_dir: str = ""

    def __post_init__(self):
        if bool(self.init_seeds) != bool(self.order_seeds):
            given = "init_seeds" if self.init_seeds else "order_seeds"
            raise ConfigError(given, join(getattr(self, given)), "give init_seeds and order_seeds together")

    def axes(self) -> dict[str, tuple]:
        """The grid's lists; `seeds` only when the two seed lists are not given."""
        return {k: getattr(self, k) for k in AXIS_OPTIONS}

    def points(self) -> list[RunSpec]:
        """The grid points (the cross product), sorted."""
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
    """`train`: the cross product seeds x lambdas x classes, trained fused, one MLflow run each."""

    sweep: str = ""

    @classmethod
    def from_strings(cls, **raw) -> TrainConfig:
        """Build from CLI strings, validating each; raises ConfigError on the first bad value."""
        conv = {**GRID_PARSERS, "sweep": lambda t: parse_name("sweep", t, allow_empty=True)}
        return cls(**_seeds_given(raw, {k: conv[k](v) for k, v in raw.items() if given(k, v)}))


def parse_data_dir(text) -> str:
    """'' means $UNDERSPEC_DATA_DIR, else ./data (resolved when the data is loaded)."""
    text = str(text)
    if text != text.strip() or "\0" in text:
        raise ConfigError("data_dir", text, "not a usable path")
    return text


def parse_name(param: str, text, allow_empty: bool = False) -> str:
    """A sweep name: letters, digits, '.', '_' and '-', no path separators, at most 64 chars."""
    text = str(text)
    if text == "" and allow_empty:
        return text
    ok = text and len(text) <= 64 and all(c.isalnum() or c in "._-" for c in text) \
        and text.isascii() and text not in (".", "..") and not text.startswith(".")
    if not ok:
        raise ConfigError(param, text, "use 1-64 letters, digits, '.', '_' or '-', not starting with '.'")
    return text


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


def parse_storage(text) -> str:
    """An Optuna RDB URL without credentials; plain postgresql:// is pinned to psycopg 3."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = str(text)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ConfigError("storage", text, "not a database URL (e.g. sqlite:///optuna.db)") from None
    shown = url.render_as_string(hide_password=True)
    if url.password is not None:
        raise ConfigError("storage", shown, "holds a password; leave it out of the URL and pass it "
                          "through PGPASSWORD or ~/.pgpass (parameters are logged and printed)")
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database:
            raise ConfigError("storage", text, "an SQLite URL needs a file (sqlite:///optuna.db)")
        if not os.path.isdir(os.path.dirname(os.path.abspath(url.database))):
            raise ConfigError("storage", text, "the SQLite file's folder does not exist")
        return text
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if not url.host or not url.database:
            raise ConfigError("storage", text, "a PostgreSQL URL needs a host and a database")
        return url.render_as_string(hide_password=False)
    raise ConfigError("storage", shown, "use sqlite:///FILE or postgresql://USER@HOST/DB")


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


@dataclass(frozen=True)
class AnalyzeConfig:
    """`analyze`: a sweep's metrics, figures and report, logged back to the tracking server."""

    sweep: str = "paper"
    reference_seed: int = -1
    bootstrap: int = 1000
    gif_cells: str = "auto"
    out_dir: str = "reports"
    data_dir: str = ""

    @classmethod
    def from_strings(cls, **raw) -> AnalyzeConfig:
        conv = {"sweep": lambda t: parse_name("sweep", t),
                "reference_seed": lambda t: parse_int("reference_seed", t, lo=-1),
                "bootstrap": lambda t: parse_int("bootstrap", t, lo=10, hi=100000),
                "gif_cells": parse_cells, "out_dir": parse_out_dir, "data_dir": parse_data_dir}
        return cls(**{k: conv[k](v) for k, v in raw.items() if v is not None})


def parse_cells(text) -> str:
    """'auto', 'none', or 'lambda:C' pairs separated by commas (e.g. 0.001:9,0.0:10)."""
    text = str(text).strip()
    if text in ("auto", "none"):
        return text
    for item in _items("gif_cells", text):
        lam, _, c = item.partition(":")
        parse_float("gif_cells", lam, whole=text)
        parse_int("gif_cells", c, lo=2, hi=10, whole=text)
    return text


def parse_out_dir(text) -> str:
    text = str(text)
    if not text.strip() or "\0" in text:
        raise ConfigError("out_dir", text, "must be a folder path")
    if os.path.exists(text) and not os.path.isdir(text):
        raise ConfigError("out_dir", text, "exists and is not a folder")
    return text
