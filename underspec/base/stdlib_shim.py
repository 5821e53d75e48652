"""The one private attribute of the standard library that underspec reads (tests/test_shims.py
checks it on the running Python)."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing.process import BaseProcess


def pool_processes(pool: ProcessPoolExecutor) -> list[BaseProcess]:
    """The worker processes of a pool, to terminate them when a run stops early (the public API
    has no way before Python 3.14's terminate_workers). Empty once the pool has shut down."""
    return list((getattr(pool, "_processes", None) or {}).values())
