"""Each call of tracking/mlflow_shim.py against the real pinned MLflow on a real SQLite store: a
failure names the call whose behaviour changed (re-verify the shim before moving the pin)."""
import sqlite3

import mlflow

from underspec.tracking import mlflow_shim as shim


def test_the_installed_mlflow_is_the_version_the_shim_was_verified_against():
    assert mlflow.__version__ == shim.VERIFIED_WITH, (
        f"MLflow is {mlflow.__version__}, the shim was verified against {shim.VERIFIED_WITH}: re-verify "
        "underspec/tracking/mlflow_shim.py against this version (run this file), then set VERIFIED_WITH")


def tables(db) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_build_store_creates_the_sqlite_schema_and_is_idempotent(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    shim.build_store(uri)
    assert db.is_file(), "build_store: MlflowClient(uri)._tracking_client.store no longer creates the SQLite store"
    made = tables(db)
    assert {"experiments", "runs", "tags", "params", "metrics", "alembic_version"} <= made, \
        f"build_store: MlflowClient(uri)._tracking_client.store no longer creates the schema: {sorted(made)}"
    with sqlite3.connect(db) as conn:
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    shim.build_store(uri)  # a second worker: the schema is there, nothing changes
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (version,), \
            "build_store: a second MlflowClient(uri)._tracking_client.store migrated the schema again"
    assert tables(db) == made, "build_store: a second call changed the schema"
    client = mlflow.tracking.MlflowClient(uri)
    exp = client.create_experiment("shim")
    assert client.get_experiment(exp).name == "shim", "build_store: the store it built is not usable"
