"""Ctrl-C and SIGTERM end a step cleanly: the signal only sets a flag, and `check()` raises
KeyboardInterrupt at safe points (between epochs, between runs, between claims), never in the
middle of a database write, where an exception could leave a transaction holding the store's
lock. A second signal interrupts at once, for a step that does not reach a safe point."""
from __future__ import annotations

import signal
from contextlib import contextmanager

_pending: list[int] = []


def pending() -> bool:
    return bool(_pending)


def check() -> None:
    """Raise KeyboardInterrupt if a signal arrived; call only where an exception is harmless."""
    if _pending:
        raise KeyboardInterrupt(f"signal {_pending[0]}")


def _handler(signum, frame) -> None:
    _pending.append(signum)
    if len(_pending) > 1:
        raise KeyboardInterrupt(f"signal {signum} (second)")


@contextmanager
def deferred():
    """SIGINT and SIGTERM are deferred to the next check() while the block runs."""
    _pending.clear()
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
