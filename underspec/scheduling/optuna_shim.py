"""Every use of Optuna's private API, in one place: if an Optuna release moves one of these, this
file is the one to change. Verified against VERIFIED_WITH; tests/test_optuna_shim.py exercises
each call on a real SQLite storage and fails, naming the call, when its behaviour changes.

- the system attrs GridSampler and enqueue_trial leave on a trial: `fixed_params` (an enqueued
  trial's params), `grid_id` and `search_space` (a trial killed between its suggest calls has only
  its grid id);
- GridSampler's grid by id (`_all_grids`, shuffled with the sampler's seed);
- a FrozenTrial's storage id and `storage.set_trial_state_values` (to fail a dead worker's
  RUNNING trial in the storage directly);
- a trial's stored state by number (GridSampler's after_trial may raise after the state is stored).
"""
from __future__ import annotations

import optuna
from optuna.samplers import GridSampler
from optuna.trial import FrozenTrial, TrialState

VERIFIED_WITH = "5.0.0"  # the Optuna version every call below was checked against


def fixed_params(trial: FrozenTrial) -> dict | None:
    """The params an enqueued trial was created with (enqueue_trial's `fixed_params`), else None."""
    return trial.system_attrs.get("fixed_params")


def grid_params(sampler: GridSampler, trial: FrozenTrial) -> dict | None:
    """{name: value} of the grid point GridSampler assigned to `trial` (its `grid_id` system
    attr), also before any suggest call; None for a trial without a grid id."""
    gid = trial.system_attrs.get("grid_id")
    if gid is None:
        return None
    names = sorted(trial.system_attrs["search_space"])  # GridSampler orders its grid by sorted names
    return dict(zip(names, tuple(sampler._all_grids[gid]), strict=True))


def fail_trial(storage: optuna.storages.BaseStorage, trial: FrozenTrial) -> None:
    """Set a RUNNING trial's state to FAIL in the storage, whoever holds it; raises
    optuna.exceptions.UpdateFinishedTrialError when the trial has already finished."""
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def stored_state(study: optuna.Study, number: int) -> TrialState:
    """The state the storage holds for trial `number` of `study`."""
    storage = study._storage
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study._study_id, number)).state
