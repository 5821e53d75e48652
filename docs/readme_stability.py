"""The README's "When is the basin decided?" numbers, printed from reports/stability/ (metrics.csv
and trends.csv) and, for the comparison with the order-only pairs, reports/sources/metrics.csv.
docs/readme_numbers.py registers the block; the same rules hold (nothing typed in; a claim in the
prose is a `premise` checked on the numbers)."""
from __future__ import annotations

import math
import re
from pathlib import Path

from readme_common import ci, load, premise, read_trends

THRESHOLD = 0.02  # Frankle et al. 2020's error-barrier threshold (a definition, not a result)


def _ks(m: dict) -> list[int]:
    return sorted({int(k[3].rsplit(".k", 1)[1]) for k in m if k[2] == "stability" and k[4] == "children"})


def _cells(m: dict) -> list[tuple[float, int]]:
    return sorted({(k[0], k[1]) for k in m if k[2] == "stability"})


def _get(m, cell, metric, k):
    return m[(*cell, "stability", f"{metric}.k{k}", "children")]


def _epoch(m, cell) -> str:
    e = m[(*cell, "stability", "stability_epoch", "stability_rule")]["mean"]
    return "not reached" if math.isinf(e) else f"{e:.0f}"


def stability_table(rep: Path) -> str:
    """Per cell: the stability epoch, the error barrier without alignment at the first, second and
    last branch epoch, and the prediction disagreement at the first and last."""
    m = load(rep / "stability" / "metrics.csv").rows
    ks = _ks(m)
    shown = [ks[0], ks[1], ks[-1]]
    out = ["| lambda | C | stability epoch | " + " | ".join(f"error barrier, k = {k}" for k in shown)
           + f" | disagreement, k = {ks[0]} | disagreement, k = {ks[-1]} |",
           "|---|---|---|" + "---|" * (len(shown) + 2)]
    for cell in _cells(m):
        bars = [ci(_get(m, cell, "error_barrier.identity", k), d=4) for k in shown]
        dis = [ci(_get(m, cell, "disagreement", k), d=4) for k in (ks[0], ks[-1])]
        out.append(f"| {cell[0]!r} | {cell[1]} | {_epoch(m, cell)} | " + " | ".join(bars + dis) + " |")
    return "\n".join(out)


def num(x: float) -> str:
    """Signed, four decimals; in scientific notation where four decimals would hide it."""
    return f"{x:+.1e}" if x and abs(x) < 0.0005 else f"{x:+.4f}"


def _tr(r: dict) -> str:
    return f"{num(r['estimate'])} [{num(r['ci_low'])}, {num(r['ci_high'])}], {r['verdict']}"


def _stable_line(m, cells) -> str:
    k0 = {c: _get(m, c, "error_barrier.identity", 0) for c in cells}
    stable = [c for c in cells if _epoch(m, c) == "0"]
    worst = max(cells, key=lambda c: k0[c]["ci_high"])
    premise(len(stable) == len(cells), "that every cell is stable from k = 0 on")
    return (f"- When do the children become linearly connected? From the start: the stability epoch is 0 in "
            f"{len(stable)} of {len(cells)} cells, every error barrier's upper bound within {THRESHOLD} at "
            f"every k (the largest, at k = 0: lambda {worst[0]!r}, C {worst[1]}, {ci(k0[worst], d=4)}). As Frankle "
            "et al. found for LeNet-300-100 on MNIST, the network is stable to SGD noise at initialisation, so "
            "what remains is how the barrier decays with k.")


def _decay_line(t: dict, ks) -> str:
    name = f"barrier_k{ks[-1]}_minus_k0"
    per_c = [n for n in t if n.startswith(name + "_C")]
    premise(all(t[n]["verdict"] == "tie" for n in [name, *per_c]) and t[name + "_C5"]["ci_high"] >= 0,
             "that the decay is a tie everywhere and holds 0 at C = 5")
    off0 = [n for n in [name, *per_c] if t[n]["ci_low"] > 0 or t[n]["ci_high"] < 0]
    off = (f" {len(off0)} of {1 + len(per_c)} of these intervals exclude 0 (by at most "
           f"{100 * max(abs(t[n]['estimate']) for n in off0):.2f} percentage points, far inside the threshold)."
           if off0 else "")
    return (f"- Does the barrier fall with k? Barely: k = {ks[-1]} minus k = 0, mean over the cells, {_tr(t[name])} "
            f"(the tie margin {t[name]['tie_margin']:.4f}); per C: "
            + "; ".join(f"C {n.rsplit('_C', 1)[1]} {_tr(t[n])}" for n in per_c)
            + f". At C = 5 the interval reaches {t[name + '_C5']['ci_high']:+.5f}: with three parents, a fall "
            "this small cannot be told from none." + off)


