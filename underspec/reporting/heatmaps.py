"""The lambda x C heatmaps the figures draw: the plane of cells, one heatmap (values, intervals,
marks, n/a columns) and the chance level of each metric marked on it (matplotlib, Agg backend)."""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from underspec.measures.results import RowIndex, RowKey  # noqa: E402


@dataclass
class Plane:
    """The lambda x C plane of a figure: the rows' lambdas and Cs, sorted, and the rows' index."""

    lambdas: list[float]
    classes: list[int]
    index: RowIndex

    @classmethod
    def of(cls, rows) -> Plane:
        return cls(sorted({r["lambda"] for r in rows}), sorted({r["classes"] for r in rows}), RowIndex(rows))

    def values(self, target: str, metric: str, mode: str, key: str = "mean") -> np.ndarray:
        """(len(lambdas), len(classes)) values of one column (`key`) of one kind of row, NaN where
        a cell has none."""
        M = np.full((len(self.lambdas), len(self.classes)), np.nan)
        for i, lam in enumerate(self.lambdas):
            for j, C in enumerate(self.classes):
                r = self.index.get(RowKey(lam, C, target, metric, mode))
                if r is not None:
                    M[i, j] = float(r[key])
        return M


@dataclass
class Heat:
    """One heatmap: values M (len(lambdas), len(classes)), its title, colour range, and the
    columns (values of C) printed n/a."""

    M: np.ndarray
    title: str
    vmin: float = 0.0
    vmax: float = 1.0
    na_cols: tuple = ()
    interval: tuple[np.ndarray, np.ndarray] | None = None  # (lo, hi), printed under each value
    marked: np.ndarray | None = None  # bool, like M: a "*" after the value
    fmt: str = ".2f"  # how each value is printed


def _cell_text(heat: Heat, i: int, j: int) -> str:
    text = f"{heat.M[i, j]:{heat.fmt}}" + ("*" if heat.marked is not None and heat.marked[i, j] else "")
    if heat.interval is not None and np.isfinite(heat.interval[0][i, j]):
        text += f"\n[{heat.interval[0][i, j]:.2f}, {heat.interval[1][i, j]:.2f}]"
    return text


def heatmap(ax, plane: Plane, heat: Heat):
    """One cell per (lambda, C), values (and intervals, when given) printed in the cells."""
    M, vmin, vmax, classes = heat.M, heat.vmin, heat.vmax, plane.classes
    im = ax.imshow(M, vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto", origin="lower")
    size = 6 if heat.interval is not None else 7
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            if classes[j] in heat.na_cols:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="grey")
            elif np.isfinite(M[i, j]):
                ax.text(j, i, _cell_text(heat, i, j), ha="center", va="center", fontsize=size,
                        color="white" if M[i, j] < 0.5 * (vmin + vmax) else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_xlabel("classes C")
    ax.set_yticks(range(len(plane.lambdas)), [repr(x) for x in plane.lambdas])
    ax.set_ylabel("lambda")
    ax.set_title(heat.title, fontsize=9)
    return im


def chance_by_c(rows, target, metric) -> dict[int, float]:
    """{C: chance level} of a metric: PE's is 1/H (`chance_uniform`); the APCs' and the function
    metrics' come from untrained networks (`chance_init`), the gradients' from shuffled entries
    (`chance_shuffle`). APC-2's and the disagreement's depend on C, hence one level per C."""
    if metric == "pe":
        target, mode = "params", "chance_uniform"
    else:
        mode = "chance_shuffle" if target == "grads" else "chance_init"
    by_c: dict[int, list] = {}
    for r in rows:
        if r["target"] == target and r["metric"] == metric and r["mode"] == mode and np.isfinite(r["mean"]):
            by_c.setdefault(r["classes"], []).append(r["mean"])
    return {c: float(np.mean(v)) for c, v in sorted(by_c.items())}


def chance_marks(ax, cb, rows, target, metric) -> str:
    """Mark a panel's chance: one line on the colour bar when it is the same at every C, else
    the level under each column. Returns the phrase for the title."""
    per_c = chance_by_c(rows, target, metric)
    if not per_c:
        return "chance n/a"
    levels = list(per_c.values())
    if max(levels) - min(levels) < 0.005:
        cb.ax.axhline(levels[0], color="red", lw=2)
        return f"chance {levels[0]:.3f}" + (f" (1/{round(1 / levels[0])})" if metric == "pe" else "") + \
            " (red line)"
    ax.set_xticks(ax.get_xticks(), [f"{t.get_text()}\n{per_c[int(t.get_text())]:.2f}"
                                    if int(t.get_text()) in per_c else t.get_text() for t in ax.get_xticklabels()])
    ax.set_xlabel("classes C (below: chance at that C)")
    return "chance per C under each column"
