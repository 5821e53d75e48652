"""What the README's generated blocks share: a metrics.csv and a trends.csv read once, a row as
'mean [low, high]', and the `premise` that stops a block whose prose the numbers no longer bear out.
Used by docs/readme_numbers.py and the section scripts it registers (readme_sources, readme_stability)."""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Metrics:
    """One metrics.csv: rows keyed by (lambda, classes, target, metric, mode)."""
    rows: dict

    @classmethod
    def load(cls, path: Path) -> Metrics:
        rows = {}
        for r in csv.DictReader(path.open()):
            for k in ("lambda", "mean", "ci_low", "ci_high"):
                r[k] = float(r[k]) if r[k] not in ("", "nan") else float("nan")
            r["classes"] = int(r["classes"])
            rows[(r["lambda"], r["classes"], r["target"], r["metric"], r["mode"])] = r
        return cls(rows)

    def get(self, lam: float, C: int, target: str, metric: str, mode: str) -> dict | None:
        return self.rows.get((lam, C, target, metric, mode))

    def cells(self, mode_prefix: str = "") -> list[tuple[float, int]]:
        return sorted({(k[0], k[1]) for k in self.rows if k[4].startswith(mode_prefix)})

    @functools.cached_property
    def by_kind(self) -> dict[tuple[str, str, str], list[tuple[float, int, dict]]]:
        """(target, metric, mode) -> [(lambda, C, row)] in cell order: the rows sorted once."""
        out: dict = {}
        for (lam, C, t, m, mo), r in sorted(self.rows.items()):
            out.setdefault((t, m, mo), []).append((lam, C, r))
        return out

    def means(self, target: str, metric: str, mode: str, where=lambda lam, C: True) -> list[float]:
        """Means of the rows of (target, metric, mode) over the cells where where(lam, C) holds."""
        return [r["mean"] for lam, C, r in self.by_kind.get((target, metric, mode), [])
                if where(lam, C) and r["mean"] == r["mean"]]


def ci(r, f=lambda v: v, d: int = 3) -> str:
    """'mean [low, high]' of one row after f, d decimals; 'n/a' for a missing or nan row."""
    if r is None or r["mean"] != r["mean"]:
        return "n/a"
    lo, hi = sorted((f(r["ci_low"]), f(r["ci_high"])))
    return f"{f(r['mean']):.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"


@functools.cache
def load(path: Path) -> Metrics:
    """One metrics.csv, read once per process (every block reads the same few files)."""
    return Metrics.load(path)


@functools.cache
def read_trends(path: Path) -> dict[str, dict]:
    """A trends.csv's rows by contrast, estimate, interval and tie margin as floats."""
    rows = {r["contrast"]: r for r in csv.DictReader(path.open())}
    for r in rows.values():
        for k in ("estimate", "ci_low", "ci_high", "tie_margin"):
            if k in r:
                r[k] = float(r[k])
    return rows


def premise(holds: bool, what: str) -> None:
    """A claim the prose around the numbers makes: false after a re-run, the block is not printed
    (--check fails naming it) until the prose is reread and rewritten."""
    if not holds:
        raise ValueError(f"the README's prose assumes {what}, which the reports no longer show: reread it")
