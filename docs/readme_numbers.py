"""The README's result numbers, printed from the committed reports (nothing typed in).

Usage: python docs/readme_numbers.py [--reports reports] [--readme README.md] [--write | --check]
Without an option it prints every block. With --write it rewrites the generated blocks of
README.md in place; with --check it exits 1, naming the first block whose text differs from what
this script prints now (with the diff), or a block the README lacks or holds twice.

A block sits in README.md between two HTML comments, which markdown does not render:
    <!-- generated: NAME (python docs/readme_numbers.py --write) -->
    (blank line, the block, blank line)
    <!-- end generated: NAME -->
Each block's text is built by one function below from reports/paper/metrics.csv and trends.csv,
reports/sources/metrics.csv and reports/width/h<H>-lr*-b*/metrics.csv; two figures that the
analysis writes only to reports/paper/report.md (the share of resamples in which each lambda has
the highest PE, and the PE-barrier Spearman correlation) are read from that file.

Exempt (typed in the README, not generated), because no analysis output holds them or they are
settings rather than results:
- timings (minutes of training, seconds per run): they depend on the machine and on what else ran
  beside the study, and live in BENCHMARKS.md, not in any metrics.csv;
- run counts, seed counts, grid settings (378 runs, 7 seeds, the lambdas, class counts, widths,
  epochs, 11 alphas, 5,000 images): they are the study's configuration (MLproject and the
  Makefile), fixed before any run, not measured;
- version numbers (the data format version, pinned library versions): configuration, not results;
- constants of a definition (PE's chance 1/16 or 1/H, the "0.056" of the tie rule's wording inside
  a verdict): they follow from the settings.
"""
from __future__ import annotations

import argparse
import csv
import difflib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parent.parent
CLASSES = ("jitter", "order", "init")
MARK = "<!-- generated: {name} (python docs/readme_numbers.py --write) -->"
END = "<!-- end generated: {name} -->"
BLOCK_RE = re.compile(r"<!-- generated: (?P<name>[a-z0-9-]+) \(python docs/readme_numbers\.py --write\) -->\n"
                      r"(?P<body>.*?)\n<!-- end generated: (?P=name) -->", re.S)


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

    def means(self, target: str, metric: str, mode: str, where=lambda lam, C: True) -> list[float]:
        """Means of the rows of (target, metric, mode) over the cells where where(lam, C) holds."""
        return [r["mean"] for (lam, C, t, m, mo), r in sorted(self.rows.items())
                if (t, m, mo) == (target, metric, mode) and where(lam, C) and r["mean"] == r["mean"]]


def ci(r, f=lambda v: v, d: int = 3) -> str:
    """'mean [low, high]' of one row after f, d decimals; 'n/a' for a missing or nan row."""
    if r is None or r["mean"] != r["mean"]:
        return "n/a"
    lo, hi = sorted((f(r["ci_low"]), f(r["ci_high"])))
    return f"{f(r['mean']):.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"


def lam_str(lam: float) -> str:
    return repr(lam)


# ---- the blocks -------------------------------------------------------------------------------

def sources_table(rep: Path) -> str:
    """Each class's mean as a share of the init+order mean, per cell, for three measures."""
    rows = Metrics.load(rep / "sources" / "metrics.csv")
    out = ["| lambda | C | what | " + " | ".join(f"{c} / init+order" for c in CLASSES) + " | init+order |",
           "|---|---|---|" + "---|" * (len(CLASSES) + 1)]
    for lam, C in rows.cells("pairs_"):
        for target, metric, label, f in (("function", "disagreement", "disagreement", lambda v: v),
                                         ("function", "cka", "1 - CKA", lambda v: 1 - v),
                                         ("params", "pe", "1 - PE", lambda v: 1 - v)):
            base = rows.get(lam, C, target, metric, "pairs_init+order")
            if base is None or base["mean"] != base["mean"] or f(base["mean"]) == 0:
                continue
            shares = [rows.get(lam, C, target, metric, f"pairs_{c}") for c in CLASSES]
            cols = [f"{f(s['mean']) / f(base['mean']):.2f}" if s else "n/a" for s in shares]
            out.append(f"| {lam!r} | {C} | {label} | " + " | ".join(cols) + f" | {ci(base, f)} |")
    return "\n".join(out)


def width_panels(rep: Path) -> list[tuple[int, Metrics]]:
    """(H, metrics) of each width's report, narrowest first."""
    paths = rep.glob("width/h*-lr*-b*/metrics.csv")
    return sorted(((int(p.parent.name[1:].split("-")[0]), Metrics.load(p)) for p in paths), key=lambda t: t[0])


