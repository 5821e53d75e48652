"""Writing the analysis to a folder: tables, figures, animations and a report a reader can skim."""
from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import numpy as np

from underspec.measures.barrier import ALPHAS, METHODS
from underspec.measures.metrics import NEAR_DEAD_FRACTION
from underspec.measures.nulls import NOISE_BAND, ROTATION_DRAWS
from underspec.measures.results import (
    CSV_COLUMNS,
    EPOCH_COLUMNS,
    Analysis,
    RowIndex,
    RowKey,
    over_cells,
    with_interval,
)
from underspec.measures.stability import draws, stability_trend_rows
from underspec.measures.stress_trends import stress_link_rows, stress_trend_rows
from underspec.measures.trends import PE_MIN_CLASSES, link_row, share_rows, trend_rows
from underspec.reporting import figures
from underspec.reporting.heatmaps import chance_by_c
from underspec.reporting.sources_report import sources_fig, sources_md
from underspec.reporting.stability_report import stability_fig, stability_md
from underspec.reporting.stress_report import stress_figures, stress_md

TREND_COLUMNS = ["contrast", "statement", "estimate", "ci_low", "ci_high", "tie_margin", "verdict", "why"]


def gif_cells(spec: str, cells) -> list[tuple[float, int]]:
    """The cells to animate: 'none', explicit 'lambda:C' pairs, or 'auto' (two representative
    cells: the smallest non-zero lambda and lambda 0, each at the largest C)."""
    if spec == "none":
        return []
    if spec != "auto":
        want = [(float(a), int(b)) for a, b in (x.split(":") for x in spec.split(","))]
        return [c for c in want if c in cells]
    lams = sorted({lam for lam, _ in cells})
    C = max(c for _, c in cells)
    picks = [min([x for x in lams if x > 0], default=None), 0.0 if 0.0 in lams else None]
    return [(lam, C) for lam in picks if lam is not None and (lam, C) in cells]


def write_outputs(out: Path, cfg, analysis: Analysis) -> list[Path]:
    """One panel's outputs in `out`: metrics.csv, metrics_over_epochs.csv, the figures, trends.csv
    and report.md; returns the files written. cfg: the AnalyzeConfig."""
    rows, erows, loaded = analysis.rows, analysis.epoch_rows, analysis.loaded
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    files = [out / "metrics.csv", out / "metrics_over_epochs.csv"]
    files[0].write_text(to_csv(with_interval(rows), CSV_COLUMNS))
    files[1].write_text(to_csv(erows, EPOCH_COLUMNS))
    files += _metric_figures(analysis, figs)
    for (lam, C), seeds in sorted(loaded.cells.items()):
        ref = cfg.reference_seed if cfg.reference_seed in seeds else min(seeds)
        files += _cell_figures(figs, (lam, C), seeds, ref)
    trends, argmax = trends_of(loaded, rows, cfg.bootstrap)
    (out / "trends.csv").write_text(to_csv(trends, TREND_COLUMNS))
    family = {f: [t for t in trends if t["family"] == f] for f in ("pe", "stress", "stability")}
    (out / "report.md").write_text(report_md(cfg, loaded, rows, analysis.notes)
                                   + trends_md(family["pe"], argmax, loaded)
                                   + barrier_md(rows, loaded, trends) + sources_md(rows)
                                   + stress_md(rows, family["stress"]) + stability_md(rows, family["stability"]))
    files += [out / "trends.csv", out / "report.md"]
    return files


def _metric_figures(analysis: Analysis, figs: Path) -> list[Path]:
    """The figures drawn from the rows (and the kept cells' paths); returns those written."""
    rows, erows, files = analysis.rows, analysis.epoch_rows, []
    if any(r["mode"] == "reference" for r in rows):  # the paper's comparisons (none in a branch-only sweep)
        figures.fig3_1(rows, figs / "fig3_1.png")
        figures.fig3_1(rows, figs / "fig3_1_all_pairs.png", mode="all_pairs")
        figures.function_fig(rows, figs / "function.png")
        figures.rotation_fig(rows, figs / "rotation.png")
        files += [figs / "fig3_1.png", figs / "fig3_1_all_pairs.png", figs / "function.png", figs / "rotation.png"]
    if any(r["target"] == "barrier" for r in rows):
        figures.barriers_fig(rows, figs / "barriers.png")
        files.append(figs / "barriers.png")
    if analysis.loaded.paths:
        figures.interpolation_fig(analysis.loaded.paths, figs / "interpolation.png", ALPHAS)
        files.append(figs / "interpolation.png")
    main_erows = [e for e in erows if not e["metric"].startswith("w1_distance.")]
    if main_erows:
        figures.over_epochs(main_erows, figs / "over_epochs.png", rows)
        files.append(figs / "over_epochs.png")
    files += stress_figures(figs, rows, analysis.loaded)
    if sources_fig(rows, erows, figs / "sources.png"):
        files.append(figs / "sources.png")
    if stability_fig(rows, figs / "stability.png"):
        files.append(figs / "stability.png")
    return files


