"""Progress of long work (training, a sweep, the analysis, the barriers), on a terminal or in a log.

On a TTY: a tqdm bar over work units (model-epochs, cells, pairs) with its ETA, and the points
done / total beside it. Without one (`make sweep > log`, CI, a scheduler): one plain line every
`every` points or `interval_s` seconds, whichever comes first, with the same facts, and a last
line at the end. No MLflow, no torch.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from tqdm import tqdm


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


@dataclass(frozen=True)
class Tally:
    """A count of work: `total` of it, measured in `name`s, `done` of them already."""

    total: int
    name: str
    done: int = 0


@dataclass(frozen=True)
class Output:
    """Where progress goes (`stream`, default stderr; `tty=None` asks the stream) and, without a
    TTY, how often a line is printed: every `every` points or `interval_s` seconds of `clock`."""

    stream: TextIO | None = None
    tty: bool | None = None
    every: int = 10
    interval_s: float = 60.0
    clock: Callable[[], float] = time.monotonic


class Progress:
    """Counts `units` (what the work is measured in: model-epochs, pairs) and `points` (what the
    user asked for: runs, grid points, cells; none when not given). Points may start done;
    units start at 0 (work done before is left out of units.total: it would skew the rate)."""

    def __init__(self, desc: str, units: Tally, points: Tally | None = None, out: Output = Output()):
        if units.done:
            raise ValueError(f"units start at 0, got units.done={units.done}: leave them out of the total")
        points = points or Tally(0, "points")
        self.desc, self.units, self.unit = desc, units.total, units.name
        self.points, self.point = points.total, points.name
        self.stream = out.stream or sys.stderr
        self.tty = self.stream.isatty() if out.tty is None else out.tty
        self.every, self.interval_s, self.clock = out.every, out.interval_s, out.clock
        self.units_done, self.points_done = 0, points.done
        self.start = self.last_time = self.clock()
        self.last_points = points.done
        self.said: tuple[int, int] | None = None  # (points, units) at the last line printed
        self.bar = tqdm(total=self.units, desc=desc, unit=self.unit, file=self.stream, dynamic_ncols=True,
                        smoothing=0.1) if self.tty else None
        if self.bar is not None and self.points:
            self.bar.set_postfix_str(self._points_text(), refresh=False)

    def _points_text(self) -> str:
        return f"{self.points_done}/{self.points} {self.point}"

    def eta(self) -> float | None:
        """Seconds left at the mean rate so far; None before the first unit."""
        if not self.units_done:
            return None
        rate = (self.clock() - self.start) / self.units_done
        return rate * max(self.units - self.units_done, 0)

    def line(self) -> str:
        """The facts of a log line: points, units, elapsed, ETA."""
        eta = self.eta()
        parts = [self.desc + ":"]
        if self.points:
            parts.append(self._points_text() + ",")
        parts.append(f"{self.units_done}/{self.units} {self.unit}s,")
        parts.append(f"elapsed {_clock(self.clock() - self.start)}, ETA {'?' if eta is None else _clock(eta)}")
        return " ".join(parts)

    def update(self, units: int = 0, points: int = 0) -> None:
        self.units_done += units
        self.points_done += points
        if self.bar is not None:
            if points and self.points:
                self.bar.set_postfix_str(self._points_text(), refresh=False)
            self.bar.update(units)
            return
        now = self.clock()
        if self.points_done - self.last_points >= self.every or now - self.last_time >= self.interval_s:
            self._say(now)

    def _say(self, now: float) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.last_time, self.last_points = now, self.points_done
        self.said = (self.points_done, self.units_done)

    def skip(self, units: int, points: int = 0) -> None:
        """Work found done elsewhere (a point already in the store): off the total, not the rate."""
        self.units = max(self.units - units, self.units_done)
        if self.bar is not None:
            self.bar.total = self.units
        self.update(0, points)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.units_done and self.said != (self.points_done, self.units_done):
            self._say(self.clock())  # the last line: where the work ended

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
