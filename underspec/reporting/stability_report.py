"""The stability analysis' figure (figures/stability.png) and report section, from the `stability`
rows of metrics.csv (measures.stability) and its trends.csv contrasts."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from underspec.measures.stability import MODE, RULE_MODE, TARGET, THRESHOLD  # noqa: E402
from underspec.reporting.heatmaps import Heat, Plane, heatmap  # noqa: E402

K_METRIC = re.compile(r"^(?P<measure>.+)\.k(?P<k>\d+)$")


def curves(rows, measure: str) -> dict[tuple[float, int], list[tuple[int, dict]]]:
    """{cell: [(k, row), ...] sorted by k} of one measure's `children` rows."""
    out: dict[tuple[float, int], list] = {}
    for r in rows:
        m = K_METRIC.match(r["metric"]) if r["target"] == TARGET and r["mode"] == MODE else None
        if m and m["measure"] == measure:
            out.setdefault((r["lambda"], r["classes"]), []).append((int(m["k"]), r))
    return {c: sorted(v, key=lambda kv: kv[0]) for c, v in sorted(out.items())}


def epochs_of(rows) -> dict[tuple[float, int], float]:
    """{cell: stability epoch} (inf: not reached)."""
    return {(r["lambda"], r["classes"]): r["mean"] for r in rows
            if r["target"] == TARGET and r["metric"] == "stability_epoch" and r["mode"] == RULE_MODE}


def band_words(rows) -> str:
    """What the stability rows' intervals are: the range over parents (at most three of them) or
    a 95% bootstrap interval over parents."""
    few = any(r.get("interval") == "min_max" for r in rows if r["target"] == TARGET and r["mode"] == MODE)
    return ("range over parents (3 or fewer: what their bootstrap reduces to)" if few
            else "95% interval over parents")


def stability_fig(rows, path: Path) -> bool:
    """Error barrier against the branch epoch k (symlog: k = 0 shows), one curve per cell with its
    band (`band_words`), without alignment and after weight matching, the 0.02
    line; and the lambda x C heatmap of the stability epoch. False when there is nothing to draw."""
    found = {m: curves(rows, f"error_barrier.{m}") for m in ("identity", "weight")}
    if not found["identity"]:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    for ax, (method, title) in zip(axes[:2], (("identity", "no alignment"), ("weight", "after weight matching")),
                                   strict=True):
        for i, (cell, kv) in enumerate(found[method].items()):
            k = np.array([x for x, _ in kv], float)
            m, lo, hi = (np.array([r[c] for _, r in kv], float) for c in ("mean", "ci_low", "ci_high"))
            ax.plot(k, m, "o-", color=colors[i % 10], label=f"lambda {cell[0]!r}, C {cell[1]}", ms=3)
            ax.fill_between(k, lo, hi, color=colors[i % 10], alpha=0.15)
        ax.axhline(THRESHOLD, color="k", ls="--", lw=1, label=f"{THRESHOLD} (Frankle et al.)")
        ax.set_xscale("symlog", linthresh=1)
        ks = sorted({x for kv in found[method].values() for x, _ in kv})
        ax.set_xticks(ks, [str(x) for x in ks])
        ax.set_xlim(-0.3, ks[-1] * 1.15)
        ax.set_xlabel("branch epoch k")
        ax.set_ylabel("test-error barrier between children")
        ax.set_title(f"error barrier, {title}\nbands: {band_words(rows)}", fontsize=9)
    axes[0].legend(fontsize=7, ncol=2)
    plane = Plane.of([r for r in rows if r["target"] == TARGET])
    M = plane.values(TARGET, "stability_epoch", RULE_MODE)
    top = max([x for x, _ in next(iter(found["identity"].values()))] + [1])
    shown = np.where(np.isfinite(M), M, np.nan)
    im = heatmap(axes[2], plane, Heat(shown, "stability epoch: smallest k from which on the barrier's upper "
                                      f"bound <= {THRESHOLD}\n(blank: not reached)", 0.0, float(top), fmt=".0f"))
    fig.colorbar(im, ax=axes[2], label="branch epoch k")
    fig.suptitle("When is the basin decided? Children branched at epoch k, differing only in their later "
                 "minibatch order")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _interval(r: dict) -> str:
    return f"{r['mean']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]"


def stability_md(rows, trends) -> str:
    """The report's section: per cell the error barrier at each k (both alignments), the stability
    epoch, and the trend contrasts with their verdicts."""
    found = {m: curves(rows, f"error_barrier.{m}") for m in ("identity", "weight")}
    if not found["identity"]:
        return ""
    epochs = epochs_of(rows)
    out = ["\n## When is the basin decided? (branched children)\n",
           "Children of one parent share its first k epochs and differ only in their minibatch order "
           "after it. Each value: the mean over parents of the mean over a parent's child pairs, with "
           f"its {band_words(rows)} (the `interval` column of metrics.csv). The stability epoch is the "
           "smallest k from which "
           f"on (it and every larger k studied) the upper bound of the error barrier without alignment "
           f"is at most {THRESHOLD} (Frankle et al. 2020's threshold).\n",
           "| lambda | C | k | error barrier, no alignment | error barrier, weight matching | pairs |",
           "|---|---|---|---|---|---|"]
    for cell, kv in found["identity"].items():
        weight = dict(found["weight"].get(cell, []))
        for k, r in kv:
            w = _interval(weight[k]) if k in weight else "n/a"
            out.append(f"| {cell[0]!r} | {cell[1]} | {k} | {_interval(r)} | {w} | {r['n_pairs']} |")
    out += ["", "| lambda | C | stability epoch |", "|---|---|---|"]
    out += [f"| {lam!r} | {C} | {'not reached' if not np.isfinite(e) else int(e)} |"
            for (lam, C), e in sorted(epochs.items())]
    if trends:
        out += ["", "| contrast | estimate [95% interval] | tie margin | verdict |", "|---|---|---|---|"]
        out += [f"| {t['statement']} | {t['estimate']:.4f} [{t['ci_low']:.4f}, {t['ci_high']:.4f}] | "
                f"{t['tie_margin']:.3g} | {t['verdict']} |" for t in trends]
    return "\n".join(out) + "\n"
