"""The decomposition's figure (figures/sources.png) and report section, from the `pairs_<kind>`
and `sources_*` rows of metrics.csv and the `w1_distance.<kind>` rows over epochs (a kind of
pairs: what differs between two runs, sources.PAIR_KINDS)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from underspec.measures.results import RowIndex, RowKey  # noqa: E402
from underspec.measures.sources import PAIR_KINDS  # noqa: E402

SHOWN = (("function", "disagreement", "prediction disagreement"), ("function", "cka", "1 - CKA"),
         ("params", "pe", "PE (aligned units)"), ("params", "apc1", "APC-1"))
Y_LABELS = {"disagreement": "share of test images", "cka": "1 - linear CKA of the probe embeddings",
            "pe": "share of units matched alike", "apc1": "mean |Pearson| of aligned W1 rows"}
COLORS = {"jitter": "tab:green", "order": "tab:blue", "init": "tab:orange", "init+order": "tab:red"}
STYLES = {"jitter": ":", "order": "-", "init": "-", "init+order": "--"}  # init+order dashed: init shows under it


def _cells(rows) -> list[tuple[float, int]]:
    return sorted({(r["lambda"], r["classes"]) for r in rows if r["mode"].startswith("pairs_")})


def _get(index: RowIndex, cell, target, metric, kind) -> dict | None:
    return index.get(RowKey(*cell, target, metric, f"pairs_{kind}"))


def sources_fig(rows, erows, path: Path) -> bool:
    """One row of panels per cell: each kind's metric with its 95% interval, and the kinds'
    relative W1 distance over epochs (log scale). False when there is nothing to draw."""
    cells = _cells(rows)
    if not cells:
        return False
    index = RowIndex(rows)
    fig, axes = plt.subplots(len(cells), len(SHOWN) + 1, figsize=(4 * (len(SHOWN) + 1), 3.2 * len(cells)),
                             squeeze=False, constrained_layout=True)
    for i, cell in enumerate(cells):
        for j, (target, metric, title) in enumerate(SHOWN):
            ax = axes[i, j]
            if metric == "pe" and cell[1] == 2:  # W2 columns of two entries: every |Pearson| is 1
                ax.text(0.5, 0.5, "n/a at C = 2\n(the W2 matching is a tie)", ha="center", va="center",
                        transform=ax.transAxes, color="grey")
            else:
                _bars(ax, [_get(index, cell, target, metric, kind) for kind in PAIR_KINDS], metric == "cka")
            ax.set_xticks(range(len(PAIR_KINDS)), PAIR_KINDS, fontsize=8)
            ax.set_ylabel(Y_LABELS[metric], fontsize=8)
            ax.set_title(f"{title}, 95% interval\nlambda={cell[0]!r}, C={cell[1]}", fontsize=9)
        _distances(axes[i, -1], [e for e in erows if (e["lambda"], e["classes"]) == cell])
    fig.suptitle("Where the spread comes from: pairs that differ in the jitter, the order, the init, or both seeds")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _bars(ax, found: list[dict | None], one_minus: bool) -> None:
    """One bar per kind of pairs (found: its row or None, in PAIR_KINDS' order) with its 95%
    interval; of 1 - the metric for a similarity."""
    for k, (kind, r) in enumerate(zip(PAIR_KINDS, found, strict=True)):
        if r is None or not np.isfinite(r["mean"]):
            continue
        flip = (lambda v: 1 - v) if one_minus else (lambda v: v)  # noqa: E731
        m, lo, hi = flip(r["mean"]), flip(r["ci_low"]), flip(r["ci_high"])
        ax.bar(k, m, color=COLORS[kind])
        ax.errorbar(k, m, yerr=[[m - min(lo, hi)], [max(lo, hi) - m]], color="k", capsize=3)


def _distances(ax, erows: list[dict]) -> None:
    """Each kind's relative W1 distance over epochs, one cell's rows, log scale."""
    for kind in PAIR_KINDS:
        pts = sorted((e["epoch"], e["mean"]) for e in erows if e["metric"] == f"w1_distance.{kind}")
        pts = [(x, y) for x, y in pts if y > 0]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=kind, color=COLORS[kind], ls=STYLES[kind],
                    lw=2.5 if kind == "init+order" else 1.5, marker="o" if kind == "init" else None,
                    markevery=5, markersize=4)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("relative W1 distance (log)", fontsize=8)
    ax.set_title("||W1_a - W1_b|| / ||W1_a||, no alignment\n(init: circles; init+order: dashed over it)", fontsize=9)
    ax.legend(fontsize=7)


def _fmt(r) -> str:
    if r is None or not np.isfinite(r["mean"]):
        return "n/a"
    return f"{r['mean']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"


def _share(index: RowIndex, cell: tuple, target: str, name: str, kind: str) -> str:
    """A kind's share of the init+order value (row `share.<name>`) with the ratio's own interval."""
    if kind == "init+order":
        return "1"
    r = _get(index, cell, target, f"share.{name}", kind)
    return "n/a" if r is None or not np.isfinite(r["mean"]) else \
        f"{r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def sources_md(rows) -> str:
    """The report section: per cell, each kind's metrics with intervals, each kind's share of
    the init+order value, and the variance components of test accuracy."""
    cells = _cells(rows)
    if not cells:
        return ""
    index = RowIndex(rows)
    out = ["", "## Where does the spread come from?", "",
           "Pairs of runs in one cell, by what differs between them: `jitter` (a one-ulp nudge of the "
           "initial weights, nothing else), `order` (the minibatch order alone), `init` (the initial "
           "weights alone), `init+order` (both seeds). Means with 95% intervals from a bootstrap that "
           "resamples init seeds and order seeds independently. `share` is the class's mean over the "
           "init+order mean (of the disagreement, of 1 - CKA), its 95% interval the ratio's own (numerator "
           "and denominator resampled together). `figures/sources.png` draws them with the distance over "
           "epochs.", ""]
    for cell in cells:
        out += [f"### lambda={cell[0]!r}, C={cell[1]}", "",
                "| class | disagreement | share | CKA | 1-CKA share | PE | APC-1 | n pairs |",
                "|---|---|---|---|---|---|---|---|"]
        for kind in PAIR_KINDS:
            got = {m: _get(index, cell, t, m, kind) for t, m, _ in SHOWN}
            if not any(got.values()):
                continue
            n = next((r["n_pairs"] for r in got.values() if r), 0)
            dis, cka = (_share(index, cell, "function", name, kind) for name in ("disagreement", "1-cka"))
            out.append(f"| {kind} | {_fmt(got['disagreement'])} | {dis} | "
                       f"{_fmt(got['cka'])} | {cka} | {_fmt(got['pe'])} | "
                       f"{_fmt(got['apc1'])} | {n} |")
        comps = {r["mode"].removeprefix("sources_"): r["mean"] for r in rows
                 if (r["lambda"], r["classes"]) == cell and r["mode"].startswith("sources_")}
        if comps:
            out += ["", "Test accuracy variance components (method of moments; interaction is confounded "
                    "with rounding noise at one run per init x order): "
                    + ", ".join(f"{k} {v:.3g}" for k, v in comps.items()), ""]
    return "\n".join(out) + "\n"
