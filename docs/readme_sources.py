"""The README's "Where does the spread come from?" numbers, printed from reports/sources/
(metrics.csv: each class of pairs and its share of the init+order pairs, the share's interval its
own; metrics_over_epochs.csv: the jitter pairs' weight distance). docs/readme_numbers.py registers
the blocks; the same rules hold (nothing typed in; a claim of the prose is a `premise`)."""
from __future__ import annotations

import csv
import functools
from pathlib import Path

from readme_common import Metrics, ci, load, premise

CLASSES = ("jitter", "order", "init")
SHARES = (("function", "disagreement", "disagreement"), ("function", "1-cka", "1 - CKA"),
          ("params", "1-pe", "1 - PE"))
BASES = {"disagreement": ("function", "disagreement", lambda v: v), "1-cka": ("function", "cka", lambda v: 1 - v),
         "1-pe": ("params", "pe", lambda v: 1 - v)}


def sources(rep: Path) -> Metrics:
    return load(rep / "sources" / "metrics.csv")


@functools.cache
def distances(rep: Path) -> dict[tuple, float]:
    """{(lambda, C, kind, epoch): relative W1 distance} of metrics_over_epochs.csv."""
    out = {}
    for r in csv.DictReader((rep / "sources" / "metrics_over_epochs.csv").open()):
        if r["metric"].startswith("w1_distance."):
            key = (float(r["lambda"]), int(r["classes"]), r["metric"].split(".", 1)[1], int(r["epoch"]))
            out[key] = float(r["mean"])
    return out


def share(m: Metrics, cell, name: str, kind: str) -> dict | None:
    """The row of a class's share of init+order (nan rows: None)."""
    r = m.get(*cell, BASES[name][0], f"share.{name}", f"pairs_{kind}")
    return r if r is not None and r["mean"] == r["mean"] else None


def pct(r: dict) -> str:
    """A share row as 'mean% [low%, high%]'."""
    return f"{100 * r['mean']:.0f}% [{100 * r['ci_low']:.0f}, {100 * r['ci_high']:.0f}]"


def sources_table(rep: Path) -> str:
    """Each class's share of the init+order mean, with the ratio's own interval, per cell."""
    m = sources(rep)
    out = ["| lambda | C | what | " + " | ".join(f"{c} / init+order" for c in CLASSES) + " | init+order |",
           "|---|---|---|" + "---|" * (len(CLASSES) + 1)]
    for cell in m.cells("pairs_"):
        for _, name, label in SHARES:
            target, metric, f = BASES[name]
            base = m.get(*cell, target, metric, "pairs_init+order")
            if base is None or base["mean"] != base["mean"] or f(base["mean"]) == 0:
                continue
            cols = [ci(r, d=2) if (r := share(m, cell, name, c)) else "n/a" for c in CLASSES]
            out.append(f"| {cell[0]!r} | {cell[1]} | {label} | " + " | ".join(cols) + f" | {ci(base, f)} |")
    return "\n".join(out)


