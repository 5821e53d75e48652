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
- constants of a definition (PE's chance 1/16 or 1/H, the 0.01 a barrier is compared with, the
  16 hidden units): they follow from the settings;
- the paper's own figures (the "what the paper reports" column, e.g. its highest PE 0.48): quoted
  from the paper, not measured here.
The verdict words around the numbers (agree, cannot tell, every interval holding 0) are prose,
not computed: a re-run that flips one changes a number in its block, which --check reports, and
the verdict is then reread by hand.
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

def paper(rep: Path) -> Metrics:
    return Metrics.load(rep / "paper" / "metrics.csv")


def trends(rep: Path) -> dict[str, dict]:
    """trends.csv's rows by contrast, estimate and interval as floats."""
    rows = {r["contrast"]: r for r in csv.DictReader((rep / "paper" / "trends.csv").open())}
    for r in rows.values():
        for k in ("estimate", "ci_low", "ci_high"):
            r[k] = float(r[k])
    return rows


def from_report(rep: Path, pattern: str) -> re.Match:
    """The first match of pattern in reports/paper/report.md (figures written nowhere else)."""
    found = re.search(pattern, (rep / "paper" / "report.md").read_text())
    if found is None:
        raise ValueError(f"reports/paper/report.md has no line matching {pattern!r}")
    return found


def over_lams(m: Metrics, target: str, metric: str, mode: str, C: int) -> float:
    """Mean over the grid's lambdas of one cell measure at C classes."""
    return mean(m.means(target, metric, mode, lambda lam, c: c == C))


def sig(x: float) -> str:
    """Signed, two decimals, three where two would print 0.00."""
    return f"{x:+.3f}" if abs(x) < 0.005 else f"{x:+.2f}"


def tr(t: dict, name: str, d: int = 3) -> str:
    """'+estimate, [+low, +high]' of one trend contrast."""
    r = t[name]
    return f"{r['estimate']:+.{d}f}, [{r['ci_low']:+.{d}f}, {r['ci_high']:+.{d}f}]"


def est(t: dict, names) -> str:
    return ", ".join(f"{t[n]['estimate']:+.3f}" for n in names)


def repro_trend_rows(m: Metrics, t: dict, rep: Path) -> list[str]:
    """The table's rows on PE against C and lambda (from trends.csv and the cells' PE)."""
    pe = {C: over_lams(m, "params", "pe", "all_pairs", C) for C in (3, 10)}
    rot = {C: over_lams(m, "params", "pe", "chance_rotation", C) for C in (3, 10)}
    minus = {C: over_lams(m, "params", "pe", "minus_rotation", C) for C in (3, 10)}
    noise = max(m.means("params", "pe_noise", "all_pairs"))
    noise0 = max(m.means("params", "pe_noise", "all_pairs", lambda lam, C: lam == 0))
    at5 = [f"pe_at_0.005_minus_{lam}" for lam in ("0.0", "0.001", "0.0025", "0.01")]
    at1 = [f"pe_at_0.001_minus_{lam}" for lam in ("0.0", "0.0025", "0.005", "0.01")]
    shares = from_report(rep, r"Which lambda has the highest mean PE .*?: (.*)")[1]
    shares = sorted(((float(v), float(k)) for k, v in (kv.split(": ") for kv in shares.split(", "))), reverse=True)
    shares = ", ".join(f"{lam:g} {v:.2f}" for v, lam in shares if f"{v:.2f}" != "0.00")
    return [
        f"| PE grows with the number of classes | mean PE over lambdas {pe[3]:.2f} at C=3, {pe[10]:.2f} at C=10; "
        f"slope {tr(t, 'pe_rises_with_C').replace(', [', ' per class, [')} | rotation null {rot[3]:.2f} (C=3) to "
        f"{rot[10]:.2f} (C=10): it rises too; trained minus null {minus[3]:+.3f} (C=3), {minus[10]:+.3f} (C=10) | "
        "slope in C, seed bootstrap over all cells, C >= 3 pooled | agree that PE rises with C; most of the rise is "
        "in the null too (longer W2 columns let a rotated network's units line up by chance), so only part of it is "
        "unit correspondence |",
        f"| PE rises with lambda up to a point, then falls | rise: PE over 0 < lambda < 0.05 minus lambda 0 = "
        f"{tr(t, 'pe_rises_with_lambda')}; fall: lambda 0.05 minus that = {tr(t, 'pe_falls_at_large_lambda')} | "
        f"noise floor of PE up to {noise:.2f} per cell ({noise0:g} at lambda 0) | fixed contrasts, seed bootstrap | "
        "the rise: cannot tell at 7 seeds (a tie within the noise floor); the fall at 0.05: agree |",
        f"| the peak is at 0.005 (text) | PE(0.005) minus PE at 0, 0.001, 0.0025, 0.01: {est(t, at5)}, every "
        f"interval holding 0; minus PE(0.05): {tr(t, 'pe_at_0.005_minus_0.05')} | | one contrast per other lambda | "
        "cannot tell at 7 seeds: 0.005 is indistinguishable from 0 to 0.01; only 0.05 is lower |",
        "| lambda = 0.001 gives the highest PE (text; caption: the smallest lambda, 0.001) | PE(0.001) minus PE at 0, "
        f"0.0025, 0.005, 0.01: {est(t, at1)}, every interval holding 0; minus PE(0.05): "
        f"{tr(t, 'pe_at_0.001_minus_0.05')}. Which lambda is highest over C >= 3, share of resamples (a description, "
        f"not a test): {shares} | | one contrast per other lambda | cannot tell at 7 seeds, for the same reason |",
    ]


