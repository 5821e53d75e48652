"""The stress suite in the report: figures/stress.png (lambda x C heatmaps of the shifted-to-iid
spread ratio, a panel per family at its strongest severity), figures/stress_scatter.png (per seed,
iid against shifted accuracy, D'Amour et al.'s picture), figures/stress_samples.png (sample
digits per shift) and the report.md section. Nothing is written when there are no stress rows."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from underspec.measures.results import RowIndex, RowKey, over_cells  # noqa: E402
from underspec.measures.stress import IID, TARGET  # noqa: E402


def _stress(rows) -> list[dict]:
    return [r for r in rows if r["target"] == TARGET]


def shift_names(rows) -> list[str]:
    """The shifts of the rows, in the order they were computed (the identity first)."""
    seen = {}
    for r in _stress(rows):
        if r["metric"].startswith("acc.") and r["mode"] == "seed_bootstrap":
            seen.setdefault(r["metric"].removeprefix("acc."), None)
    return list(seen)


def strongest(rows) -> list[str]:
    """Each family's last (most severe) shift: `rotate-40deg` of rotate-20deg, rotate-40deg."""
    by_family = {}
    for name in shift_names(rows):
        if name != IID:
            by_family[name.rsplit("-", 1)[0]] = name
    return list(by_family.values())


def stress_figures(figs: Path, rows, loaded) -> list[Path]:
    """The three stress figures, when the rows have stress rows; returns the files written."""
    rows = _stress(rows)
    if not rows:
        return []
    files = [figs / "stress.png", figs / "stress_scatter.png", figs / "stress_samples.png"]
    ratio_fig(rows, files[0])
    scatter_fig(loaded.stress.get("accs", {}), strongest(rows), files[1])
    samples_fig(loaded.stress.get("samples", {}), files[2])
    return files


