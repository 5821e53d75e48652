"""What the sweep tests share: a tiny grid's config on isolated stores, and readers of the
study's trials and the experiment's training runs."""
import optuna

from underspec.spec.config import SweepConfig

GRID = dict(seeds=(0, 1), lambdas=(0.0, 0.01), classes=(2, 3), epochs=1, probe_size=20, workers=1,
            analyze=False)


def sweep_setup(tracking, tiny_root, tmp_path) -> tuple:
    """(MLflow client, experiment id, the tiny grid's SweepConfig named `t`) on tmp_path's stores."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    return tracking, exp, SweepConfig(name="t", storage=storage, data_dir=str(tiny_root), **GRID)


def trials(cfg, name=None):
    return optuna.load_study(study_name=name or cfg.name, storage=cfg.storage).get_trials()


def train_runs(client, exp):
    return client.search_runs([exp], "tags.`underspec.role` = 'train'")