def _cell_figures(figs: Path, cell: tuple[float, int], seeds: dict, ref: int) -> list[Path]:
    """A kept cell's unit pictures (weights, cumulative gradients) and its PCA animation."""
    (lam, C), files = cell, []
    for key, what in (("W1", "weights"), ("grad_W1", "cumulative gradients")):
        p = figs / f"units_{key}_l{lam!r}_c{C}.png"
        figures.unit_pictures(seeds, ref, key, p, f"W1 {what}, lambda={lam!r}, C={C}: rows = seeds "
                              f"(s{ref} is the reference), units aligned to it; last row: variance")
        files.append(p)
    t0 = time.time()
    emb = {s: (sd.extra["h_all"], sd.extra["y"]) for s, sd in seeds.items() if "h_all" in sd.extra}
    if emb:
        p = figs / f"pca_l{lam!r}_c{C}.gif"
        figures.pca_gif(emb, p, f"probe embeddings, 2-D PCA per seed, lambda={lam!r}, C={C}")
        files.append(p)
        print(f"analyze: {p.name} took {time.time() - t0:.1f} s", file=sys.stderr)
    return files


def trends_of(loaded, rows, n_boot: int):
    """trends.csv's rows, each with its `family` (pe, barrier, stress; not a column), and the
    lambda argmax shares. PE's trend tests pool C >= PE_MIN_CLASSES; each contrast's tie margin
    pools the noise floors (`pe_noise`) of the cells it weighs."""
    noise = {(r["lambda"], r["classes"]): r["mean"] for r in rows
             if r["metric"] == "pe_noise" and r["mode"] == "all_pairs" and np.isfinite(r["mean"])}
    n_boot, seeds = max(n_boot, 200), sorted(loaded.seeds)
    trends, argmax = trend_rows(loaded.pe_pairs, seeds, n_boot, noise)
    stress = stress_trend_rows(loaded.stress_cells, n_boot)
    stress += stress_link_rows(loaded.stress_cells, loaded.pe_pairs, loaded.barriers, min(n_boot, 1000))
    highest = [{"contrast": f"pe_highest_at_{lam!r}", "statement": f"share of resamples in which lambda {lam!r} has "
                f"the highest mean PE over C >= {PE_MIN_CLASSES}", "estimate": v, "ci_low": float("nan"),
                "ci_high": float("nan"), "tie_margin": float("nan"), "verdict": "description",
                "why": "an argmax picked on the same resample is not tested"} for lam, v in argmax.items()]
    return ([{**r, "family": "pe"} for r in trends] + [{**r, "family": "pe_argmax"} for r in highest]
            + [{**r, "family": "barrier"} for r in barrier_trends(loaded, n_boot)]
            + [{**r, "family": "stress"} for r in stress]
            + [{**r, "family": "stability"} for r in stability_trends(loaded, n_boot)]), argmax


def stability_trends(loaded, n_boot: int) -> list[dict]:
    """The stability contrasts (measures.stability), one set of parent resamples for every cell."""
    if not loaded.stability:
        return []
    return stability_trend_rows(loaded.stability, loaded.parents, draws(loaded.parents, n_boot))


def barrier_trends(loaded, n_boot: int) -> list[dict]:
    """PE against the weight-matched loss barrier (a pair-level Spearman), and what share of the
    identity barrier each matching leaves, with its own interval."""
    if not loaded.barriers:
        return []
    seeds = sorted(loaded.seeds)
    pairs = {f"loss_barrier.{m}": {c: {k: v[f"loss_barrier.{m}"] for k, v in b.items()}
                                   for c, b in loaded.barriers.items()} for m in METHODS}
    link = link_row("pe_vs_loss_barrier", "pairs with higher PE have a lower weight-matched loss barrier",
                    {c: v for c, v in loaded.pe_pairs.items() if c[1] >= PE_MIN_CLASSES}, pairs["loss_barrier.weight"],
                    seeds, min(n_boot, 1000), -1)
    return [link] + share_rows(pairs, "loss_barrier.identity", seeds, n_boot)


