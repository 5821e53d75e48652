"""Every use of Optuna's private API, in one place (pinned by the tests of study.py): if an
Optuna release moves one of these, this file is the one to change.

- GridSampler's grid by id (a trial killed between its suggest calls has only its grid id);
- a FrozenTrial's storage id (to fail a dead worker's RUNNING trial in the storage directly);
- a trial's stored state by number (GridSampler's after_trial may raise after the state is stored).
"""
from __future__ import annotations

import optuna
from optuna.samplers import GridSampler
from optuna.trial import FrozenTrial, TrialState


def grid_values(sampler: GridSampler, grid_id: int) -> tuple:
    """The values of grid point `grid_id`, in the order of the sorted parameter names."""
    return tuple(sampler._all_grids[grid_id])


def trial_id(trial: FrozenTrial) -> int:
    return trial._trial_id


def stored_state(study: optuna.Study, number: int) -> TrialState:
    storage = study._storage
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study._study_id, number)).state
