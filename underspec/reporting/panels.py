"""A sweep over widths, learning rates or batch sizes: its panels side by side.

Each panel (one hidden x lr x batch size) has its own report over lambda x C. Here the panels
meet: `panels.csv` (every panel's all-pairs rows, with the panel's axes as columns), and
`figures/panels.png`, heatmaps over the two panel axes that vary (a line with intervals when only
one does), one row of panels per (lambda, C) cell. A grid with one lambda and one C is read
here, over the axes it does vary.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from underspec.measures.results import CSV_COLUMNS, RowIndex, RowKey  # noqa: E402

PANEL_AXES = ("hidden", "lr", "batch_size")
SHOWN = (("params", "pe", "all_pairs", "PE"), ("function", "disagreement", "all_pairs", "disagreement"),
         ("barrier", "loss_barrier.weight", "all_pairs", "loss barrier (weight matching)"),
         ("function", "test_acc", "seeds", "test accuracy"))
NULL = ("params", "pe", "chance_rotation")  # PE's rotation null, drawn beside PE
COLUMNS = [*PANEL_AXES, *CSV_COLUMNS]


def panel_rows(results: dict[tuple, list[dict]]) -> list[dict]:
    """Every panel's rows of the SHOWN kinds and PE's rotation null, with the panel's (hidden, lr,
    batch_size)."""
    kinds = {(t, m, mode) for t, m, mode, _ in SHOWN} | {NULL}
    return [{**dict(zip(PANEL_AXES, panel, strict=True)), **r} for panel, rows in sorted(results.items())
            for r in rows if (r["target"], r["metric"], r["mode"]) in kinds]


def varied(rows: list[dict]) -> list[str]:
    """The panel axes that take more than one value (at most two are drawn)."""
    return [a for a in PANEL_AXES if len({r[a] for r in rows}) > 1][:2]


def _shown(rows: list[dict]) -> list[dict]:
    """The rows of the SHOWN kinds (the null rows left out)."""
    return [r for r in rows if (r["target"], r["metric"], r["mode"]) != NULL]


def _panels(rows: list[dict]) -> list[tuple]:
    """The panels' (hidden, lr, batch_size) with rows of the SHOWN kinds, sorted."""
    return sorted({tuple(r[a] for a in PANEL_AXES) for r in _shown(rows)})


def panels_fig(rows: list[dict], path: Path) -> None:
    axes_names = varied(rows)
    cells = sorted({(r["lambda"], r["classes"]) for r in _shown(rows)})
    index, panels = RowIndex(rows, PANEL_AXES), _panels(rows)
    ticks = sorted({r[axes_names[0]] for r in rows}) if len(axes_names) == 1 else []
    fig, axs = plt.subplots(len(cells), len(SHOWN), figsize=(4.2 * len(SHOWN), 3.4 * len(cells)),
                            squeeze=False, constrained_layout=True)
    for i, cell in enumerate(cells):
        for j, (target, metric, mode, title) in enumerate(SHOWN):
            sel, null = ([r for r in (index.get(RowKey(*cell, *kind), at=panel) for panel in panels) if r is not None]
                         for kind in ((target, metric, mode), NULL))
            if metric == "pe":  # PE's chance is 1/H: across widths only the normalised PE compares
                sel, null, title = _normalised(sel), _normalised(null), "normalised PE, (PE - 1/H) / (1 - 1/H)"
            bars = "min to max over seeds" if mode == "seeds" else "95% interval"
            _draw(axs[i, j], sel, (axes_names, ticks), f"{title} ({bars})\nlambda={cell[0]!r}, C={cell[1]}")
            if metric == "pe" and ticks and sel and null:
                _line(axs[i, j], null, (axes_names[0], ticks), "rotation null (normalised alike)")
                axs[i, j].legend(fontsize=7)
    fig.suptitle(f"The panels side by side, over {' x '.join(axes_names)}")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _draw(ax, sel: list[dict], axis: tuple[list[str], list], title: str) -> None:
    """One panel: a line over the one varied axis (axis: (names, its values)), else a heatmap."""
    (names, ticks) = axis
    ax.set_title(title, fontsize=9)
    if not sel:
        ax.axis("off")
        return
    if len(names) == 1:
        _line(ax, sel, (names[0], ticks), "trained, all pairs")
        return
    xs, ys = (sorted({r[n] for r in sel}) for n in names)
    M = np.full((len(ys), len(xs)), np.nan)
    for r in sel:
        M[ys.index(r[names[1]]), xs.index(r[names[0]])] = r["mean"]
    im = ax.imshow(M, origin="lower", aspect="auto", cmap="viridis")
    for (yi, xi), v in np.ndenumerate(M):
        if np.isfinite(v):
            ax.text(xi, yi, f"{v:.3g}", ha="center", va="center", color="w", fontsize=8)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    plt.colorbar(im, ax=ax)


def _normalised(rows: list[dict]) -> list[dict]:
    """PE rows as (v - 1/H) / (1 - 1/H), the mean and both interval ends (a fixed increasing map
    per panel, so the interval maps onto the normalised value's)."""
    f = lambda v, h: (v - 1 / h) / (1 - 1 / h)  # noqa: E731
    return [{**r, **{k: f(float(r[k]), int(r["hidden"])) for k in ("mean", "ci_low", "ci_high")}} for r in rows]


def _line(ax, sel: list[dict], axis: tuple[str, list], label: str) -> None:
    """Values along one panel axis with their interval bars; axis: (its name, every value it
    takes), each value at its own x whatever the series lacks."""
    (name, ticks), sel = axis, sorted(sel, key=lambda r: r[axis[0]])
    x = np.array([ticks.index(r[name]) for r in sel])
    m = np.array([float(r["mean"]) for r in sel])
    lo, hi = np.array([float(r["ci_low"]) for r in sel]), np.array([float(r["ci_high"]) for r in sel])
    ax.errorbar(x, m, yerr=[m - lo, hi - m], marker="o", capsize=3, label=label)
    ax.set_xticks(range(len(ticks)), [str(v) for v in ticks])
    ax.set_xlabel(name)


def panels_md(rows: list[dict]) -> str:
    """The top-level report: one table per (lambda, C), a line per panel."""
    out = ["# The panels side by side", "", "Each panel's own report is in its folder. All-pairs means with 95% "
           "intervals (seeds resampled); test accuracy: mean [min, max] over seeds. `panels.csv` holds "
           "these rows; `figures/panels.png` draws them. PE's chance is 1/H: across widths compare "
           "(PE - 1/H)/(1 - 1/H), not PE.", ""]
    header = "| " + " | ".join([*PANEL_AXES, *(s[3] for s in SHOWN)]) + " |"
    index = RowIndex(rows, PANEL_AXES)
    for cell in sorted({(r["lambda"], r["classes"]) for r in _shown(rows)}):
        out += [f"## lambda={cell[0]!r}, C={cell[1]}", "", header, "|" + "---|" * (len(PANEL_AXES) + len(SHOWN))]
        for panel in _panels(rows):
            found = [index.get(RowKey(*cell, t, m, mode), at=panel) for t, m, mode, _ in SHOWN]
            cols = ["n/a" if r is None or r["mean"] != r["mean"] else
                    f"{r['mean']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]" for r in found]
            out.append("| " + " | ".join([*map(str, panel), *cols]) + " |")
        out.append("")
    return "\n".join(out)
