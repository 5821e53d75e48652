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


_depth: list[int] = [0]


@contextmanager
def deferred():
    """SIGINT and SIGTERM are deferred to the next check() while the block runs (re-entrant: an
    inner block keeps a signal that arrived in the outer one)."""
    if _depth[0]:
        _depth[0] += 1
        try:
            yield
        finally:
            _depth[0] -= 1
        return
    _pending.clear()
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _depth[0] = 1
    try:
        yield
    finally:
        _depth[0] = 0
        for s, h in old.items():
            signal.signal(s, h)


def _raise(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def terminate_like_ctrl_c() -> None:
    """Outside deferred blocks, SIGTERM stops a step the way Ctrl-C does (KeyboardInterrupt, so
    the step's cleanup runs) rather than ending the process on the spot."""
    signal.signal(signal.SIGTERM, _raise)


def hold_to_exit() -> None:
    """The step is over: ignore SIGINT and SIGTERM until the process exits. The interpreter puts
    the default handlers back while it shuts down, so a signal arriving then would end the process
    with the signal's status (-15) although every record is complete; ignored (a disposition the
    shutdown keeps, for every thread), the step's own status stands. Only for a process about to
    exit (main thread): a program it started would inherit the ignoring; SIGKILL still ends it."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
