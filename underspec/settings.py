"""A run's settings, defined once: the grid axes (what varies between the runs of one batch or
sweep) and the settings its runs share. Everything else derives from here: the config hash, the
run params and run name, a sweep's stored grid and Optuna search space, the engine's settings and
the step configs' fields (see config). No torch, MLflow or Optuna.

Adding a grid axis means one `Axis` entry, one `RunSpec` field, and the engine's support for it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields

DATASET = "mnist"
# What a run's artifacts mean. 2: the authors' minibatch order, in which the validation loader's
# iterator draws from the training loader's generator each epoch; 1: a training loader alone
# (the same first epoch, other orders from epoch 2 on). The config hash, each run's
# `underspec.format_version` tag and each sweep's stored grid carry it: versions never mix.
FORMAT_VERSION = 2


@dataclass(frozen=True, order=True)
class RunSpec:
    """One grid point: the settings that vary between the runs of one batch or sweep."""

    seed: int
    lam: float
    classes: int


@dataclass(frozen=True)
class Axis:
    """A grid axis: its list option (`seeds`), its RunSpec field (`seed`), the key of the run's
    param, hash entry and Optuna parameter (`seed`), the letter that starts its part of a run
    name (`s`), and its type."""

    option: str
    field: str
    key: str
    letter: str
    type: type


AXES = (Axis("seeds", "seed", "seed", "s", int), Axis("lambdas", "lam", "lambda", "l", float),
        Axis("classes", "classes", "classes", "c", int))


@dataclass(frozen=True)
class RunSettings:
    """What every run of one batch or sweep shares; each is in the config hash and a run param."""

    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.01
    hidden: int = 16
    probe_size: int = 1000


def shared_of(obj) -> RunSettings:
    """The shared settings of any object that carries them (a step config, engine settings)."""
    return RunSettings(**{f.name: getattr(obj, f.name) for f in fields(RunSettings)})


def _plain(f, value):
    """A shared setting's value as the hash and the grid spell it (a float field as float)."""
    return float(value) if f.type in ("float", float) else value


def point_doc(spec: RunSpec) -> dict:
    """{key: value} of a grid point's axes."""
    return {a.key: a.type(getattr(spec, a.field)) for a in AXES}


def spec_of(doc: dict) -> RunSpec:
    """The grid point of a run's params or a trial's params (values as strings or numbers)."""
    return RunSpec(**{a.field: a.type(doc[a.key]) for a in AXES})


def hash_doc(spec: RunSpec, s) -> dict:
    """What determines a run's result, as the config hash reads it (no thread count, no device)."""
    shared = {f.name: _plain(f, getattr(s, f.name)) for f in fields(RunSettings)}
    return {**point_doc(spec), **shared, "dataset": DATASET, "format_version": FORMAT_VERSION}


def config_hash(spec: RunSpec, s) -> str:
    """sha256 of the canonical JSON of hash_doc (floats as repr)."""
    doc = json.dumps(hash_doc(spec, s), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def _text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def run_params(spec: RunSpec, s, threads: int) -> dict[str, str]:
    """A run's MLflow params: hash_doc as text (floats as repr) without the format version (a
    tag), with the thread count the run was trained at."""
    doc = {k: _text(v) for k, v in hash_doc(spec, s).items() if k != "format_version"}
    return {**doc, "threads": str(threads)}


def point_text(spec: RunSpec) -> dict[str, str]:
    """{key: value as text} of a grid point's axes (floats as repr), as params and names spell them."""
    return {k: _text(v) for k, v in point_doc(spec).items()}


def run_name(spec: RunSpec) -> str:
    """`s{seed}-l{lambda}-c{classes}`: each axis' letter and value."""
    return "-".join(f"{a.letter}{v}" for a, v in zip(AXES, point_text(spec).values(), strict=True))


def grid_doc(axes: dict[str, tuple], s) -> dict:
    """A sweep's normalised grid as its study stores it: each axis' values sorted, the shared
    settings, the data set and the format version; spelled the same however it was typed."""
    doc = {a.option: sorted(a.type(v) for v in axes[a.option]) for a in AXES}
    return {**doc, **{f.name: _plain(f, getattr(s, f.name)) for f in fields(RunSettings)},
            "dataset": DATASET, "format_version": FORMAT_VERSION}


def grid_points(grid: dict) -> list[RunSpec]:
    """Every point of a grid (grid_doc's axes), in a fixed order."""
    points = [{}]
    for a in AXES:
        points = [{**p, a.field: v} for p in points for v in grid[a.option]]
    return sorted(RunSpec(**p) for p in points)


def search_space(grid: dict) -> dict[str, list]:
    """The Optuna GridSampler's space of a grid: {key: values}."""
    return {a.key: list(grid[a.option]) for a in AXES}
