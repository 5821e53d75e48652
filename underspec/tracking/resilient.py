"""A tracking client that survives a server that goes away in the middle of an answer.

MLflow's HTTP client retries a request that could not connect, or whose connection dropped
before the answer's headers (urllib3's retries). A server killed while it sends the body (seen
under load: `Connection broken: IncompleteRead(0 bytes read, 1136 more expected)` on a
runs/search) raises past those retries, and the sweep failed on a short outage it should have
waited out. Every call here is retried on such a broken answer, at most
MLFLOW_HTTP_REQUEST_MAX_RETRIES times (none while cleaning up after a failure, see fail_fast);
each new attempt goes through MLflow's own retries again, so a restart is waited out the usual
way. Retrying is safe: reads, tags, params, metrics (deduplicated by the store), terminations and
artifact uploads are idempotent, and the one call that is not, creating a run, leaves at worst an
empty twin, which the sweep deletes (queries.remove_twins).
"""
from __future__ import annotations

import functools
import os
import time
from contextlib import contextmanager

from mlflow.exceptions import MlflowException
from requests.exceptions import RequestException

BROKEN = ("Connection broken", "IncompleteRead", "ChunkedEncodingError", "Response ended prematurely")


def broken_answer(exc: BaseException) -> bool:
    """True when the server went away while answering (as opposed to a refusal or an error)."""
    return isinstance(exc, MlflowException | RequestException) and any(s in str(exc) for s in BROKEN)


def retries() -> int:
    try:
        return max(0, int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")))
    except ValueError:
        return 7


class Resilient:
    """MlflowClient's methods, each retried on a broken answer; everything else as is."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            for attempt in range(retries() + 1):
                try:
                    return attr(*args, **kwargs)
                except Exception as exc:
                    if not broken_answer(exc) or attempt >= retries():
                        raise
                    time.sleep(min(2.0**attempt, 30.0))
        return call


@contextmanager
def fail_fast():
    """MLflow's HTTP client reads its retry settings per request: none while cleaning up, so a
    gone server costs seconds, not another round of backoff (default: 7 retries, ~4 min)."""
    saved = {k: os.environ.get(k) for k in _FAST}
    os.environ.update(_FAST)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
