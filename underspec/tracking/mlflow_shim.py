"""Every use of MLflow's private API, in one place: if an MLflow release moves one of these, this
file is the one to change. Verified against VERIFIED_WITH; tests/test_mlflow_shim.py exercises
each call on a real SQLite store and fails, naming the call, when its behaviour changes.

- `MlflowClient._tracking_client.store`: the client builds its tracking store (for SQLite: creates
  or migrates the schema) lazily, on first use; reading this property builds it now.
"""
from __future__ import annotations

from mlflow.tracking import MlflowClient

VERIFIED_WITH = "3.17.2"  # the MLflow version every call below was checked against


def build_store(uri: str) -> None:
    """Build the tracking store of `uri` now: for an SQLite store, create or migrate its schema."""
    MlflowClient(uri)._tracking_client.store  # noqa: B018 (the property builds the store)
