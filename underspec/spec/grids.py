"""A sweep's grid, from the axes of `settings`: its normalised document (what the study stores),
its points (each in its canonical form, once), and the Optuna GridSampler's search space with the
trial params that spell each point. No torch, MLflow or Optuna."""
from __future__ import annotations

import functools
import itertools
import json
from dataclasses import replace

from underspec.spec.settings import (
    AXES,
    BRANCH_KEYS,
    BY_KEY,
    DATASET,
    FORMAT_VERSION,
    Axis,
    RunSpec,
    canonical,
    shared_items,
    spec_of,
)


def seed_pairs(axes: dict[str, tuple]) -> list[tuple[int, int]]:
    """(init, order) pairs: `seeds` alone is the diagonal (init = order); `init_seeds` with
    `order_seeds` their cross product."""
    if axes.get("init_seeds"):
        return [(i, o) for i in axes["init_seeds"] for o in axes["order_seeds"]]
    return [(s, s) for s in axes["seeds"]]


def grid_doc(axes: dict[str, tuple], s) -> dict:
    """A sweep's normalised grid as its study stores it: spelled the same however it was typed.
    The seeds as `seeds` (init = order) or `init_seeds` and `order_seeds`; `jitters` unless just
    0, the branch axes unless no branch; hidden, lr and batch_size as one value when single (as
    before they were axes)."""
    doc = {}
    if axes.get("init_seeds"):
        doc["init_seeds"], doc["order_seeds"] = sorted(axes["init_seeds"]), sorted(axes["order_seeds"])
    else:
        doc["seeds"] = sorted(axes["seeds"])
    for a in AXES:
        if a.key in ("seed", "order_seed"):
            continue
        values = sorted({a.type(v) for v in axes.get(a.option) or (a.default,)})
        if not a.was_shared and values == [a.default]:  # jitter 0, no branch: as before these axes
            continue
        doc[a.option] = values[0] if a.was_shared and len(values) == 1 else values
    return {**doc, **shared_items(s), "dataset": DATASET, "format_version": FORMAT_VERSION}


def _values(grid: dict, a: Axis) -> list:
    v = grid.get(a.option, a.default)
    return list(v) if isinstance(v, list) else [v]


def grid_points(grid: dict) -> list[RunSpec]:
    """Every point of a grid (a grid_doc) in its canonical form, once each, sorted."""
    pairs = seed_pairs({k: grid.get(k) for k in ("seeds", "init_seeds", "order_seeds")})
    points = [RunSpec(i, 0.0, 2, order_seed=o) for i, o in pairs]
    for a in AXES:
        if a.key not in ("seed", "order_seed", *BRANCH_KEYS):
            points = [replace(p, **{a.field: v}) for p in points for v in _values(grid, a)]
    ks, qs = _values(grid, BY_KEY["branch_epoch"]), _values(grid, BY_KEY["branch_order_seed"])
    branches = [(k, q) for k in ks for q in qs]
    points = [replace(p, branch=k, branch_seed=q) for p in points for k, q in branches]
    return sorted({canonical(p, grid["epochs"]) for p in points})


def search_space(grid: dict) -> dict[str, list]:
    """The Optuna GridSampler's space of a grid: the axes with more than one value, and always
    seed (or init_seed and order_seed), lambda and classes: the paper's space is unchanged."""
    space = {"seed": grid["seeds"]} if "seeds" in grid else \
        {"seed": grid["init_seeds"], "order_seed": grid["order_seeds"]}
    for a in AXES:
        if a.key not in ("seed", "order_seed") and (len(_values(grid, a)) > 1 or a.key in ("lambda", "classes")):
            space[a.key] = _values(grid, a)
    return {k: list(v) for k, v in space.items()}


def grid_constants(grid: dict) -> dict:
    """{key: value} of the axes a grid holds at one value (they are not in the search space)."""
    space = search_space(grid)
    return {a.key: _values(grid, a)[0] for a in AXES if a.key not in space and a.key != "order_seed"}


@functools.lru_cache(maxsize=4)
def trial_table(grid_text: str) -> dict[RunSpec, dict]:
    """{grid point: its Optuna trial's params} over the search space's cross product of a grid
    (as canonical JSON: built once per grid); a point several combinations spell keeps the first."""
    grid = json.loads(grid_text)
    space, table = search_space(grid), {}
    for combo in itertools.product(*space.values()):
        params = dict(zip(space, combo, strict=True))
        table.setdefault(trial_spec(params, grid), params)
    return table


def trial_params(spec: RunSpec, grid: dict) -> dict:
    """A grid point as its Optuna trial's params: the search space's keys only."""
    if grid.get("branch_epochs"):  # a canonical form (k = 0) does not spell its trial's params
        return dict(trial_table(json.dumps(grid, sort_keys=True))[spec])
    return {k: BY_KEY[k].type(getattr(spec, BY_KEY[k].field)) for k in search_space(grid)}


def trial_spec(params: dict, grid: dict) -> RunSpec | None:
    """The grid point of a trial's params (None while some of the space's keys are missing)."""
    space = search_space(grid)
    if not set(space) <= params.keys():
        return None
    return canonical(spec_of({k: params[k] for k in space}, grid_constants(grid)), grid["epochs"])