def ratio_fig(rows, path: Path) -> None:
    """(lambda, C) heatmaps of std_ratio.<shift>, one panel per family's strongest shift."""
    names = strongest(rows)
    lams = sorted({r["lambda"] for r in rows})
    Cs = sorted({r["classes"] for r in rows})
    ncol = min(5, max(1, len(names)))
    nrow = -(-len(names) // ncol) or 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol + 0.6, 2.2 * nrow + 0.6), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        M = np.full((len(lams), len(Cs)), np.nan)
        for r in rows:
            if r["metric"] == f"std_ratio.{name}" and r["mode"] == "seed_bootstrap":
                M[lams.index(r["lambda"]), Cs.index(r["classes"])] = r["mean"]
        im = ax.imshow(np.log2(np.clip(M, 1 / 16, 16)), cmap="coolwarm", vmin=-4, vmax=4, aspect="auto", origin="lower")
        for i, j in zip(*np.nonzero(np.isfinite(M)), strict=True):
            ax.text(j, i, f"{M[i, j]:.1f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(Cs)), Cs, fontsize=6)
        ax.set_yticks(range(len(lams)), [repr(x) for x in lams], fontsize=6)
        ax.set_title(name, fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="log2(std shifted / std iid)")
    fig.suptitle("Seed spread of accuracy under shift over the iid spread (x: C, y: lambda)", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scatter_cells(cells) -> list[tuple[float, int]]:
    """Up to four cells: the smallest and largest lambda, each at the smallest and largest C."""
    lams, Cs = sorted({lam for lam, _ in cells}), sorted({C for _, C in cells})
    picks = [(lam, C) for lam in dict.fromkeys((lams[0], lams[-1])) for C in dict.fromkeys((Cs[0], Cs[-1]))]
    return [c for c in picks if c in cells]


def scatter_fig(accs: dict, names: list[str], path: Path) -> None:
    """Per seed, iid accuracy (x) against accuracy under each family's strongest shift (y)."""
    cells = scatter_cells(accs) if accs else []
    fig, axes = plt.subplots(1, max(1, len(cells)), figsize=(3.4 * max(1, len(cells)), 3.4), squeeze=False)
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    for ax, cell in zip(axes.flat, cells, strict=False):
        seeds = accs[cell]
        for c, name in enumerate(names):
            x = [seeds[s][IID] for s in seeds]
            ax.scatter(x, [seeds[s][name] for s in seeds], s=10, color=colors[c % 10], label=name)
        ax.set_xlabel("iid test accuracy", fontsize=8)
        ax.set_ylabel("accuracy under shift", fontsize=8)
        ax.set_title(f"lambda={cell[0]!r}, C={cell[1]}", fontsize=8)
        ax.tick_params(labelsize=6)
    if cells:
        axes.flat[0].legend(fontsize=5, loc="lower left")
    fig.suptitle("Seeds that tie on the test set, under shift (a point per seed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def samples_fig(samples: dict[str, np.ndarray], path: Path) -> None:
    """A row of sample digits (the first test images) per shift, as one mosaic; samples
    {shift: (m, 28, 28) uint8}."""
    names = list(samples)
    m = max((len(a) for a in samples.values()), default=1)
    mosaic = np.zeros((28 * max(1, len(names)), 28 * m), np.uint8)
    for i, name in enumerate(names):
        for j, digit in enumerate(samples[name]):
            mosaic[28 * i : 28 * i + 28, 28 * j : 28 * j + 28] = digit
    fig, ax = plt.subplots(figsize=(0.5 * m + 1.6, 0.5 * max(1, len(names)) + 0.4))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([28 * i + 14 for i in range(len(names))], names, fontsize=7)
    ax.set_xticks([])
    ax.set_title("The stress suite: the first test digits under each shift", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean(rows, metric, mode, over=np.mean) -> float:
    v = [r["mean"] for r in over_cells(rows, TARGET, metric, mode)]
    return float(over(v)) if v else float("nan")


def _count(rows, metric, test) -> tuple[int, int]:
    """(cells where test(row) holds, cells with a finite row) for metric in mode seed_bootstrap."""
    got = over_cells(rows, TARGET, metric, "seed_bootstrap", key="ci_low")
    return sum(bool(test(r)) for r in got), len(got)


def noise_counts(rows, name: str, index: RowIndex | None = None) -> tuple[int, int]:
    """(cells whose measured noise ratio lies above the null's 95% range, cells with both)."""
    above = n = 0
    index = index or RowIndex(rows)
    for r in over_cells(rows, TARGET, f"noise_ratio.{name}", "measured"):
        null = index.get(RowKey.of(r)._replace(mode="chance_bernoulli"))
        if null is not None and np.isfinite(null["ci_high"]):
            n += 1
            above += r["mean"] > null["ci_high"]
    return above, n


def stress_md(rows, trends=()) -> str:
    """The report's section: per shift, means over the compared cells, and interval counts; then
    the stress trend contrasts and the pair-level links (trends.csv rows of family `stress`)."""
    rows = _stress(rows)
    if not rows:
        return ""
    cells, index = len({(r["lambda"], r["classes"]) for r in rows}), RowIndex(rows)
    lines = ["", "## Does the difference matter? Seeds under shift", "",
             f"Every compared seed's final weights on each shifted copy of the test set (the stress suite; "
             f"`identity` is the iid test set), {cells} cells. Means over cells; 95% intervals from resampling "
             "whole seeds. *spread ratio*: the std over seeds of accuracy under the shift over the iid std, the "
             "median over cells (a ratio to a small iid std can be large), as is the *noise ratio*; "
             "*above 1*: the cells whose interval lies above 1. *noise above null*: the cells whose measured "
             "variance over the variance independent per-image errors give (Jordan 2023) lies above the "
             "Bernoulli null's 95% range: there the seeds really differ, beyond test-set sampling.", "",
             "| shift | accuracy | std over seeds | spread ratio | above 1 | disagreement | ensemble gain "
             "| noise ratio | noise above null |", "|---|---|---|---|---|---|---|---|---|"]
    for name in shift_names(rows):
        up, n = _count(rows, f"std_ratio.{name}", lambda r: r["ci_low"] > 1)
        na, nn = noise_counts(rows, name, index)
        ratio = f"{_mean(rows, f'std_ratio.{name}', 'seed_bootstrap', over=np.median):.2f}" if name != IID else "1"
        lines.append(f"| {name} | {_mean(rows, f'acc.{name}', 'seed_bootstrap'):.3f} "
                     f"| {_mean(rows, f'acc_std.{name}', 'seed_bootstrap'):.4f} | {ratio} "
                     f"| {f'{up}/{n}' if name != IID else ''} "
                     f"| {_mean(rows, f'disagreement.{name}', 'all_pairs'):.3f} "
                     f"| {_mean(rows, f'ensemble_gain.{name}', 'ensemble'):+.4f} "
                     f"| {_mean(rows, f'noise_ratio.{name}', 'measured', over=np.median):.2f} | {na}/{nn} |")
    return "\n".join(lines + trends_lines(trends)) + "\n"


def trends_lines(trends) -> list[str]:
    """The stress contrasts (pooled over the shifts, identity excluded, every C) and links, as a table."""
    if not trends:
        return []
    lines = ["", "Trends under shift, fixed beforehand, each statistic the mean over the shifts (the identity "
             "excluded), every C; one seed bootstrap for every cell. Tie margin: twice the test-set noise "
             "of the contrast itself, its std over resamples of the test images (the same for every cell) with "
             "the seeds fixed. Links: Spearman of a pair's disagreement under a shift with its "
             "PE (C >= 3) or its weight-matched loss barrier, ranked within each (cell, shift), pooled.", "",
             "| claim | effect | 95% interval | tie margin | verdict |", "|---|---|---|---|---|"]
    for t in trends:
        margin = f"{t['tie_margin']:.4f}" if np.isfinite(t["tie_margin"]) else "none"
        lines.append(f"| {t['statement']} | {t['estimate']:+.4f} | {t['ci_low']:+.4f} to {t['ci_high']:+.4f} "
                     f"| {margin} | {t['verdict']} |")
    return lines
