"""Figures of the analysis (matplotlib, Agg backend): Figure 3.1, metrics over epochs, function
and representation, aligned unit pictures, and PCA animations of the probe embeddings."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402

from underspec.measures.alignment import match, pearson_rows  # noqa: E402
from underspec.measures.barrier import METHODS  # noqa: E402
from underspec.reporting.heatmaps import Heat, Plane, chance_by_c, chance_marks, heatmap  # noqa: E402

NAMES = {"pe": "PE", "apc1": "APC-1", "apc2": "APC-2", "cka": "linear CKA", "disagreement": "disagreement"}


def fig3_1(rows, path: Path, mode: str = "reference") -> list[str]:
    """PE, APC-1, APC-2 as lambda x C heatmaps, parameters (top) and cumulative gradients (bottom),
    each value with its 95% interval and a "*" where all pairs exceed the rotation null (the
    interval of mode minus_rotation above 0); returns the panels' titles."""
    plane = Plane.of(rows)
    fig, axes = plt.subplots(2, 3, figsize=(21, 10), constrained_layout=True)
    titles, mode_said = [], {"reference": "pairs with the reference seed"}.get(mode, mode.replace("_", " "))
    for i, target in enumerate(("params", "grads")):
        for j, metric in enumerate(("pe", "apc1", "apc2")):
            title = f"{NAMES[metric]}, {'parameters' if i == 0 else 'gradients'} ({mode_said})"
            heat = Heat(plane.values(target, metric, mode), title, na_cols=(2,) if metric == "pe" else (),
                        interval=(plane.values(target, metric, mode, "ci_low"),
                                  plane.values(target, metric, mode, "ci_high")),
                        marked=plane.values(target, metric, "minus_rotation", "ci_low") > 0)
            im = heatmap(axes[i, j], plane, heat)
            said = chance_marks(axes[i, j], fig.colorbar(im, ax=axes[i, j]), rows, target, metric)
            axes[i, j].set_title(f"{title}\n{said}", fontsize=9)
            titles.append(f"{title}\n{said}")
    given = ", given the reference seed" if mode == "reference" else ""
    fig.suptitle(f"Figure 3.1 reproduced: seed-to-seed similarity, mean [95% interval, seeds resampled{given}]. "
                 "*: all pairs exceed the rotation null (trained minus null, its 95% interval above 0): "
                 "more than a shared subspace.\n"
                 "PE at C = 2 is n/a: W2 columns have two entries, every |Pearson| is 1 and the matching is a "
                 "tie (the authors' code gives `pe_authors`, chance by construction).", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return titles


def barriers_fig(rows, path: Path) -> None:
    """Test-loss barrier along the linear path after each matching, lambda x C, all pairs; the
    same-run yardstick (last two checkpoints of one run) last."""
    plane = Plane.of(rows)
    keys = [f"loss_barrier.{m}" for m in METHODS] + ["loss_barrier.same_run"]
    cols = (len(keys) + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(5.6 * cols, 9), constrained_layout=True, squeeze=False)
    for ax, k in zip(axes.flat, keys, strict=False):
        M = plane.values("barrier", k, "all_pairs")
        hi = float(np.nanmax(M)) if np.isfinite(M).any() and np.nanmax(M) > 0 else 1.0
        lo = min(0.0, float(np.nanmin(M))) if np.isfinite(M).any() else 0.0
        what = "same run, epochs E-1 and E" if k.endswith("same_run") else k.replace("loss_barrier.", "matching: ")
        cb = fig.colorbar(heatmap(ax, plane, Heat(M, what, vmin=lo, vmax=hi)), ax=ax)
        cb.set_label("test-loss barrier (nats)")
    for ax in axes.flat[len(keys):]:
        ax.set_axis_off()
    fig.suptitle("Loss barrier on the test set along (1 - a) theta_A + a P(theta_B), mean over all pairs of "
                 "seeds, in nats; each panel has its own colour scale (read the printed values across panels).\n"
                 "Last panel: the same run's epochs E-1 and E, the yardstick for 'close to zero'", fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def interpolation_fig(paths: dict, path: Path, alphas) -> None:
    """Test loss and error along alpha for a few cells: one curve per matching (mean over pairs of
    seeds), the band from the lowest to the highest pair. paths: {cell: {(a, b): {method: (loss, err)}}}."""
    cells = sorted(paths)
    fig, axes = plt.subplots(len(cells), 2, figsize=(11, 3.6 * len(cells)), squeeze=False, constrained_layout=True)
    for i, (lam, C) in enumerate(cells):
        for j, what in enumerate(("test loss", "test error")):
            ax = axes[i, j]
            for m in METHODS:
                curves = np.array([p[m][j] for p in paths[(lam, C)].values()])  # (pairs, alphas)
                line, = ax.plot(alphas, curves.mean(0), label=m)
                ax.fill_between(alphas, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
            ax.set_title(f"{what}, lambda={lam!r}, C={C}: mean over pairs, band min-max over pairs", fontsize=9)
            ax.set_xlabel("alpha (0: network A, 1: network B aligned to A)")
    axes[0, 0].legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def rotation_fig(rows, path: Path) -> None:
    """Trained (all pairs) beside the rotation null, APC-1 and PE, for parameters and gradients:
    where the two look alike, the similarity is a shared subspace, not corresponding units."""
    plane = Plane.of(rows)
    fig, axes = plt.subplots(2, 4, figsize=(20, 8), constrained_layout=True)
    for i, target in enumerate(("params", "grads")):
        for j, (metric, mode) in enumerate((("apc1", "all_pairs"), ("apc1", "chance_rotation"),
                                            ("pe_authors", "all_pairs"), ("pe_authors", "chance_rotation"))):
            M = plane.values(target, metric, mode)
            what = "trained" if mode == "all_pairs" else "rotation null"
            name = "PE (the authors' at C = 2)" if metric == "pe_authors" else NAMES[metric]
            im = heatmap(axes[i, j], plane, Heat(M, f"{name}, {target}: {what}"))
            fig.colorbar(im, ax=axes[i, j])
    fig.suptitle("Trained networks beside the rotation null (the other network's live units re-mixed by a "
                 "random rotation: same subspace, unit identity scrambled). Trained minus null, with its "
                 "interval: mode minus_rotation in metrics.csv.", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def over_epochs(erows, path: Path, rows=()) -> None:
    """APC-1 and PE against epoch, one line per lambda, at the largest C (reference mode); the
    cumulative gradient is zero at epoch 0, so the gradient curves start at epoch 1."""
    C = max(r["classes"] for r in erows)
    lambdas = sorted({r["lambda"] for r in erows})
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True, sharex=True)
    for i, target in enumerate(("params", "grads")):
        for j, metric in enumerate(("apc1", "pe")):
            ax = axes[i, j]
            for lam in lambdas:
                pts = sorted((r["epoch"], r["mean"]) for r in erows if r["classes"] == C
                             and r["lambda"] == lam and r["target"] == target and r["metric"] == metric)
                if pts:
                    ax.plot(*zip(*pts, strict=True), label=f"lambda={lam!r}")
            level = chance_by_c(rows, target, metric).get(C, float("nan"))
            if np.isfinite(level):
                ax.axhline(level, color="red", ls="--", lw=1, label=f"chance {level:.2f}")
            ax.set_title(f"{NAMES[metric]} of {target} over training, C={C}\n(reference mode: the reference seed "
                         "against each other)", fontsize=8)
            ax.set_xlabel("epoch")
            ax.set_ylim(0, 1)
    axes[0, 0].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def function_fig(rows, path: Path) -> None:
    """Representation (CKA) and function (disagreement, accuracy spread) across seeds."""
    plane = Plane.of(rows)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
    for ax, (metric, mode, vmax, title) in zip(axes, [
            ("cka", "all_pairs", 1.0, "linear CKA of probe embeddings (all pairs)"),
            ("disagreement", "all_pairs", None, "test-set prediction disagreement (all pairs)"),
            ("test_acc", "seeds", None, "final test accuracy, mean over seeds")], strict=True):
        M = plane.values("function", metric, mode)
        hi = vmax if vmax else (np.nanmax(M) if np.isfinite(M).any() else 1.0)
        lo = 0.0 if metric != "test_acc" else (np.nanmin(M) if np.isfinite(M).any() else 0.0)
        ch = plane.values("function", metric, "chance_init")
        if np.isfinite(ch).any():
            hi = max(hi, np.nanmax(ch))
        cb = fig.colorbar(heatmap(ax, plane, Heat(M, title, vmin=lo, vmax=hi)), ax=ax)
        if metric != "test_acc":
            said = chance_marks(ax, cb, rows, "function", metric)
            ax.set_title(f"{title}\n{said} (untrained networks)", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def unit_pictures(seeds: dict, ref: int, key: str, path: Path, title: str) -> None:
    """Each seed's W1 rows (or cumulative W1 gradients) as 28x28 images, units in the reference's
    order through the Hungarian matching, and the across-seed variance of the aligned units."""
    shown = [ref] + [s for s in sorted(seeds) if s != ref]
    A = seeds[ref].traj[key][-1].astype(np.float64)
    H = A.shape[0]
    aligned = []
    for s in shown:
        B = seeds[s].traj[key][-1].astype(np.float64)
        perm = match(pearson_rows(A, B))
        sign = np.sign(pearson_rows(A, B)[np.arange(H), perm])[:, None]
        aligned.append(B[perm] * np.where(sign == 0, 1, sign))
    aligned = np.stack(aligned)  # (S, H, 784), sign-flipped so matched units look alike
    fig, axes = plt.subplots(len(shown) + 1, H, figsize=(H * 0.9 + 1.2, (len(shown) + 1) * 0.95 + 0.4))
    lim, var = np.abs(aligned).max() or 1.0, aligned.var(0)  # var: (H, 784) across seeds
    for r in range(len(shown) + 1):
        for u in range(H):
            ax = axes[r, u]
            if r < len(shown):
                weights = ax.imshow(aligned[r, u].reshape(28, 28), cmap="RdBu_r", vmin=-lim, vmax=lim)
            else:
                spread = ax.imshow(var[u].reshape(28, 28), cmap="magma", vmin=0, vmax=var.max() or 1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if u == 0:
                ax.set_ylabel("var" if r == len(shown) else f"s{shown[r]}", fontsize=7)
    _colour_bar(fig, weights, axes[:-1], "weight (sign-aligned)")
    _colour_bar(fig, spread, axes[-1:], "variance over seeds")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _colour_bar(fig, im, axes, label: str) -> None:
    cb = fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01)
    cb.set_label(label, fontsize=7)
    cb.ax.tick_params(labelsize=6)


def pca_gif(embeddings: dict[int, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """Animated 2-D PCA of the probe embeddings per epoch, one panel per seed (PCA fitted per
    seed and epoch, as in the paper). embeddings[seed] = (h (E+1, P, H), y (P,))."""
    seeds = sorted(embeddings)
    E = min(h.shape[0] for h, _ in embeddings.values())
    cols = min(4, len(seeds))
    rows = -(-len(seeds) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)

    def frame(e):
        for ax, s in zip(axes.flat, seeds, strict=False):
            h, y = embeddings[s]
            X = h[e] - h[e].mean(0)
            _, _, vt = np.linalg.svd(X, full_matrices=False)
            Z = X @ vt[:2].T
            ax.clear()
            ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=3, vmin=0, vmax=9)
            ax.set_title(f"seed {s}, epoch {e}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(title, fontsize=9)

    for ax in list(axes.flat)[len(seeds):]:
        ax.axis("off")
    anim = animation.FuncAnimation(fig, frame, frames=range(E), interval=200)
    anim.save(path, writer=animation.PillowWriter(fps=5))
    plt.close(fig)