def ci2(r) -> str:
    return f"{r['mean']:.2f}, [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def repro_cell_rows(m: Metrics) -> list[str]:
    """The table's rows on the highest cell and on APC-2."""
    pe = {c: r for c, r in ((c, m.get(*c, "params", "pe", "all_pairs")) for c in m.cells()) if r["mean"] == r["mean"]}
    top = max(pe, key=lambda c: pe[c]["mean"])
    minus = m.get(0.001, 9, "params", "pe", "minus_rotation")
    Cs = sorted({C for _, C in m.cells()})
    apc2 = [over_lams(m, "params", "apc2", "all_pairs", C) for C in Cs]
    init = [over_lams(m, "params", "apc2", "chance_init", C) for C in Cs]
    per_C = [m.means("params", "apc2", "all_pairs", lambda lam, c, C=C: c == C) for C in Cs]
    spread = max(max(v) - min(v) for v in per_C)
    ends = (Cs[0], Cs[-1])
    listed = ", ".join(f"{v:.2f}" + (f" (C={C})" if C in ends else "") for C, v in zip(Cs, apc2, strict=True))
    return [
        f"| highest PE 0.48, at lambda 0.001 with 9 classes | PE(0.001, C=9) = {ci2(pe[(0.001, 9)])}; conditional "
        f"on seed 0 (the paper's procedure): {ci2(m.get(0.001, 9, 'params', 'pe', 'reference'))}; the highest "
        f"all-pairs cell is ({top[0]!r}, C={top[1]}), {ci2(pe[top])} | rotation null at (0.001, 9): "
        f"{m.get(0.001, 9, 'params', 'pe', 'chance_rotation')['mean']:.2f}; trained minus null "
        f"{sig(minus['mean'])}, [{sig(minus['ci_low'])}, {sig(minus['ci_high'])}] | interval | agree on the value "
        "conditional on seed 0; over all pairs the cell is lower and its interval still reaches "
        f"{pe[(0.001, 9)]['ci_high']:.2f}; it exceeds the rotation null, barely |",
        f"| APC-2 falls as C grows (longer vectors) | {listed}, "
        f"mean over lambdas | untrained networks: {', '.join(f'{v:.2f}' for v in init)} | | agree; it falls almost "
        "exactly as chance does, so most of it is vector length, as the paper says |",
        f"| lambda barely moves APC-2 | at each C, APC-2 varies by at most {spread:.3f} across the six lambdas | | | "
        "agree |",
    ]


def span(vals, d: int = 2, sep: str = "-") -> str:
    return f"{min(vals):.{d}f}{sep}{max(vals):.{d}f}"