def to_csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def trends_md(trends, argmax, loaded) -> str:
    if not trends:
        return ""
    lines = ["", "## The paper's trend claims, tested", "",
             f"One bootstrap over whole seeds ({len(loaded.seeds)} seeds), the same resamples for every cell; "
             f"PE of all pairs, C >= {PE_MIN_CLASSES} pooled; 95% intervals. Tie margin: twice the noise "
             "floor of the cells a contrast pools, sqrt(sum w_c^2 sigma_c^2) for a contrast sum w_c PE_c; a "
             "contrast whose whole interval lies within it is a tie (shown to be negligible).",
             "", "| claim | effect | 95% interval | tie margin | verdict | why |", "|---|---|---|---|---|---|"]
    lines += [f"| {t['statement']} | {t['estimate']:+.3f} | {t['ci_low']:+.3f} to {t['ci_high']:+.3f} "
              f"| {t['tie_margin']:.3f} | {t['verdict']} | {t['why']} |" for t in trends]
    lines += ["", f"Which lambda has the highest mean PE (over C >= {PE_MIN_CLASSES}), share of resamples "
              "(a description, not a test): " + ", ".join(f"{lam!r}: {share:.2f}" for lam, share in argmax.items())]
    return "\n".join(lines) + "\n"


def _mean_over_cells(rows, metric, mode="all_pairs", target="barrier"):
    v = [r["mean"] for r in over_cells(rows, target, metric, mode)]
    return (float(np.mean(v)), float(np.min(v)), float(np.max(v))) if v else (np.nan, np.nan, np.nan)


def barrier_md(rows, loaded, trends) -> str:
    """One basin up to permutation? The barriers per matching, what each removes, the agreement of
    the paper's and weight matching, and whether higher PE goes with a lower barrier."""
    if not loaded.barriers:
        return ""
    lines = ["", "## One basin up to permutation?", "",
             "Test-loss barrier along the linear path between two seeds' networks after aligning B's units "
             "to A's (mean over cells of the all-pairs means; range over cells). Yardstick: the barrier "
             "between one run's epochs E-1 and E.", "", "| matching | loss barrier | range | error barrier "
             "| of the identity barrier (grid means, 95% interval) |", "|---|---|---|---|---|"]
    for m in METHODS:
        mean, lo, hi = _mean_over_cells(rows, f"loss_barrier.{m}")
        err = _mean_over_cells(rows, f"error_barrier.{m}")[0]
        share = next((t for t in trends if t["contrast"] == f"share_of_loss_barrier.identity.loss_barrier.{m}"), None)
        left = (f"{share['estimate']:.0%} [{share['ci_low']:.0%}, {share['ci_high']:.0%}]" if share
                else "100%" if m == "identity" else "n/a")
        lines.append(f"| {m} | {mean:.3f} | {lo:.3f} to {hi:.3f} | {err:.3f} | {left} |")
    same = _mean_over_cells(rows, "loss_barrier.same_run")
    agree = _mean_over_cells(rows, "matching_agreement")
    link = next((t for t in trends if t["contrast"] == "pe_vs_loss_barrier"), None)
    rho, lo, hi = (link["estimate"], link["ci_low"], link["ci_high"]) if link else (np.nan,) * 3
    lines += [f"| same run, epochs E-1 and E | {same[0]:.3f} | {same[1]:.3f} to {same[2]:.3f} | | |", "",
              f"The paper's W1-only matching and weight matching agree on {agree[0]:.0%} of units (cells "
              f"{agree[1]:.0%} to {agree[2]:.0%}).", "",
              f"PE against the weight-matched loss barrier, pair by pair within cells (C >= {PE_MIN_CLASSES}), "
              "ranks pooled: "
              f"Spearman {rho:+.2f}, 95% interval {lo:+.2f} to {hi:+.2f} (seed bootstrap)."]
    return "\n".join(lines) + "\n"


def chance_text(rows) -> str:
    """PE's chance as the rows give it: 1/H for the sweep's H hidden units."""
    levels = sorted(set(chance_by_c(rows, "params", "pe").values()))
    return ", ".join(f"{x:.4f} (1/{round(1 / x)})" for x in levels) or "n/a"


def _ci(index: RowIndex, key: RowKey) -> str:
    """A table entry: the row's mean and, except for a mode `seeds` row, its 95% interval."""
    r = index.get(key)
    if r is None or not np.isfinite(r["mean"]):
        return "n/a"
    ci = f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]" if np.isfinite(r["ci_low"]) and key.mode != "seeds" else ""
    return f"{r['mean']:.3f}{ci}"