def _jitter(m: Metrics, rep: Path) -> str:
    """The one-ulp nudge: its share, its largest disagreement, its units, its distance over epochs."""
    cells = m.cells("pairs_")
    shares = {c: share(m, c, "disagreement", "jitter") for c in cells}
    hi = max(cells, key=lambda c: shares[c]["ci_high"])
    top = max(cells, key=lambda c: m.get(*c, "function", "disagreement", "pairs_jitter")["mean"])
    pes = [r["mean"] for c in cells if (r := m.get(*c, "params", "pe", "pairs_jitter")) and r["mean"] == r["mean"]]
    premise(min(pes) == 1, "that a one-ulp nudge leaves every unit matched (PE 1)")
    dis, d = m.get(*top, "function", "disagreement", "pairs_jitter"), distances(rep)
    last = max(e for (*_, e) in d)
    return (f"- **A one-ulp nudge alone** ends at {100 * min(r['mean'] for r in shares.values()):.1f}% to "
            f"{100 * max(r['mean'] for r in shares.values()):.1f}% of the init+order disagreement (every upper bound "
            f"at most {100 * shares[hi]['ci_high']:.1f}%, the largest at lambda {hi[0]!r}, C {hi[1]}); its largest "
            f"disagreement is {dis['mean']:.1e} [{dis['ci_low']:.1e}, {dis['ci_high']:.1e}] of the test predictions "
            f"(lambda {top[0]!r}, C {top[1]}), and it leaves the units matched (PE 1 wherever PE is defined). It is "
            f"not invisible, though: its relative W1 distance (no alignment) starts at {d[(0.0, 2, 'jitter', 0)]:.1e} "
            f"and, at lambda 0 and C 2, is {d[(0.0, 2, 'jitter', 5)]:.1e} at epoch 5, {d[(0.0, 2, 'jitter', 10)]:.1e} "
            f"at epoch 10 and {d[(0.0, 2, 'jitter', last)]:.1e} at epoch {last}; at lambda 0.01 and C 10 it is "
            f"{d[(0.01, 10, 'jitter', 1)]:.1e} after one epoch. Chaos is there; in {last} epochs it moves the "
            "function far less than a different seed.")


def _per_lambda(m: Metrics, C: int, name: str, kind: str) -> str:
    """'lambda 0 x% [..], 0.001 y% [..], ...' of one class's share at C classes."""
    cells = [c for c in m.cells("pairs_") if c[1] == C and share(m, c, name, kind)]
    return ", ".join(f"{pct(share(m, c, name, kind))} at lambda {c[0]!r}" for c in cells)


def cells_words(cells) -> str:
    """'lambda 0.0 and 0.001 at C 10; lambda 0.0 at C 2': cells grouped by C."""
    by_c: dict[int, list[float]] = {}
    for lam, C in cells:
        by_c.setdefault(C, []).append(lam)
    return "; ".join(f"lambda {' and '.join(repr(x) for x in lams)} at C {C}" for C, lams in by_c.items())


def erased(m: Metrics) -> list[tuple[float, int]]:
    """The cells where the order gives more of 1 - CKA than the init does (where L1 erased the init)."""
    return [c for c in m.cells("pairs_") if share(m, c, "1-cka", "order") and share(m, c, "1-cka", "init")
            and share(m, c, "1-cka", "order")["mean"] > share(m, c, "1-cka", "init")["mean"]]


def _range(m: Metrics, cells, name: str, kind: str) -> str:
    """'low% [..] to high% [..]' of a class's share over the cells (the smallest and largest mean)."""
    rs = sorted((r for c in cells if (r := share(m, c, name, kind))), key=lambda r: r["mean"])
    return f"{pct(rs[0])} to {pct(rs[-1])}"


def _width(r: dict) -> float:
    return r["ci_high"] - r["ci_low"]


def _order_pe(m: Metrics, cells) -> str:
    """PE of the order-only pairs: where it is 1 (same init, same units) and where it falls below."""
    rows = {c: r for c in cells if (r := m.get(*c, "params", "pe", "pairs_order")) and r["mean"] == r["mean"]}
    same = [c for c, r in rows.items() if r["ci_low"] >= 0.99]
    premise(bool(same), "that the order alone leaves the units matched somewhere")
    moved = "; ".join(f"lambda {c[0]!r}, C {c[1]}: {ci(rows[c])}" for c in rows if c not in same)
    return (f"PE of the order-only pairs has its interval within [0.99, 1] at {cells_words(same)} (same init, "
            "same units)" + (f", but not at {moved}: there the order alone moves some units" if moved else ""))


