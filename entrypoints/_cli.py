"""Shared plumbing of the thin CLIs: one line for bad input, exit 2, nothing created."""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from underspec import tracking
from underspec.base import interrupts
from underspec.spec.config import ConfigError, field_defaults
from underspec.spec.settings import as_text
from underspec.training.data import DataError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_FAILED = 1


def add_fields(parser: argparse.ArgumentParser, cls, helps: dict[str, str]) -> None:
    """One --option per config field, default shown as MLproject spells it; values stay strings
    so that validation (and its one-line messages) happens in one place, the config class."""
    for name, default in field_defaults(cls).items():
        shown = as_text(default) if isinstance(default, tuple) else default
        parser.add_argument(f"--{name}", default=None, metavar=name.upper(),
                            help=f"{helps.get(name, '')} (default: {shown!r})")


def make_parser(prog: str, description: str, cls, helps: dict[str, str]) -> argparse.ArgumentParser:
    """The CLI of one step: one option per field of its config class."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    add_fields(p, cls, helps)
    return p


def finish(status: int) -> NoReturn:
    """Exit with the step's status; a Ctrl-C or SIGTERM from here on cannot change it
    (interrupts.hold_to_exit)."""
    interrupts.hold_to_exit()
    sys.exit(status)


def main(parser: argparse.ArgumentParser, build, run) -> int:
    interrupts.terminate_like_ctrl_c()
    args = vars(parser.parse_args())
    try:
        cfg = build(**args)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        status = run(cfg)
    except (ConfigError, DataError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; unfinished runs were marked KILLED", file=sys.stderr)
        return EXIT_INTERRUPTED
    except tracking.TRACKING_ERRORS as exc:
        print(f"{parser.prog}: error: {tracking.failure_line(exc)}; runs in flight end FAILED "
              "(now, or when a sweep resumes)", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # disk full, permissions: the runs in flight were ended FAILED
        print(f"{parser.prog}: error: {tracking.redact(exc)}", file=sys.stderr)
        return EXIT_FAILED
    # A step may return its exit status (analyze does: 1 when an artifact was unreadable).
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
