"""The README's tables of the two studies, read from their metrics.csv (nothing typed in).

Usage: python docs/study_tables.py [--reports reports]
Prints markdown: for "sources", each class's share of the init+order disagreement, 1 - CKA and
1 - PE per cell; for "width", PE against its chance 1/H and the rotation null, disagreement and
the weight-matching loss barrier per width.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

CLASSES = ("jitter", "order", "init")


def load(path: Path) -> list[dict]:
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        for k in ("lambda", "mean", "ci_low", "ci_high"):
            r[k] = float(r[k]) if r[k] not in ("", "nan") else float("nan")
        r["classes"] = int(r["classes"])
    return rows


def get(rows, lam, C, target, metric, mode) -> dict | None:
    return next((r for r in rows if (r["lambda"], r["classes"], r["target"], r["metric"], r["mode"])
                 == (lam, C, target, metric, mode)), None)


def ci(r, f=lambda v: v) -> str:
    if r is None or r["mean"] != r["mean"]:
        return "n/a"
    lo, hi = sorted((f(r["ci_low"]), f(r["ci_high"])))
    return f"{f(r['mean']):.3f} [{lo:.3f}, {hi:.3f}]"


def sources_table(rows) -> str:
    out = ["| lambda | C | what | " + " | ".join(f"{c} / init+order" for c in CLASSES) + " | init+order |",
           "|---|---|---|" + "---|" * (len(CLASSES) + 1)]
    cells = sorted({(r["lambda"], r["classes"]) for r in rows if r["mode"].startswith("pairs_")})
    for lam, C in cells:
        for target, metric, label, f in (("function", "disagreement", "disagreement", lambda v: v),
                                         ("function", "cka", "1 - CKA", lambda v: 1 - v),
                                         ("params", "pe", "1 - PE", lambda v: 1 - v)):
            base = get(rows, lam, C, target, metric, "pairs_init+order")
            if base is None or base["mean"] != base["mean"] or f(base["mean"]) == 0:
                continue
            shares = [get(rows, lam, C, target, metric, f"pairs_{c}") for c in CLASSES]
            cols = [f"{f(s['mean']) / f(base['mean']):.2f}" if s else "n/a" for s in shares]
            out.append(f"| {lam!r} | {C} | {label} | " + " | ".join(cols) + f" | {ci(base, f)} |")
    return "\n".join(out)


def width_table(reports: Path) -> str:
    out = ["| lambda | H | test acc | PE [95% CI] | (PE - 1/H)/(1 - 1/H) | rotation null PE | PE - null | "
           "disagreement | loss barrier (weight matching) |", "|---|---|---|---|---|---|---|---|---|"]
    panels = sorted(reports.glob("width/h*-lr*-b*/metrics.csv"), key=lambda p: int(p.parent.name[1:].split("-")[0]))
    for lam in (0.0, 0.001):
        for path in panels:
            rows, H = load(path), int(path.parent.name[1:].split("-")[0])
            C = rows[0]["classes"]
            norm = (lambda v, h=H: (v - 1 / h) / (1 - 1 / h))
            acc = get(rows, lam, C, "function", "test_acc", "seeds")
            out.append(f"| {lam!r} | {H} | {acc['mean']:.4f} | {ci(get(rows, lam, C, 'params', 'pe', 'all_pairs'))} | "
                       f"{ci(get(rows, lam, C, 'params', 'pe', 'all_pairs'), norm)} | "
                       f"{ci(get(rows, lam, C, 'params', 'pe', 'chance_rotation'))} | "
                       f"{ci(get(rows, lam, C, 'params', 'pe', 'minus_rotation'))} | "
                       f"{ci(get(rows, lam, C, 'function', 'disagreement', 'all_pairs'))} | "
                       f"{ci(get(rows, lam, C, 'barrier', 'loss_barrier.weight', 'all_pairs'))} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", default=str(Path(__file__).resolve().parent.parent / "reports"))
    args = ap.parse_args()
    reports = Path(args.reports)
    print("### sources\n\n" + sources_table(load(reports / "sources" / "metrics.csv")) + "\n")
    print("### width\n\n" + width_table(reports) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
