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
and reports/width/h<H>-lr*-b*/metrics.csv; the sources blocks by docs/readme_sources.py from
reports/sources/, the stability blocks by docs/readme_stability.py from reports/stability/.

Exempt (typed in the README, not generated), because no analysis output holds them or they are
settings rather than results:
- timings (minutes of training, seconds per run): they depend on the machine and on what else ran
  beside the study, and live in BENCHMARKS.md, not in any metrics.csv;
- run counts, seed counts, grid settings (378 runs, 7 seeds, the lambdas, class counts, widths,
  epochs, 11 alphas, 5,000 images): they are the study's configuration (MLproject and the
  Makefile), fixed before any run, not measured;
- version numbers (the data format version, pinned library versions): configuration, not results;
- constants of a definition (PE's chance 1/16 or 1/H, the thresholds a barrier is compared with,
  ERROR_THRESHOLD and LOSS_THRESHOLD below, the 16 hidden units): they follow from the settings;
- the paper's own figures (the "what the paper reports" column, e.g. its highest PE 0.48): quoted
  from the paper, not measured here.
The verdicts are read from trends.csv where it has them; the words around the numbers that no CSV
column holds are prose, and each claim they make is stated as a `premise` checked on the numbers:
a re-run that breaks one stops the block (--check fails, naming the claim) until it is reread.
"""
from __future__ import annotations

import argparse
import difflib
import itertools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import mean, median

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling readme_stability, however it is loaded
from readme_common import Metrics, ci, load, premise, read_trends  # noqa: E402, F401  (Metrics: the tests' reader)
from readme_sources import sources_findings, sources_table  # noqa: E402
from readme_stability import stability_findings, stability_table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MARK = "<!-- generated: {name} (python docs/readme_numbers.py --write) -->"
END = "<!-- end generated: {name} -->"
BLOCK_RE = re.compile(r"<!-- generated: (?P<name>[a-z0-9-]+) \(python docs/readme_numbers\.py --write\) -->\n"
                      r"(?P<body>.*?)\n<!-- end generated: (?P=name) -->", re.S)


def lam_str(lam: float) -> str:
    return repr(lam)


# ---- the blocks -------------------------------------------------------------------------------

def paper(rep: Path) -> Metrics:
    return load(rep / "paper" / "metrics.csv")


def trends(rep: Path) -> dict[str, dict]:
    """The paper grid's trends.csv by contrast."""
    return read_trends(rep / "paper" / "trends.csv")


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


UNRESOLVED = ("cannot tell at 7 seeds", "tie")


def holding0(t: dict, names) -> str:
    """'every interval holding 0', or how many of them do."""
    n = sum(t[x]["ci_low"] <= 0 <= t[x]["ci_high"] for x in names)
    return "every interval holding 0" if n == len(names) else f"{n} of {len(names)} intervals holding 0"