def _order(m: Metrics) -> str:
    cells, out = m.cells("pairs_"), erased(m)
    rest = [c for c in cells if c not in out]
    dis = {c: r for c in cells if (r := share(m, c, "disagreement", "order"))}
    wide = max(dis, key=lambda c: _width(dis[c]))
    sums = [dis[c]["mean"] + r["mean"] for c in dis if (r := share(m, c, "disagreement", "init"))]
    premise(max(sums) > 1, "that the order's and the init's shares of the disagreement can add up to more than 1")
    excepted = "; ".join(f"lambda {c[0]!r}, C {c[1]}: {pct(share(m, c, '1-cka', 'order'))}" for c in out)
    cka = {c: share(m, c, "1-cka", "order") for c in rest}
    loose = max(cka, key=lambda c: cka[c]["ci_high"])
    return (f"- **The minibatch order alone** gives, of the init+order disagreement, at C 10, "
            f"{_per_lambda(m, 10, 'disagreement', 'order')}; at C 2, {_per_lambda(m, 2, 'disagreement', 'order')} "
            f"(the widest interval, at lambda {wide[0]!r} and C {wide[1]}, spans {100 * dis[wide]['ci_low']:.0f} to "
            f"{100 * dis[wide]['ci_high']:.0f}%: at 5 x 5 seeds a share can be coarse). Of the representational "
            f"difference its share is small in point estimate (1 - CKA: {_range(m, rest, '1-cka', 'order')}), "
            f"though not tightly bounded: the largest upper bound is {100 * cka[loose]['ci_high']:.0f}% (lambda "
            f"{loose[0]!r}, C {loose[1]})" + (f"; the exception: {excepted}" if out else "")
            + f". {_order_pe(m, rest)}. The shares are not parts of a whole: the order's and the init's shares of "
            f"the disagreement sum to {min(sums):.2f} to {max(sums):.2f} (point estimates; the sum has no interval).")


def _init(m: Metrics) -> str:
    cells, out = m.cells("pairs_"), erased(m)
    rest = [c for c in cells if c not in out]
    dis = {c: (share(m, c, "disagreement", "init"), share(m, c, "disagreement", "order")) for c in rest}
    tied = [c for c, (i, o) in dis.items() if i["ci_low"] <= o["ci_high"]]
    exc = "".join(f", except at lambda {c[0]!r} with C {c[1]}, where L1 nearly erases the init: there the order "
                  f"gives {pct(share(m, c, 'disagreement', 'order'))} of the disagreement and "
                  f"{pct(share(m, c, '1-cka', 'order'))} of 1 - CKA, the init "
                  f"{pct(share(m, c, 'disagreement', 'init'))} and {pct(share(m, c, '1-cka', 'init'))}" for c in out)
    ties = "; ".join(f"lambda {c[0]!r}, C {c[1]}: init {pct(dis[c][0])}, order {pct(dis[c][1])}" for c in tied)
    return (f"- **The init alone** carries most of the representational and unit-level difference (1 - CKA: "
            f"{_range(m, rest, '1-cka', 'init')}; 1 - PE: {_range(m, rest, '1-pe', 'init')}) and "
            f"{_range(m, rest, 'disagreement', 'init')} of the disagreement{exc}."
            + (f" Where the init's and the order's shares of the disagreement overlap ({ties}), which gives more "
               "cannot be told." if tied else ""))


def _components(m: Metrics) -> str:
    comps = [r["mean"] for k, r in m.rows.items() if k[4].startswith("sources_")]
    top = max(comps)
    return (f"- Test accuracy's variance components (`sources_var_*` rows) are at most {top:.1e} (a standard "
            f"deviation of {100 * top ** 0.5:.1f} accuracy points). They come without intervals (one run per init x "
            "order, the interaction confounded with rounding noise): we report them and do not rank them.")


def sources_findings(rep: Path) -> str:
    """What the sources study says, each share with its own 95% interval (in brackets, percent)."""
    m = sources(rep)
    return "\n".join([_jitter(m, rep), _order(m), _init(m), _components(m)])