def repro_grad_rows(m: Metrics) -> list[str]:
    """The table's rows on the gradients and on PE at C = 2."""
    g0 = m.means("grads", "apc1", "all_pairs", lambda lam, C: lam == 0)
    g1 = m.means("grads", "apc1", "all_pairs", lambda lam, C: lam > 0)
    pe0 = mean(m.means("grads", "pe", "all_pairs", lambda lam, C: lam == 0 and C >= 3))
    pe1 = mean(m.means("grads", "pe", "all_pairs", lambda lam, C: lam > 0 and C >= 3))
    shuffle = mean(m.means("grads", "apc1", "chance_shuffle"))
    c1 = m.means("grads", "corr_with_init", "seeds", lambda lam, C: lam > 0)
    c0 = m.means("grads", "corr_with_init", "seeds", lambda lam, C: lam == 0)
    authors = m.means("params", "pe_authors", "all_pairs", lambda lam, C: C == 2)
    return [
        f"| for gradients, any lambda > 0 drives APC-1 and PE close to zero | cumulative-gradient APC-1: "
        f"{span(g0)} at lambda 0, {span(g1, 3)} (mean {mean(g1):.3f}) at lambda > 0; PE (C >= 3): {pe0:.2f} at "
        f"lambda 0, {pe1:.2f} at lambda > 0 | shuffled entries: APC-1 {shuffle:.3f}; PE 1/16 | | agree that they sit "
        "at chance, but read it right: at lambda > 0 the cumulative gradient is (W0 - WT)/lr, about W0/lr, and its "
        f"rows correlate {span(c1)} with the initial weights ({span(c0)} at lambda 0), so \"gradients at chance\" "
        "restates that different seeds start differently |",
        f"| PE at C = 2 (in the paper's figure) | `pe_authors` (the authors' code) = {span(authors)} | 1/16 by "
        "construction | | not a finding: every W2 |Pearson| is 1, the W2 matching is the identity, and PE counts W1 "
        "matches with p1(i) == i, whose indices are arbitrary across seeds |",
    ]


def repro_table(rep: Path) -> str:
    """The Reproduction section's table: the paper's claims against the paper grid's reports."""
    m, t = paper(rep), trends(rep)
    head = ["| what the paper reports | ours (all pairs, 95% interval) | null | test | verdict |",
            "|---|---|---|---|---|"]
    return "\n".join(head + repro_trend_rows(m, t, rep) + repro_cell_rows(m) + repro_grad_rows(m))


def exceeds(m: Metrics, target: str, metric: str, where=lambda lam, C: True) -> tuple[int, int, list[float]]:
    """(cells whose trained-minus-rotation interval lies above 0, cells measured, their means)."""
    rows = [r for (lam, C, t, me, mo), r in sorted(m.rows.items()) if (t, me, mo) == (target, metric, "minus_rotation")
            and where(lam, C) and r["mean"] == r["mean"]]
    return sum(r["ci_low"] > 0 for r in rows), len(rows), [r["mean"] for r in rows]


def rotation_paragraph(rep: Path) -> str:
    """The Reproduction section's paragraph on what the rotation null adds."""
    m = paper(rep)
    a_k, a_n, a_d = exceeds(m, "params", "apc1")
    p_k, p_n, _ = exceeds(m, "params", "pe")
    by_lam = {lam: mean(m.means("params", "pe", "minus_rotation", lambda la, C, lam=lam: la == lam and C >= 3))
              for lam in sorted({lam for lam, _ in m.cells()})}
    lo, hi = min(by_lam, key=by_lam.get), max(by_lam, key=by_lam.get)
    g_k, g_n, g_d = exceeds(m, "grads", "apc1", lambda lam, C: lam > 0)
    l0 = m.means("grads_last", "apc1", "all_pairs", lambda lam, C: lam == 0)
    l1 = m.means("grads_last", "apc1", "all_pairs", lambda lam, C: lam > 0)
    k0, n0, _ = exceeds(m, "grads_last", "apc1", lambda lam, C: lam == 0)
    k1, n1, _ = exceeds(m, "grads_last", "apc1", lambda lam, C: lam > 0)
    return (
        f"What the rotation null adds. Weight APC-1 exceeds it in {a_k} of {a_n} cells, but by little (trained\n"
        f"minus null {span(a_d)}): trained networks share a first-layer subspace far beyond untrained ones\n"
        f"(APC-1 {span(m.means('params', 'apc1', 'all_pairs'))} against "
        f"{mean(m.means('params', 'apc1', 'chance_init')):.2f}), yet most of APC-1 is that subspace, not matched "
        f"units. PE\nexceeds the rotation null in {p_k} of {p_n} cells (none at C = 2), by {by_lam[lo]:.2f} "
        f"(lambda {lo:g}) to {by_lam[hi]:.2f}\n(lambda {hi:g}) averaged over C >= 3: some units do correspond, most "
        "of the PE the paper reads as\ncorrespondence is what a rotated network also gets. For gradients at lambda > "
        f"0, trained equals\nthe null (APC-1 exceeds it in {g_k} of {g_n} cells, by {mean(g_d):.3f} on average). The "
        "gradient summed over the\nlast epoch alone (`grads_last`), which does not restate the initialisation, has "
        f"APC-1 {span(l0)} at\nlambda 0 and {span(l1)} at lambda > 0, above its rotation null in {k0} of {n0} cells "
        f"at lambda 0 and {k1} of\n{n1} at lambda > 0.")