def verdicts(t: dict, names) -> str:
    """The contrasts' verdicts, 'tie (2), cannot tell at 7 seeds (2)', most frequent first."""
    words = [t[x]["verdict"] for x in names]
    return ", ".join(f"{w} ({words.count(w)})" for w in sorted(set(words), key=lambda w: (-words.count(w), w)))


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
    shares = sorted(((r["estimate"], float(k.removeprefix("pe_highest_at_"))) for k, r in t.items()
                     if k.startswith("pe_highest_at_")), reverse=True)
    shares = ", ".join(f"{lam:g} {v:.2f}" for v, lam in shares if f"{v:.2f}" != "0.00")
    premise(t["pe_rises_with_C"]["verdict"] == "agree", "that PE rises with C")
    premise(rot[10] - rot[3] > (pe[10] - pe[3]) / 2, "that most of PE's rise with C is in the rotation null too")
    premise(all(t[x]["verdict"] in UNRESOLVED for x in at5 + at1), "that 0.005 and 0.001 are not told from 0 to 0.01")
    premise(t["pe_at_0.005_minus_0.05"]["verdict"] == t["pe_at_0.001_minus_0.05"]["verdict"] == "agree",
            "that PE at lambda 0.05 is lower")
    return [
        f"| PE grows with the number of classes | mean PE over lambdas {pe[3]:.2f} at C=3, {pe[10]:.2f} at C=10; "
        f"slope {tr(t, 'pe_rises_with_C').replace(', [', ' per class, [')} | rotation null {rot[3]:.2f} (C=3) to "
        f"{rot[10]:.2f} (C=10): it rises too; trained minus null {minus[3]:+.3f} (C=3), {minus[10]:+.3f} (C=10) | "
        f"slope in C, seed bootstrap over all cells, C >= 3 pooled | {t['pe_rises_with_C']['verdict']} that PE "
        "rises with C; most of the rise is in the null too (longer W2 columns let a rotated network's units line "
        "up by chance), so only part of it is "
        "unit correspondence |",
        f"| PE rises with lambda up to a point, then falls | rise: PE over 0 < lambda < 0.05 minus lambda 0 = "
        f"{tr(t, 'pe_rises_with_lambda')}; fall: lambda 0.05 minus that = {tr(t, 'pe_falls_at_large_lambda')} | "
        f"noise floor of PE up to {noise:.2f} per cell ({noise0:g} at lambda 0) | fixed contrasts, seed bootstrap | "
        f"the rise: {t['pe_rises_with_lambda']['verdict']} (its tie margin, from the pooled noise floor: "
        f"{float(t['pe_rises_with_lambda']['tie_margin']):.3f}); the fall at 0.05: "
        f"{t['pe_falls_at_large_lambda']['verdict']} |",
        f"| the peak is at 0.005 (text) | PE(0.005) minus PE at 0, 0.001, 0.0025, 0.01: {est(t, at5)}, "
        f"{holding0(t, at5)}; minus PE(0.05): {tr(t, 'pe_at_0.005_minus_0.05')} | | one contrast per other lambda | "
        f"{verdicts(t, at5)}: 0.005 cannot be told from 0 to 0.01; only 0.05 is lower |",
        "| lambda = 0.001 gives the highest PE (text; caption: the smallest lambda, 0.001) | PE(0.001) minus PE at 0, "
        f"0.0025, 0.005, 0.01: {est(t, at1)}, {holding0(t, at1)}; minus PE(0.05): "
        f"{tr(t, 'pe_at_0.001_minus_0.05')}. Which lambda is highest over C >= 3, share of resamples (a description, "
        f"not a test): {shares} | | one contrast per other lambda | {verdicts(t, at1)}, for the same reason |",
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
    ref = m.get(0.001, 9, "params", "pe", "reference")
    premise(ref["ci_low"] <= 0.48 <= ref["ci_high"] and pe[(0.001, 9)]["mean"] < ref["mean"] and minus["ci_low"] > 0,
            "that the paper's 0.48 lies in the reference interval, the all-pairs value is lower, above the null")
    premise(apc2[-1] - init[-1] > apc2[0] - init[0] and init[0] - init[-1] > (apc2[0] - apc2[-1]) / 2,
            "that APC-2 falls mostly as chance does, trained minus untrained growing with C")
    premise(spread < 0.05, "that lambda barely moves APC-2")
    lams = sorted({lam for lam, C in m.cells() if C == Cs[-1]})
    above_init = sum(m.get(lam, Cs[-1], "params", "apc2", "all_pairs")["ci_low"]
                     > m.get(lam, Cs[-1], "params", "apc2", "chance_init")["ci_high"] for lam in lams)
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
        f"mean over lambdas | untrained networks: {', '.join(f'{v:.2f}' for v in init)} | | agree that it falls, "
        f"and most of the fall is vector length, as the paper says; but not all: trained minus untrained grows "
        f"from {apc2[0] - init[0]:.3f} (C={Cs[0]}) to {apc2[-1] - init[-1]:.3f} (C={Cs[-1]}), and at C={Cs[-1]} "
        f"the trained interval lies above the untrained one in {above_init} of {len(lams)} cells |",
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
    pe_cells = [c for c in m.cells() if c[0] > 0 and c[1] >= 3]
    pe_up = sum(m.get(*c, "grads", "pe", "all_pairs")["ci_low"] > 1 / 16 for c in pe_cells)
    pe_rot = sum(m.get(*c, "grads", "pe", "minus_rotation")["ci_low"] > 0 for c in pe_cells)
    apc_cells = [c for c in m.cells() if c[0] > 0]
    up = [c for c in apc_cells if m.get(*c, "grads", "apc1", "all_pairs")["ci_low"]
          > m.get(*c, "grads", "apc1", "chance_shuffle")["ci_high"]]
    apc_up, apc_001, n_001 = len(up), sum(c[0] == 0.001 for c in up), sum(c[0] == 0.001 for c in apc_cells)
    premise(pe_up > 0.025 * len(pe_cells) and apc_up > 0.025 * len(apc_cells) and pe1 < pe0 and mean(g1) < min(g0),
            "that gradients fall close to chance but not to it")
    return [
        f"| for gradients, any lambda > 0 drives APC-1 and PE close to zero | cumulative-gradient APC-1: "
        f"{span(g0)} at lambda 0, {span(g1, 3)} (mean {mean(g1):.3f}) at lambda > 0; PE (C >= 3): {pe0:.2f} at "
        f"lambda 0, {pe1:.2f} at lambda > 0 | shuffled entries: APC-1 {shuffle:.3f}; PE 1/16 | intervals against the "
        f"nulls, per cell | agree that they fall close to chance, not to it: at lambda > 0 PE's interval lies above "
        f"1/16 in {pe_up} of {len(pe_cells)} cells (C >= 3) and above the rotation null in {pe_rot}; APC-1's above "
        f"the shuffled null in {apc_up} of {len(apc_cells)} cells, {apc_001} of {n_001} at lambda 0.001. Read it "
        "right: at lambda > 0 the cumulative gradient is (W0 - WT)/lr, about W0/lr, and its "
        f"rows correlate {span(c1)} with the initial weights ({span(c0)} at lambda 0), so \"gradients at chance\" "
        "mostly restates that different seeds start differently |",
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
    premise(g_k > 0.025 * g_n and a_k > a_n / 2 and 0 < p_k < p_n,
            "the rotation null's counts as the paragraph reads them")
    return (
        f"What the rotation null adds. Weight APC-1 exceeds it in {a_k} of {a_n} cells, but by little (trained\n"
        f"minus null {span(a_d)}): trained networks share a first-layer subspace far beyond untrained ones\n"
        f"(APC-1 {span(m.means('params', 'apc1', 'all_pairs'))} against "
        f"{mean(m.means('params', 'apc1', 'chance_init')):.2f}), yet most of APC-1 is that subspace, not matched "
        f"units. PE\nexceeds the rotation null in {p_k} of {p_n} cells (none at C = 2), by {by_lam[lo]:.2f} "
        f"(lambda {lo:g}) to {by_lam[hi]:.2f}\n(lambda {hi:g}) averaged over C >= 3: some units do correspond, most "
        "of the PE the paper reads as\ncorrespondence is what a rotated network also gets. For gradients at lambda > "
        f"0, trained is close\nto the null, not equal to it: APC-1 exceeds it in {g_k} of {g_n} cells (a true null "
        f"would give about {0.025 * g_n:.0f}),\nby {mean(g_d):.3f} on average. The "
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


def overlapping(g, Hs, metric: str, mode: str, target: str, f=lambda v, H: v) -> str:
    """Which neighbouring widths' intervals (after f(value, H)) overlap, per lambda: 'H 16 and 32 at
    lambda 0.001', or 'none'."""
    out = []
    for lam in (0.0, 0.001):
        for a, b in zip(Hs, Hs[1:], strict=False):
            ra, rb = g[(lam, a)](metric, mode, target), g[(lam, b)](metric, mode, target)
            premise(ra is not None and rb is not None, f"a {metric} row at H {a} and {b}")
            la, ha = sorted((f(ra["ci_low"], a), f(ra["ci_high"], a)))
            lb, hb = sorted((f(rb["ci_low"], b), f(rb["ci_high"], b)))
            if la <= hb and lb <= ha:
                out.append(f"H {a} and {b} at lambda {lam:g}")
    return ", ".join(out) or "none do"


def width_bullets(rep: Path) -> str:
    """The width study's findings under its table."""
    w = {H: rows for H, rows in width_panels(rep)}
    Hs = sorted(w)
    C = next(iter(w[Hs[0]].rows.values()))["classes"]
    g = {(lam, H): (lambda metric, mode="all_pairs", target="params", H=H, lam=lam:
                    w[H].get(lam, C, target, metric, mode)) for lam in (0.0, 0.001) for H in Hs}
    n_lo, n_hi = (ci(g[(0.0, H)]("pe"), lambda v, h=H: (v - 1 / h) / (1 - 1 / h), 2) for H in (Hs[0], Hs[-1]))
    d_lo, d_hi = (ci(g[(0.0, H)]("pe", "minus_rotation"), d=2) for H in Hs[-2:])
    dis = {k: g[k]("disagreement", "all_pairs", "function")["mean"] for k in g}
    premise(all(g[(lam, H)]("pe", "minus_rotation")["ci_low"] <= 0 for lam in (0.0, 0.001) for H in Hs[:2])
            and all(g[(0.0, H)]("pe", "minus_rotation")["ci_low"] > 0 for H in Hs[-2:]),
            "that only the two widest widths exceed the rotation null")
    norm_overlap = overlapping(g, Hs, "pe", "all_pairs", "params", lambda v, h: (v - 1 / h) / (1 - 1 / h))
    excess = [g[(0.0, H)]("pe", "minus_rotation") for H in (Hs[0], Hs[-1])]
    premise(excess[0]["ci_high"] >= excess[1]["ci_low"], "that PE's excess over the rotation null does not fall")
    bars = {H: g[(0.0, H)]("loss_barrier.weight", "all_pairs", "barrier")["mean"] for H in Hs}
    fall_from = next(H for H in Hs if all(bars[a] > bars[b] for a, b in itertools.pairwise(Hs) if a >= H))
    return (
        f"- Raw PE falls with width ({g[(0.0, Hs[0])]('pe')['mean']:.2f} to {g[(0.0, Hs[-1])]('pe')['mean']:.2f} at "
        "lambda 0), and so do its chance 1/H and the rotation\n  null; the normalised PE is lower at the widest "
        "than at "
        f"the narrowest ({n_lo} at H {Hs[0]} to\n  {n_hi} at H {Hs[-1]}), but neighbouring widths overlap: "
        f"{norm_overlap}. Most of that fall is the null's too: PE minus the rotation null, paired by pair, is "
        f"{ci(excess[0], d=2)} at H {Hs[0]} and {ci(excess[1], d=2)} at H {Hs[-1]} (lambda 0), no sign that the "
        "excess falls with width.\n"
        "- Above the rotation null: cannot tell at H 8 and 16 (the paired intervals include 0 at both\n  lambdas); "
        "at H 32 and 64 the trained networks' units correspond better than a rotation of the\n  same span "
        f"(PE - null {d_lo} and {d_hi} at lambda 0).\n"
        f"- Wider networks disagree less ({dis[(0.0, Hs[0])]:.3f} to {dis[(0.0, Hs[-1])]:.3f} at lambda 0, "
        f"{dis[(0.001, Hs[0])]:.3f} to {dis[(0.001, Hs[-1])]:.3f} at lambda 0.001; neighbours whose\n  intervals "
        f"overlap: {overlapping(g, Hs, 'disagreement', 'all_pairs', 'function')}) and, from H {fall_from} on, sit "
        f"closer to one basin after weight\n  matching (loss barrier {bars[fall_from]:.2f} at H {fall_from} to "
        f"{bars[Hs[-1]]:.3f} at H {Hs[-1]}, lambda 0; {bars[Hs[0]]:.2f} at H {Hs[0]}; neighbours that overlap: "
        f"{overlapping(g, Hs, 'loss_barrier.weight', 'all_pairs', 'barrier')}).")


ERROR_THRESHOLD = 0.02  # Frankle et al. 2020: linearly connected when the error barrier is within 2 points
LOSS_THRESHOLD = 0.01  # nats, practical: under 2 standard errors of the median network's mean test loss (0.0060), 3.6
# (0.0028 median) of a paired difference of two networks' losses on the same images (benchmarks/loss_resolution.py)


def by_c(cells) -> str:
    """'6 at C=2, 2 at C=3' for a list of cells, per C, only the C that have any."""
    Cs = sorted({C for _, C in cells})
    return ", ".join(f"{sum(1 for c in cells if c[1] == C)} at C={C}" for C in Cs) or "none"


def share(t: dict, method: str) -> str:
    r = t[f"share_of_loss_barrier.identity.loss_barrier.{method}"]
    return f"{r['estimate']:.0%} [{r['ci_low']:.0%}, {r['ci_high']:.0%}]"


def barrier_bullets(rep: Path) -> str:
    """The findings under the barrier table."""
    m, t = paper(rep), trends(rep)
    wr = {c: m.get(*c, "barrier", "loss_barrier.weight+repair", "all_pairs") for c in m.cells()}
    er = {c: m.get(*c, "barrier", "error_barrier.weight+repair", "all_pairs") for c in m.cells()}
    loss_ok = [c for c in wr if wr[c]["ci_high"] <= LOSS_THRESHOLD]
    err_ok = [c for c in er if er[c]["ci_high"] <= ERROR_THRESHOLD]
    c10 = [r["mean"] for (lam, C), r in wr.items() if C == 10]
    many = [c for c in wr if c[1] > 2]
    above = [c for c in many if wr[c]["ci_low"] > LOSS_THRESHOLD]
    per_cell = [m.get(*c, "barrier", "loss_barrier.paper", "all_pairs")["mean"]
                / m.get(*c, "barrier", "loss_barrier.identity", "all_pairs")["mean"] for c in wr]
    agree = m.means("barrier", "matching_agreement", "all_pairs")
    rho = t["pe_vs_loss_barrier"]
    repair = t["share_of_loss_barrier.identity.loss_barrier.weight+repair"]
    premise(len(above) > len(many) / 2 and repair["ci_high"] < 0.5,
            "that most cells with C > 2 sit above the loss threshold and that most of the barrier is permutation")
    return (
        "- Close to zero after the best matching? Judged against practical thresholds, not against the\n"
        f"  yardstick's exact 0: an error barrier within {ERROR_THRESHOLD:g} (Frankle et al.'s 2 points; its upper "
        f"95% bound),\n  a loss barrier within {LOSS_THRESHOLD:g} nats (upper bound; under twice the standard error of "
        "the mean test\n  loss of the grid's median network, about 3.6 of a paired difference's, BENCHMARKS.md). After "
        "weight + REPAIR the\n  error barrier is within the threshold in "
        f"{len(err_ok)} of {len(er)} cells\n  ({by_c(err_ok)}), the loss barrier in {len(loss_ok)} of {len(wr)} "
        f"({by_c(loss_ok)}). It grows with C, to\n  {span(c10)} at C = 10 (lambda 0: {ci2(wr[(0.0, 10)])}; lambda "
        f"0.01: {ci2(wr[(0.01, 10)])}). With 16 hidden\n  units and more than two classes, {len(above)} of {len(many)} "
        "cells have a loss barrier whose 95% interval lies\n  above the threshold: different basins even up to "
        "permutation, though most of the gap is permutation.\n"
        "- What each matching leaves of the identity loss barrier (grid mean over grid mean, seed-bootstrap\n"
        f"  interval of the ratio): the paper's {share(t, 'paper')}, activation {share(t, 'activation')}, weight\n"
        f"  {share(t, 'weight')}, weight + REPAIR {share(t, 'weight+repair')}. Per cell the paper's share runs from "
        f"{min(per_cell):.0%}\n  to {max(per_cell):.0%} and exceeds 100% in {sum(v > 1 for v in per_cell)} cells.\n"
        "- Does the paper's matching find the permutation that matters? Partly: it agrees with weight\n"
        f"  matching on {mean(agree):.0%} of units ({min(agree):.0%} to {max(agree):.0%} by cell). Matching W1 rows "
        "alone ignores what weight\n  matching also uses: the biases and W2.\n"
        "- Do higher PE and a lower barrier go together? Within cells (C >= 3), pair by pair, ranks pooled:\n"
        f"  Spearman {rho['estimate']:+.2f}, 95% interval {rho['ci_low']:+.2f} to {rho['ci_high']:+.2f} (seed "
        f"bootstrap): {verdict_of(t, 'pe_vs_loss_barrier')}.")


def width_panels(rep: Path) -> list[tuple[int, Metrics]]:
    """(H, metrics) of each width's report, narrowest first."""
    paths = rep.glob("width/h*-lr*-b*/metrics.csv")
    return sorted(((int(p.parent.name[1:].split("-")[0]), load(p)) for p in paths), key=lambda t: t[0])


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
    m = paper(rep)
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


STRESS_VERDICT = {"agree": "yes", "disagree": "no, the opposite", "tie": "a tie"}


def verdict_of(t: dict, name: str) -> str:
    """The verdict trends.csv gives a contrast, in words ('cannot tell at 7 seeds' as it stands)."""
    v = t[name]["verdict"]
    return STRESS_VERDICT.get(v, v)


def weak(t: dict, name: str) -> str:
    """', weakly' after a 'yes' whose correlation is below 0.3 in size."""
    return ", weakly" if t[name]["verdict"] == "agree" and abs(t[name]["estimate"]) < 0.3 else ""


def shift_order(m: Metrics) -> list[str]:
    """The suite's shifts in the order metrics.csv has them, the identity first."""
    names = [k[3].removeprefix("acc.") for k in m.rows if k[2] == "stress" and k[3].startswith("acc.")
             and k[4] == "seed_bootstrap"]
    return list(dict.fromkeys(names))


def stress_spread(m: Metrics) -> list[str]:
    """Which shifts spread the seeds most, against the iid spread."""
    names = shift_order(m)[1:]
    ratio = {n: median(m.means("stress", f"std_ratio.{n}", "seed_bootstrap")) for n in names}
    above = {n: sum(m.get(*c, "stress", f"std_ratio.{n}", "seed_bootstrap")["ci_low"] > 1 for c in m.cells("seed_b"))
             for n in names}
    cells = len(m.cells("seed_b"))
    top = sorted(names, key=ratio.get, reverse=True)
    iid = m.means("stress", "acc_std.identity", "seed_bootstrap")
    one = ", ".join(f"`{n}` {ratio[n]:.1f}x ({above[n]} of {cells})" for n in top[:3])
    return [f"- Which shifts spread the seeds most? By the std over seeds of accuracy under the shift over its iid "
            "std, "
            f"median over the {cells} cells (cells whose interval lies above 1): {one}. The mildest is `{top[-1]}`, "
            f"{ratio[top[-1]]:.1f}x ({above[top[-1]]} of {cells}). The iid std itself is {mean(iid):.4f} on average "
            f"({min(iid):.4f} to {max(iid):.4f} by cell)."]


def stress_trends(m: Metrics, t: dict) -> list[str]:
    """Do L1 and more classes shrink the spread under shift (the stress contrasts of trends.csv)?"""
    acc = {k: mean(mean(m.means("stress", f"acc.{n}", "seed_bootstrap", w)) for n in shift_order(m)[1:])
           for k, w in (("l0", lambda lam, C: lam == 0), ("l5", lambda lam, C: lam == 0.05),
                        ("c2", lambda lam, C: C == 2), ("c10", lambda lam, C: C == 10))}
    premise(acc["l5"] < acc["l0"] and acc["c10"] < acc["c2"], "that accuracy under shift falls with lambda and C")
    return [f"- Do L1 or more classes shrink it? Any L1 against none: std {tr(t, 'acc_std_falls_with_lambda', 4)}, "
            f"{verdict_of(t, 'acc_std_falls_with_lambda')}; disagreement {tr(t, 'disagreement_falls_with_lambda', 4)}, "
            f"{verdict_of(t, 'disagreement_falls_with_lambda')}. Lambda 0.05 against 0: std "
            f"{tr(t, 'acc_std_at_0.05_minus_0.0', 4)}, {verdict_of(t, 'acc_std_at_0.05_minus_0.0')}; disagreement "
            f"{tr(t, 'disagreement_at_0.05_minus_0.0', 4)}, {verdict_of(t, 'disagreement_at_0.05_minus_0.0')}. Per "
            f"class: std {tr(t, 'acc_std_falls_with_C', 4)}, {verdict_of(t, 'acc_std_falls_with_C')}; disagreement "
            f"{tr(t, 'disagreement_falls_with_C', 4)}, {verdict_of(t, 'disagreement_falls_with_C')}. Accuracy under "
            f"shift (mean over shifts) is {acc['l0']:.3f} at lambda 0 and {acc['l5']:.3f} at 0.05, {acc['c2']:.3f} at "
            f"C = 2 and {acc['c10']:.3f} at C = 10: where the spread grows, the task got harder too."]


def stress_noise(m: Metrics) -> list[str]:
    """What the noise ratio says about the iid spread; what ensembling buys."""
    cells = m.cells("seed_b")
    meas = {c: m.get(*c, "stress", "noise_ratio.identity", "measured")["mean"] for c in cells}
    null = {c: m.get(*c, "stress", "noise_ratio.identity", "chance_bernoulli")["ci_high"] for c in cells}
    above = [c for c in cells if meas[c] > null[c]]
    low = sorted(meas.values())
    gain = {c: m.get(*c, "stress", "ensemble_gain.identity", "ensemble") for c in cells}
    shifted = [mean(m.means("stress", f"ensemble_gain.{n}", "ensemble")) for n in shift_order(m)[1:]]
    return [f"- Is the iid spread real, or the test set's sampling noise? The measured variance over the variance "
            f"independent per-image errors give (Jordan 2023) is {median(low):.1f} in the median cell "
            f"({low[0]:.1f} to {low[-1]:.1f}); above its Bernoulli null's 95% range in {len(above)} of {len(cells)} "
            "cells: there the seeds really differ beyond test-set noise.",
            f"- What ensembling buys: the {int(next(iter(gain.values()))['n_pairs'])}-seed ensemble beats the mean "
            "single seed on the iid "
            f"set by {mean(g['mean'] for g in gain.values()):+.4f} on average (interval above 0 in "
            f"{sum(g['ci_low'] > 0 for g in gain.values())} of {len(cells)} cells), and under shift by "
            f"{mean(shifted):+.4f} averaged over the shifts ({min(shifted):+.4f} to {max(shifted):+.4f})."]


def stress_findings(rep: Path) -> str:
    """The stress section's answers on the paper grid."""
    m, t = paper(rep), trends(rep)
    link = [f"- Do better-aligned pairs disagree less under shift? Pair by pair within each (cell, shift), ranks "
            f"pooled: Spearman with PE (C >= 3) {tr(t, 'stress_disagreement_vs_pe', 2)}, "
            f"{verdict_of(t, 'stress_disagreement_vs_pe')}{weak(t, 'stress_disagreement_vs_pe')}; with the "
            "weight-matched loss barrier "
            f"{tr(t, 'stress_disagreement_vs_loss_barrier', 2)}, "
            f"{verdict_of(t, 'stress_disagreement_vs_loss_barrier')}."]
    return "\n".join(stress_spread(m) + stress_trends(m, t) + stress_noise(m) + link)


BLOCKS: dict[str, Callable[[Path], str]] = {
    "repro-table": repro_table,
    "rotation-null": rotation_paragraph,
    "beyond-paper": beyond_paragraph,
    "sources-table": sources_table,
    "sources-findings": sources_findings,
    "width-table": width_table,
    "width-findings": width_bullets,
    "barrier-table": barrier_table,
    "barrier-findings": barrier_bullets,
    "stress-findings": stress_findings,
    "stability-table": stability_table,
    "stability-findings": stability_findings,
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
