"""Ctrl-C or SIGTERM while an entry point is still importing torch and MLflow (a few seconds):
one line and exit 130 instead of a traceback. Nothing has been created at that point."""
from __future__ import annotations

import sys
from contextlib import contextmanager

from underspec.base import interrupts  # light: only the signal module


@contextmanager
def starting(prog: str):
    interrupts.terminate_like_ctrl_c()
    try:
        yield
    except KeyboardInterrupt:
        print(f"{prog}: interrupted while starting; nothing was created", file=sys.stderr)
        sys.exit(130)