def beyond_paragraph(rep: Path) -> str:
    """The Reproduction section's paragraph on dead units, live-unit PE and the functions."""
    m = paper(rep)
    dead = m.means("params", "near_dead_units", "seeds", lambda lam, C: lam >= 0.005 and C == 2)
    live = m.get(0.05, 10, "params", "pe_live", "all_pairs")
    dis = m.means("function", "disagreement", "all_pairs")
    return (
        "Beyond the paper (`reports/paper/report.md`): with L1, many units end near-dead "
        f"({m.get(0.001, 2, 'params', 'near_dead_units', 'seeds')['mean']:.1f} of 16 at\nlambda 0.001, C=2; "
        f"{span(dead, 0)} at lambda >= 0.005, C=2), and PE on live units only is much higher at\nlarge lambda "
        f"({ci2(live)} at 0.05, C=10, against a chance of "
        f"{m.get(0.05, 10, 'params', 'pe_live_chance', 'all_pairs')['mean']:.2f} for that many live units)\nbecause "
        "the few surviving units are forced into the same roles; the functions stay close: linear\nCKA of the probe "
        f"embeddings between seeds is {span(m.means('function', 'cka', 'all_pairs'))} and test-set predictions "
        f"disagree on\n{100 * min(dis):.1f}-{100 * max(dis):.0f}% of images, growing with lambda and C while accuracy "
        "falls.")


def width_bullets(rep: Path) -> str:
    """The width study's findings under its table."""
    w = {H: rows for H, rows in width_panels(rep)}
    Hs = sorted(w)
    C = next(iter(w[Hs[0]].rows.values()))["classes"]
    g = {(lam, H): (lambda metric, mode="all_pairs", target="params", H=H, lam=lam:
                    w[H].get(lam, C, target, metric, mode)) for lam in (0.0, 0.001) for H in Hs}
    norm = {H: (lambda v, h=H: (v - 1 / h) / (1 - 1 / h)) for H in Hs}
    n_lo, n_hi = (ci(g[(0.0, H)]("pe"), norm[H], 2) for H in (Hs[0], Hs[-1]))
    d_lo, d_hi = (ci(g[(0.0, H)]("pe", "minus_rotation"), d=2) for H in Hs[-2:])
    dis = {k: g[k]("disagreement", "all_pairs", "function")["mean"] for k in g}
    touch = g[(0.001, 32)]("disagreement", "all_pairs", "function")["ci_high"]
    bar = {H: g[(0.0, H)]("loss_barrier.weight", "all_pairs", "barrier")["mean"] for H in (Hs[0], Hs[-1])}
    return (
        f"- Raw PE falls with width ({g[(0.0, Hs[0])]('pe')['mean']:.2f} to {g[(0.0, Hs[-1])]('pe')['mean']:.2f} at "
        "lambda 0), and so do its chance 1/H and the rotation\n  null; the normalised PE falls too "
        f"({n_lo} at H {Hs[0]} to {n_hi} at H {Hs[-1]}).\n"
        "- Above the rotation null: cannot tell at H 8 and 16 (the paired intervals include 0 at both\n  lambdas); "
        "at H 32 and 64 the trained networks' units correspond better than a rotation of the\n  same span "
        f"(PE - null {d_lo} and {d_hi} at lambda 0).\n"
        f"- Wider networks disagree less ({dis[(0.0, Hs[0])]:.3f} to {dis[(0.0, Hs[-1])]:.3f} at lambda 0, "
        f"{dis[(0.001, Hs[0])]:.3f} to {dis[(0.001, Hs[-1])]:.3f} at lambda 0.001, every\n  interval apart from its "
        "neighbours' except H 16 against 32 at lambda 0.001, which touch at\n  "
        f"{touch:.3f}) and sit closer to one\n  basin after weight matching (loss barrier {bar[Hs[0]]:.2f} to "
        f"{bar[Hs[-1]]:.3f} at lambda 0; H 8 and 16 cannot be told\n  apart).")