def width_table(rep: Path) -> str:
    """Per width: accuracy, PE raw and normalised, the rotation null, disagreement, barrier."""
    out = ["| lambda | H | test acc | PE [95% CI] | (PE - 1/H)/(1 - 1/H) | rotation null PE | PE - null | "
           "disagreement | loss barrier (weight matching) |", "|---|---|---|---|---|---|---|---|---|"]
    for lam in (0.0, 0.001):
        for H, rows in width_panels(rep):
            C = next(iter(rows.rows.values()))["classes"]
            norm = (lambda v, h=H: (v - 1 / h) / (1 - 1 / h))
            acc = rows.get(lam, C, "function", "test_acc", "seeds")
            pe = rows.get(lam, C, "params", "pe", "all_pairs")
            out.append(f"| {lam!r} | {H} | {acc['mean']:.4f} | {ci(pe)} | {ci(pe, norm)} | "
                       f"{ci(rows.get(lam, C, 'params', 'pe', 'chance_rotation'))} | "
                       f"{ci(rows.get(lam, C, 'params', 'pe', 'minus_rotation'))} | "
                       f"{ci(rows.get(lam, C, 'function', 'disagreement', 'all_pairs'))} | "
                       f"{ci(rows.get(lam, C, 'barrier', 'loss_barrier.weight', 'all_pairs'))} |")
    return "\n".join(out)


MATCHINGS = (("identity", "identity"), ("paper", "paper (W1 only)"), ("weight", "weight"),
             ("activation", "activation"), ("weight+repair", "weight + REPAIR"))


def barrier_table(rep: Path) -> str:
    """Loss and error barrier per matching, mean and range over the paper grid's cells."""
    m = Metrics.load(rep / "paper" / "metrics.csv")
    n = len(m.means("barrier", "loss_barrier.identity", "all_pairs"))
    out = [f"| matching | loss barrier, mean over the {n} cells | range over cells | error barrier, mean |",
           "|---|---|---|---|"]
    for key, label in MATCHINGS:
        loss = m.means("barrier", f"loss_barrier.{key}", "all_pairs")
        err = m.means("barrier", f"error_barrier.{key}", "all_pairs")
        out.append(f"| {label} | {mean(loss):.3f} | {min(loss):.3f} to {max(loss):.3f} | {mean(err):.3f} |")
    same = m.means("barrier", "loss_barrier.same_run", "all_pairs")
    every = "in every cell" if max(same) < 0.0005 else f"to {max(same):.3f}"
    out.append(f"| yardstick: one run's epochs 49 and 50 | {mean(same):.3f} {every} | | |")
    return "\n".join(out)


BLOCKS: dict[str, Callable[[Path], str]] = {
    "sources-table": sources_table,
    "width-table": width_table,
    "barrier-table": barrier_table,
}


# ---- the mechanism ----------------------------------------------------------------------------

def render(reports: Path) -> dict[str, str]:
    """Every block's text, by name, from the reports under `reports`."""
    return {name: fn(reports) for name, fn in BLOCKS.items()}


def wrap(name: str, body: str) -> str:
    """The block as it stands in README.md, markers included."""
    return f"{MARK.format(name=name)}\n\n{body}\n\n{END.format(name=name)}"


def found(text: str) -> dict[str, list[str]]:
    """The bodies of every generated block in text, by name (a name twice: two bodies)."""
    out: dict[str, list[str]] = {}
    for m in BLOCK_RE.finditer(text):
        out.setdefault(m["name"], []).append(m["body"])
    return out


def write(text: str, blocks: dict[str, str]) -> str:
    """text with each generated block's body replaced by the rendered one."""
    return BLOCK_RE.sub(lambda m: wrap(m["name"], blocks[m["name"]]) if m["name"] in blocks else m[0], text)


def check(readme: Path, reports: Path) -> str | None:
    """None when every block of readme equals, byte for byte, what render prints; else what differs."""
    text, blocks = readme.read_text(), render(reports)
    have = found(text)
    for name in have:
        if name not in blocks:
            return f"{readme}: block {name!r} is not one this script knows"
    for name, body in blocks.items():
        bodies = have.get(name, [])
        if len(bodies) != 1:
            return f"{readme}: block {name!r} appears {len(bodies)} times (expected once)"
        want = f"\n{body}\n"
        if bodies[0] != want:
            diff = difflib.unified_diff(bodies[0].splitlines(), want.splitlines(), "README.md", "rendered",
                                        lineterm="")
            return f"{readme}: block {name!r} is stale (run python docs/readme_numbers.py --write)\n" + "\n".join(diff)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", default=str(REPO / "reports"))
    ap.add_argument("--readme", default=str(REPO / "README.md"))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="rewrite the generated blocks of the README in place")
    g.add_argument("--check", action="store_true", help="exit 1 if a block differs from what is printed now")
    args = ap.parse_args(argv)
    reports, readme = Path(args.reports), Path(args.readme)
    if args.check:
        problem = check(readme, reports)
        print(problem or f"{readme}: every generated block is current", file=sys.stderr if problem else sys.stdout)
        return 1 if problem else 0
    if args.write:
        readme.write_text(write(readme.read_text(), render(reports)))
        return 0
    for name, body in render(reports).items():
        print(wrap(name, body) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
