"""A run's settings, defined once: the grid axes (what may vary between the runs of one batch or
sweep, each a field of RunSpec) and the settings every run of a batch shares (RunSettings).
Everything else derives from here: the config hash, the run params and run name, the engine's
settings, the step configs' fields (see config), and a sweep's stored grid and Optuna search
space (see grids).
No torch, MLflow or Optuna. Adding a grid axis means one RunSpec field, one `Axis` entry, its
step-config field and parser (config), and the engine's support for it.

Compatibility: a run with one seed, jitter 0, no branch and the paper's hidden, lr and batch size
keeps the config hash, run name and stored grid it had before these axes existed: an axis at its
default stays out of the hash (but the three always in it) and the name; one value is stored as before.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace

DATASET = "mnist"
# What a run's artifacts mean. 2: the authors' minibatch order, in which the validation loader's
# iterator draws from the training loader's generator each epoch; 1: a training loader alone
# (the same first epoch, other orders from epoch 2 on). The config hash, each run's
# `underspec.format_version` tag and each sweep's stored grid carry it: versions never mix.
FORMAT_VERSION = 2
NO_BRANCH = -1  # RunSpec.branch and branch_seed of a run that does not branch


@dataclass(frozen=True, order=True)
class RunSpec:
    """One grid point. `seed` seeds the initial weights; `order_seed` the minibatch order (None:
    the same as `seed`, the paper's single seed, stored as that seed); `jitter` nudges every initial weight by one ulp
    (0: none). A branched run (`branch` = k >= 0) trains epochs 1..k as its parent (this spec
    without a branch), then epochs k+1.. on the minibatch stream of `branch_seed`, the post-branch
    order seed, from that stream's epoch k+1 on; -1 for both: no branch. Defaults are the paper's."""

    seed: int
    lam: float
    classes: int
    order_seed: int | None = None
    jitter: int = 0
    hidden: int = 16
    lr: float = 0.01
    batch_size: int = 64
    branch: int = NO_BRANCH
    branch_seed: int = NO_BRANCH

    def __post_init__(self):
        if self.order_seed is None:  # one spelling per configuration: the order seed always set
            object.__setattr__(self, "order_seed", self.seed)
        if (self.branch == NO_BRANCH) != (self.branch_seed == NO_BRANCH):
            raise ValueError(f"a branch needs both its epoch and its post-branch order seed, got "
                             f"branch={self.branch}, branch_seed={self.branch_seed}")

    branched = property(lambda self: self.branch != NO_BRANCH)

    @property
    def parent(self) -> RunSpec:
        """The run this one branches from (itself when not branched)."""
        return replace(self, branch=NO_BRANCH, branch_seed=NO_BRANCH)

    @property
    def one_seed(self) -> bool:
        """The paper's case: one seed for the init and the order."""
        return self.order_seed == self.seed


@dataclass(frozen=True)
class Axis:
    """A grid axis: its list option (`lambdas`), its RunSpec field (`lam`), the key of its param,
    hash entry and Optuna parameter (`lambda`), the letter of its part of a run name (`l`), its
    type, and whether it was a single shared setting before it became an axis (stored as a scalar
    in a grid, always in the hash and the name-free)."""

    option: str
    field: str
    key: str
    letter: str
    type: type
    was_shared: bool = False

    @property
    def default(self):
        return {f.name: f.default for f in fields(RunSpec)}[self.field]


AXES = (
    Axis("seeds", "seed", "seed", "s", int),
    Axis("order_seeds", "order_seed", "order_seed", "o", int),
    Axis("jitters", "jitter", "jitter", "j", int),
    Axis("lambdas", "lam", "lambda", "l", float),
    Axis("classes", "classes", "classes", "c", int),
    Axis("hidden", "hidden", "hidden", "h", int, was_shared=True),
    Axis("lr", "lr", "lr", "lr", float, was_shared=True),
    Axis("batch_size", "batch_size", "batch_size", "b", int, was_shared=True),
    Axis("branch_epochs", "branch", "branch_epoch", "k", int),
    Axis("branch_order_seeds", "branch_seed", "branch_order_seed", "post", int),
)
BRANCH_KEYS = ("branch_epoch", "branch_order_seed")
BY_KEY = {a.key: a for a in AXES}
LETTERS = {"init_seeds": "i", **{a.option: a.letter for a in AXES}}  # name parts, by list option


@dataclass(frozen=True)
class RunSettings:
    """What every run of one batch or sweep shares; each is in the config hash and a run param."""

    epochs: int = 50
    probe_size: int = 1000


def canonical(spec: RunSpec, epochs: int) -> RunSpec:
    """The one spelling of a configuration (each trains bitwise as it: the same stream): a child
    with its parent's order seed as the post-branch seed, or branched at the last epoch or later,
    is its parent; a child branched at 0 is the run with the post-branch seed as its order seed."""
    if not spec.branched:
        return spec
    if spec.branch >= epochs or spec.branch_seed == spec.order_seed:
        return spec.parent
    if spec.branch == 0:
        return replace(spec.parent, order_seed=spec.branch_seed)
    return spec


def shared_of(obj) -> RunSettings:
    """The shared settings of any object that carries them (a step config, engine settings)."""
    return RunSettings(**shared_items(obj))


def as_text(value) -> str:
    """A value as params, run names, MLproject defaults and messages spell it: floats as repr,
    tuples as comma lists of their items so spelled ('0,0.001'), anything else as str."""
    if isinstance(value, tuple):
        return ",".join(as_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def shared_items(s) -> dict:
    """{name: value} of the shared settings of any object that carries them."""
    return {f.name: getattr(s, f.name) for f in fields(RunSettings)}


def point_doc(spec: RunSpec) -> dict:
    """{key: value} of a grid point's axes; an axis at its default is left out unless it was a
    shared setting before (hidden, lr, batch_size): the keys the config hash always had."""
    doc = {}
    for a in AXES:
        value = getattr(spec, a.field)
        if a.key == "order_seed" and spec.one_seed:
            continue
        if value != a.default or a.was_shared or a.key == "seed":
            doc[a.key] = a.type(value)
    return doc


def spec_of(doc: dict, constants: dict | None = None) -> RunSpec:
    """The grid point of a run's params, a trial's params (values as strings or numbers) or a
    point_doc; an axis missing from doc comes from `constants` ({key: value}), else its default."""
    values = {**(constants or {}), **doc}
    kw = {a.field: a.type(values[a.key]) for a in AXES if values.get(a.key) not in (None, "")}
    return RunSpec(**kw)


def hash_doc(spec: RunSpec, s) -> dict:
    """What determines a run's result, as the config hash reads it (no thread count, no device)."""
    return {**point_doc(spec), **shared_items(s), "dataset": DATASET, "format_version": FORMAT_VERSION}


def config_hash(spec: RunSpec, s) -> str:
    """sha256 of the canonical JSON of hash_doc (floats as repr)."""
    doc = json.dumps(hash_doc(spec, s), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def run_params(spec: RunSpec, s, threads: int) -> dict[str, str]:
    """A run's MLflow params: every axis (init_seed, order_seed and jitter always; seed when the
    two seeds are equal; branch_epoch and branch_order_seed on a branched run), the shared
    settings, the data set, the thread count it trained at."""
    axes = point_text(spec)
    seeds = {"init_seed": axes.pop("seed"), "order_seed": axes.pop("order_seed")}
    if spec.one_seed:
        seeds["seed"] = seeds["init_seed"]
    if not spec.branched:  # the branch's params only on a branched run
        for k in BRANCH_KEYS:
            del axes[k]
    shared = {k: as_text(v) for k, v in shared_items(s).items()}
    return {**seeds, **axes, **shared, "dataset": DATASET, "threads": str(threads)}


def point_text(spec: RunSpec) -> dict[str, str]:
    """{key: value as text} of every axis of a grid point (floats as repr)."""
    return {a.key: as_text(a.type(getattr(spec, a.field))) for a in AXES}


def spec_of_params(params: dict) -> RunSpec:
    """A training run's grid point from its MLflow params (runs before the new axes: seed only)."""
    doc = {k: v for k, v in params.items() if k in BY_KEY}
    doc["seed"] = params.get("init_seed", params.get("seed"))
    doc["order_seed"] = params.get("order_seed")
    return spec_of(doc)


def run_name(spec: RunSpec) -> str:
    """`s{seed}-l{lambda}-c{classes}` for the paper's points; the two seeds as `i{init}-o{order}`
    when they differ; any other axis away from its default appended (`-j1`, `-h32`, `-lr0.1`)."""
    head = [f"s{spec.seed}"] if spec.one_seed else [f"i{spec.seed}", f"o{spec.order_seed}"]
    parts = head + [f"l{spec.lam!r}", f"c{spec.classes}"]
    for a in AXES:
        if a.field not in ("seed", "order_seed", "lam", "classes") and getattr(spec, a.field) != a.default:
            parts.append(f"{a.letter}{as_text(getattr(spec, a.field))}")
    return "-".join(parts)
