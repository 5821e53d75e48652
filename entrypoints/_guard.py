"""Ctrl-C or SIGTERM while an entry point is still importing torch and MLflow (a few seconds):
one line and exit 130 instead of a traceback. Nothing has been created at that point."""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager


def _raise(signum, frame) -> None:
    raise KeyboardInterrupt


@contextmanager
def starting(prog: str):
    old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    except KeyboardInterrupt:
        print(f"{prog}: interrupted while starting; nothing was created", file=sys.stderr)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, old)