def _alignment_line(m, cells, ks) -> str:
    pairs = [(c, k) for c in cells for k in ks]
    diffs = [abs(_get(m, c, "error_barrier.weight", k)["mean"] - _get(m, c, "error_barrier.identity", k)["mean"])
             for c, k in pairs]
    pe = {lam: [_get(m, c, "pe", k)["mean"] for c in cells for k in ks if c[1] > 2 and c[0] == lam]
          for lam in sorted({c[0] for c in cells})}
    premise(max(diffs) < 0.001, "that weight matching leaves the barrier in place")
    top = max(cells, key=lambda c: c[0])[0]
    b_top = max(_get(m, c, "error_barrier.identity", k)["ci_high"] for c in cells for k in ks if c[0] == top)
    span = lambda v: f"{min(v):.2f}" if f"{min(v):.2f}" == f"{max(v):.2f}" else f"{min(v):.2f} to {max(v):.2f}"  # noqa: E731
    return (f"- Do the children permute their units? No: weight matching leaves the error barrier where it was "
            f"(equal in {sum(d == 0 for d in diffs)} of {len(diffs)} (cell, k), at most {max(diffs):.1e} apart). "
            "Their PE (C > 2; point estimates over cells and k) is "
            + ", ".join(f"{span(v)} at lambda {lam!r}" for lam, v in pe.items())
            + f" (at lambda {top!r} weight matching moves some units though the error barrier's upper bound "
            f"is at most {b_top:.5f} at every k).")


def _disagreement_line(m, cells, ks) -> str:
    first = {c: _get(m, c, "disagreement", ks[0]) for c in cells}
    last = {c: _get(m, c, "disagreement", ks[-1]) for c in cells}
    fell = [c for c in cells if last[c]["ci_high"] < first[c]["ci_low"]]
    hi = max(cells, key=lambda c: last[c]["mean"])
    premise(last[hi]["ci_low"] > 0.01 and hi not in fell, "that the largest disagreement persists")
    near = [c for c in cells if c != hi and last[c]["ci_high"] >= last[hi]["ci_low"]]
    near_words = ("; " + ", ".join(f"lambda {c[0]!r} C {c[1]}" for c in near) + " cannot be told apart from it"
                  if near else "")
    return (f"- One basin, not one function: children branched as late as k = {ks[-1]} still disagree on test images, "
            f"the largest point estimate at lambda {hi[0]!r}, C {hi[1]}: {ci(first[hi], d=4)} at k = {ks[0]}, "
            f"{ci(last[hi], d=4)} at k = {ks[-1]}{near_words}. The disagreement falls from k = {ks[0]} to {ks[-1]} "
            f"(ranges apart) in {len(fell)} of {len(cells)} cells ("
            + ", ".join(f"lambda {c[0]!r} C {c[1]}" for c in fell) + "); elsewhere the two ranges overlap (no "
            "paired test of the change was made): the order after the branch moves the predictions, not the basin.")


def _trend_line(t: dict, m, cells, ks) -> str:
    names = [n for n in t if re.match(r"barrier_k\d+_(falls_with|C10)", n)]
    ties = sum(t[n]["verdict"] == "tie" for n in names)
    lam0 = t["barrier_k0_falls_with_lambda"]
    peak = max(_get(m, c, "error_barrier.identity", k)["mean"] for c in cells for k in ks)
    premise(lam0["tie_margin"] > 2 * peak, "that the tie margin exceeds twice the largest barrier")
    return (f"- Do L1 or more classes make training commit earlier? Nothing to commit earlier than k = 0; the "
            f"barrier itself: {ties} of {len(names)} contrasts over lambda and C (at each k) are ties within "
            f"+-{lam0['tie_margin']:.4f}, which could not have come out otherwise: the margin is more than twice "
            f"the largest barrier ({peak:.4f}), so these ties say the differences are practically nil, not that "
            "the data measured them as such. "
            f"At k = 0, L1 (lambda {lam0['statement'].split('lambda ')[1].split(' ')[0]} "
            f"minus 0) {_tr(lam0)}: lower, by far less than the threshold.")


def _sources_line(m: dict, rep: Path) -> str:
    """The k = 0 children against the sources study's order-only pairs in the cells both have."""
    src = load(rep / "sources" / "metrics.csv").rows
    both = [c for c in _cells(m) if (*c, "function", "disagreement", "pairs_order") in src]
    parts = [f"lambda {c[0]!r}, C {c[1]}: {ci(_get(m, c, 'disagreement', 0), d=4)} here, "
             f"{ci(src[(*c, 'function', 'disagreement', 'pairs_order')], d=4)} there" for c in both]
    apart = [c for c in both if _get(m, c, "disagreement", 0)["ci_low"] > src[(*c, "function", "disagreement",
             "pairs_order")]["ci_high"] or _get(m, c, "disagreement", 0)["ci_high"] < src[(*c, "function",
             "disagreement", "pairs_order")]["ci_low"]]
    return ("- The order alone (k = 0) against the sources study's order-only pairs, the same design on other "
            f"seeds (5 inits x 5 orders there, 3 x 3 here): the prediction disagreement's intervals overlap in "
            f"{len(both) - len(apart)} of {len(both)} shared cells (" + "; ".join(parts) + ").")


def stability_findings(rep: Path) -> str:
    m, t = load(rep / "stability" / "metrics.csv").rows, read_trends(rep / "stability" / "trends.csv")
    cells, ks = _cells(m), _ks(m)
    return "\n".join([_stable_line(m, cells), _decay_line(t, ks), _alignment_line(m, cells, ks),
                      _disagreement_line(m, cells, ks), _trend_line(t, m, cells, ks), _sources_line(m, rep)])