TABLE = [  # (header, target, metric, mode)
    ("PE", "params", "pe", "all_pairs"), ("PE (authors', C = 2)", "params", "pe_authors", "all_pairs"),
    ("PE rotation null", "params", "pe_authors", "chance_rotation"),
    ("PE minus null", "params", "pe_authors", "minus_rotation"), ("PE noise floor", "params", "pe_noise", "all_pairs"),
    ("APC-1", "params", "apc1", "all_pairs"), ("APC-1 rotation null", "params", "apc1", "chance_rotation"),
    ("APC-1 untrained", "params", "apc1", "chance_init"), ("APC-2", "params", "apc2", "all_pairs"),
    ("PE grads", "grads", "pe", "all_pairs"), ("PE last-epoch grads", "grads_last", "pe", "all_pairs"),
    ("corr(cum. grad, W0)", "grads", "corr_with_init", "seeds"), ("PE live", "params", "pe_live", "all_pairs"),
    ("PE live chance", "params", "pe_live_chance", "all_pairs"),
    ("near-dead units", "params", "near_dead_units", "seeds"), ("CKA", "function", "cka", "all_pairs"),
    ("disagreement", "function", "disagreement", "all_pairs"), ("test acc", "function", "test_acc", "seeds"),
]


def report_md(cfg, loaded, rows, notes) -> str:
    cells = sorted({(r["lambda"], r["classes"]) for r in rows})
    lines = [f"# Analysis of sweep `{cfg.sweep}`", "",
             f"{len(loaded.digests)} FINISHED training runs in {loaded.n_cells} (lambda, C) cells, "
             f"{len(cells)} compared. Primary: all pairs of seeds, with 95% intervals from {cfg.bootstrap} "
             "resamples of whole seeds. The `reference` rows of metrics.csv (the paper's procedure: the "
             f"reference seed, {'the smallest' if cfg.reference_seed < 0 else cfg.reference_seed}, against each "
             "other) share that one seed, so their intervals are conditional on it.", "", definitions(rows), "",
             "| lambda | C | " + " | ".join(h for h, *_ in TABLE) + " |", "|---|---|" + "---|" * len(TABLE)]
    index = RowIndex(rows)
    for lam, C in cells:
        lines.append(f"| {lam!r} | {C} | " + " | ".join(_ci(index, RowKey(lam, C, *k)) for _, *k in TABLE) + " |")
    if loaded.problems or notes:
        lines += ["", "## Problems and notes", ""] + [f"- {x}" for x in loaded.problems + notes]
    return "\n".join(lines) + "\n"


def definitions(rows) -> str:
    """The report's definitions paragraph: chance levels, nulls and the near-dead rule, with the
    numbers (draws, band, fraction) taken from the constants that set them."""
    return (f"Chance: PE {chance_text(rows)}; `pe_live`: `pe_live_chance`, the mean over pairs of "
            "1/max(n_live_a, n_live_b); APC of weights: independently initialised, untrained networks of the "
            "same C (`chance_init`); gradients: entries shuffled within each unit (`chance_shuffle`). Rotation "
            "null (`chance_rotation`): the other network's live units re-mixed by a Haar-random rotation, "
            f"{ROTATION_DRAWS} draws per pair; it keeps the span of the units and scrambles which is which, so "
            "trained values above it (`minus_rotation`, paired by pair, interval excluding 0) say the units "
            "correspond, not only the subspace. PE noise floor (`pe_noise`): the std of PE when the near-dead "
            f"weights (|w| <= {NOISE_BAND:g} lambda lr) are redrawn within that band; a trend contrast "
            "whose interval lies within twice the floor of the cells it pools is a tie. A unit is near-dead "
            "when its largest |weight| is below "
            f"{NEAR_DEAD_FRACTION:g} of the layer's largest; "
            "`*_live` metrics match live units only (for gradients, the live units of the weights). PE at "
            "C = 2 is n/a (every W2 |Pearson| is 1: a tie); `pe_authors` is the authors' code's value, the "
            "fraction of W1 matches with p1(i) == i there: chance by construction. APC-2 at C = 2 is 1 by "
            "construction. Gradients: `grads` is the gradient summed since initialisation (at lambda > 0 about "
            "W0 / lr, see `corr_with_init`), `grads_last` the gradient summed over the last epoch alone.")