def barrier_bullets(rep: Path) -> str:
    """The findings under the barrier table."""
    m = paper(rep)
    wr = {c: m.get(*c, "barrier", "loss_barrier.weight+repair", "all_pairs") for c in m.cells()}
    c2 = [r for (lam, C), r in wr.items() if C == 2]
    c10 = [r["mean"] for (lam, C), r in wr.items() if C == 10]
    above = sum(wr[c]["ci_low"] > m.get(*c, "barrier", "loss_barrier.same_run", "all_pairs")["ci_high"] for c in wr)
    ident = mean(m.means("barrier", "loss_barrier.identity", "all_pairs"))
    left = {k: mean(m.means("barrier", f"loss_barrier.{k}", "all_pairs")) / ident
            for k in ("paper", "activation", "weight", "weight+repair")}
    agree = m.means("barrier", "matching_agreement", "all_pairs")
    rho = from_report(rep, r"Spearman (\S+), 95% interval (\S+) to (\S+) \(seed bootstrap\)")
    return (
        "- Close to zero after the best matching? At C = 2 yes: weight + REPAIR leaves "
        f"{span([r['mean'] for r in c2], 3, ' to ')}\n  (intervals {min(r['ci_low'] for r in c2):g} to "
        f"{max(r['ci_high'] for r in c2):.3f}), and at C = 3 under 0.01 for lambda >= 0.0025. Elsewhere no: it grows\n"
        f"  with C, to {span(c10)} at C = 10 (lambda 0: {ci2(wr[(0.0, 10)])}; lambda 0.01: {ci2(wr[(0.01, 10)])}),\n"
        f"  against a yardstick of exactly 0. In {above} of {len(wr)} cells its interval lies above the yardstick's.\n"
        "  With 16 hidden units and more than two classes, seeds end in different basins even up to\n"
        "  permutation, though most of the gap is permutation.\n"
        f"- What each matching removes: the paper's matching leaves {left['paper']:.0%} of the identity barrier, "
        f"activation\n  matching {left['activation']:.0%}, weight matching {left['weight']:.0%}, weight + REPAIR "
        f"{left['weight+repair']:.0%}.\n"
        f"- Does the paper's matching find the permutation that matters? Partly: it removes {1 - left['paper']:.0%} of "
        f"the\n  identity barrier where weight matching removes {1 - left['weight']:.0%}, and the two agree on "
        f"{mean(agree):.0%} of units ({min(agree):.0%} to\n  {max(agree):.0%} by cell). Matching W1 rows alone ignores "
        "what weight matching also uses: the biases and W2.\n"
        "- Do higher PE and a lower barrier go together? Within cells (C >= 3), pair by pair, ranks pooled:\n"
        f"  Spearman {rho[1]}, 95% interval {rho[2]} to {rho[3]} (seed bootstrap): cannot tell at 7 seeds; if there\n"
        "  is a link, it is weak.")


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
    "repro-table": repro_table,
    "rotation-null": rotation_paragraph,
    "beyond-paper": beyond_paragraph,
    "sources-table": sources_table,
    "width-table": width_table,
    "width-findings": width_bullets,
    "barrier-table": barrier_table,
    "barrier-findings": barrier_bullets,
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
