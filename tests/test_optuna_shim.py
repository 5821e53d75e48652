"""Each call of scheduling/optuna_shim.py against the real pinned Optuna on a real SQLite storage:
a failure names the call whose behaviour changed (re-verify the shim before moving the pin)."""
import optuna
import pytest
from optuna.samplers import GridSampler
from optuna.trial import TrialState

from underspec.scheduling import optuna_shim as shim

SPACE = {"seed": [0, 1, 2], "lambda": [0.0, 0.01], "classes": [2, 3]}


@pytest.fixture()
def storage(tmp_path):
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")


def grid_study(storage, name="shim"):
    return optuna.create_study(study_name=name, storage=storage, sampler=GridSampler(SPACE, seed=0),
                               load_if_exists=True)


def frozen(study, number):
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def test_the_installed_optuna_is_the_version_the_shim_was_verified_against():
    assert optuna.__version__ == shim.VERIFIED_WITH, (
        f"Optuna is {optuna.__version__}, the shim was verified against {shim.VERIFIED_WITH}: re-verify "
        "underspec/scheduling/optuna_shim.py against this version (run this file), then set VERIFIED_WITH")


def test_fixed_params_reads_an_enqueued_trials_params(storage):
    study = grid_study(storage)
    study.enqueue_trial({"seed": 1, "lambda": 0.01, "classes": 3})
    queued = study.ask()
    plain = study.ask()
    got = shim.fixed_params(frozen(study, queued.number))
    assert got == {"seed": 1, "lambda": 0.01, "classes": 3}, \
        f"fixed_params: trial.system_attrs['fixed_params'] of an enqueued trial changed: {got!r}"
    assert shim.fixed_params(frozen(study, plain.number)) is None, \
        "fixed_params: a trial that was not enqueued now has system_attrs['fixed_params']"


def test_grid_params_gives_a_trials_point_before_any_suggest_call(storage):
    """A trial killed between its suggest calls: its point comes from its grid id alone, read with
    another worker's sampler (same space, same seed), and agrees with what it would suggest."""
    study = grid_study(storage)
    trials = [study.ask() for _ in range(4)]
    other = GridSampler(SPACE, seed=0)  # another worker's sampler
    for t in trials:
        got = shim.grid_params(other, frozen(study, t.number))
        assert got is not None and set(got) == set(SPACE), \
            f"grid_params: system_attrs 'grid_id' / 'search_space' or sampler._all_grids changed: {got!r}"
        suggested = {k: t.suggest_categorical(k, v) for k, v in SPACE.items()}
        assert got == suggested, f"grid_params: the grid id's values {got} are not the suggested {suggested}"
    points = [tuple(shim.grid_params(other, frozen(study, t.number)).values()) for t in trials]
    assert len(set(points)) == 4, f"grid_params: four fresh trials did not get four grid points: {points}"


def test_grid_params_is_none_for_a_trial_without_a_grid_id(storage):
    study = grid_study(storage)
    study.enqueue_trial({"seed": 0, "lambda": 0.0, "classes": 2})
    t = study.ask()
    assert shim.grid_params(study.sampler, frozen(study, t.number)) is None, \
        "grid_params: an enqueued trial now has a GridSampler 'grid_id' system attr"


def test_fail_trial_fails_a_running_trial_and_refuses_a_finished_one(storage):
    study = grid_study(storage)
    running, done = study.ask(), study.ask()
    study.tell(done, 0.5)
    shim.fail_trial(storage, frozen(study, running.number))
    assert frozen(study, running.number).state == TrialState.FAIL, \
        "fail_trial: storage.set_trial_state_values(trial._trial_id, FAIL) no longer fails the trial"
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        shim.fail_trial(storage, frozen(study, done.number))
    assert frozen(study, done.number).state == TrialState.COMPLETE, \
        "fail_trial: set_trial_state_values changed a finished trial"


def test_stored_state_reads_the_state_the_storage_holds(storage):
    study = grid_study(storage)
    a, b, c = study.ask(), study.ask(), study.ask()
    study.tell(a, 0.25)
    study.tell(b, state=TrialState.FAIL)
    again = grid_study(storage)  # a fresh handle, as a resuming worker has
    got = {n: shim.stored_state(again, n) for n in (a.number, b.number, c.number)}
    assert got == {a.number: TrialState.COMPLETE, b.number: TrialState.FAIL, c.number: TrialState.RUNNING}, \
        f"stored_state: study._storage / _study_id / get_trial_id_from_study_id_trial_number changed: {got}"
