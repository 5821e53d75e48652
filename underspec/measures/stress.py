"""The seeds under distribution shift: per run, accuracy and cross-entropy on each shifted set; per
cell, the seed spread, the shifted-to-iid spread ratio, prediction disagreement, the seed
ensemble, and how much of the spread finite test-set noise explains (Jordan 2023). Pure torch/numpy.

Rows have metrics.csv's columns with target `stress` and metrics named `<statistic>.<shift>`
(the shift `identity` is the iid test set). Modes: `seed_bootstrap` (value over the k seeds,
95% interval from resampling whole seeds), `seed_min` / `seed_max` (the extreme seed, no
interval), `all_pairs` (disagreement, the pair bootstrap of metrics.pair_summary), `ensemble`,
`measured` and `chance_bernoulli` (the noise ratio and its null's median and 95% range).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from underspec.measures.metrics import disagreement, pair_summary

TARGET = "stress"
IID = "identity"
MAX_FUSED_UNITS = 512  # hidden units of several seeds in one first-layer product (bounds its memory)
HEAVY_DRAWS = 200  # resamples of the ensemble interval and draws of the noise null (each costs k x n)


@dataclass
class RunOutputs:
    """One run on one shifted set: predictions (n,) int64, softmax (n, C) float32, accuracy and
    mean cross-entropy (folded labels, no L1 term)."""

    pred: np.ndarray
    prob: np.ndarray
    acc: float
    loss: float


def logits(net: dict[str, np.ndarray], X: torch.Tensor) -> torch.Tensor:
    """(n, C) float32 logits of the final weights W1 (H, 784), b1 (H,), W2 (C, H), b2 (C,) on
    X (n, 784) float32: the operations by which the analysis predicts the iid test set."""
    W1, b1, W2, b2 = (torch.from_numpy(np.asarray(net[k])) for k in ("W1", "b1", "W2", "b2"))
    with torch.no_grad():
        return torch.relu(X @ W1.T + b1) @ W2.T + b2


def seeds_logits(nets: list[dict[str, np.ndarray]], X: torch.Tensor) -> list[torch.Tensor]:
    """`logits` of k networks of one width on X (n, 784): the k first layers as one product
    X @ (k*H, 784).T (a wider product runs about 1.6x faster than k narrow ones here); the
    second layers one by one. (k,) tensors (n, C)."""
    H = nets[0]["W1"].shape[0]
    if any(net["W1"].shape[0] != H for net in nets):
        raise ValueError(f"seeds_logits: widths {[net['W1'].shape[0] for net in nets]} differ")
    group = max(1, MAX_FUSED_UNITS // H)  # seeds per product: (n, group*H) float32 at most
    if len(nets) > group:
        return [z for i in range(0, len(nets), group) for z in seeds_logits(nets[i:i + group], X)]
    W1 = torch.from_numpy(np.concatenate([np.asarray(net["W1"]) for net in nets]))  # (k*H, 784)
    b1 = torch.from_numpy(np.concatenate([np.asarray(net["b1"]) for net in nets]))  # (k*H,)
    with torch.no_grad():
        hidden = torch.relu(X @ W1.T + b1)  # (n, k*H)
        return [hidden[:, i * H:(i + 1) * H] @ torch.from_numpy(np.asarray(net["W2"])).T
                + torch.from_numpy(np.asarray(net["b2"])) for i, net in enumerate(nets)]


def run_outputs(net: dict[str, np.ndarray], X: torch.Tensor, y: torch.Tensor,
                z: torch.Tensor | None = None) -> RunOutputs:
    """A run's outputs on X (n, 784) with folded labels y (n,) int64; z: its (n, C) logits there,
    when computed already (`seeds_logits`)."""
    z = logits(net, X) if z is None else z
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"run_outputs: {z.shape[0]} images but {y.shape[0]} labels")
    pred, logp = z.argmax(1), torch.log_softmax(z, 1)
    loss = torch.nn.functional.nll_loss(logp, y)  # cross_entropy's own two steps, the log-softmax kept
    return RunOutputs(pred.numpy(), logp.exp().numpy(), float((pred == y).double().mean()), float(loss))


def _row(lam, C, metric, mode, stats):
    mean, std, lo, hi, n = stats
    return {"lambda": lam, "classes": C, "target": TARGET, "metric": metric, "mode": mode,
            "mean": mean, "std": std, "ci_low": lo, "ci_high": hi, "n_pairs": n}


def _boot(value: float, boots: np.ndarray, n: int, std=float("nan")):
    finite = boots[np.isfinite(boots)]
    lo, hi = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
    return float(value), float(std), float(lo), float(hi), n


def spread_stats(acc: np.ndarray, idx: np.ndarray) -> dict[str, tuple]:
    """acc (k,) accuracies of k seeds, idx (B, k) seed resamples: {statistic: (value, std, ci_low,
    ci_high, k)} for the mean, the std (ddof 1) and max - min."""
    k, A = len(acc), acc[idx]  # (B, k)
    std = float(acc.std(ddof=1)) if k > 1 else float("nan")
    return {"acc": _boot(acc.mean(), A.mean(1), k, std),
            "acc_std": _boot(std, A.std(1, ddof=1), k),
            "acc_range": _boot(acc.max() - acc.min(), A.max(1) - A.min(1), k)}


def std_ratio(acc: np.ndarray, acc_iid: np.ndarray, idx: np.ndarray) -> tuple:
    """The shifted std over the iid std, both (k,), its interval from the same resamples idx (B, k)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        iid = acc_iid.std(ddof=1)
        value = acc.std(ddof=1) / iid if iid > 0 else float("nan")
        boots = acc[idx].std(1, ddof=1) / acc_iid[idx].std(1, ddof=1)
    return _boot(value, np.where(np.isfinite(boots), boots, np.nan), len(acc))


def ensemble_correct(prob: np.ndarray, pred: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Correct counts (B,) of the ensembles that average k seeds' softmax prob (k, n, C) with
    weights (B, k). Only images on which the seeds' predictions pred (k, n) differ are averaged:
    where every seed predicts one class, so does any weighted mean of their softmax."""
    split = (pred != pred[:1]).any(0)  # (n,)
    agreed = int((pred[0][~split] == y[~split]).sum())
    P, ys = prob[:, split], torch.from_numpy(y[split])  # (k, d, C), (d,)
    k, d, C = P.shape
    if d == 0:
        return np.full(len(weights), agreed, np.int64)
    flat = torch.from_numpy(np.ascontiguousarray(P.reshape(k, d * C)))
    W = torch.from_numpy(weights).to(flat.dtype)
    out = np.empty(len(weights), np.int64)
    for i in range(0, len(weights), 50):  # (50, d, C) at a time: one product, torch's argmax (first maximum)
        avg = (W[i : i + 50] @ flat).reshape(-1, d, C)
        out[i : i + 50] = agreed + (avg.argmax(2) == ys).sum(1).numpy()
    return out


def ensemble_stats(prob, pred, y, acc, idx) -> dict[str, tuple]:
    """The seed ensemble's accuracy (the mean of the k softmax outputs, prob (k, n, C)) and its gain
    over the mean single seed, with seed-resample intervals (idx (B, k), at most HEAVY_DRAWS)."""
    k, n = pred.shape
    value = float((prob.mean(0).argmax(1) == y).mean())
    idx = idx[:HEAVY_DRAWS]
    weights = np.stack([np.bincount(r, minlength=k) for r in idx]).astype(np.float32)  # (B, k)
    boots = ensemble_correct(prob, pred, y, weights) / n
    return {"ensemble_acc": _boot(value, boots, k),
            "ensemble_gain": _boot(value - acc.mean(), boots - acc[idx].mean(1), k)}


def noise_ratio(correct: np.ndarray) -> float:
    """Measured over noise variance of the k seeds' accuracies, correct (k, n) bool (Jordan 2023):
    noise = (1/n^2) sum_i k/(k-1) p_i (1 - p_i), p_i the share of seeds right on image i;
    measured = the variance (ddof 1) of the k accuracies. NaN when noise is 0."""
    k, n = correct.shape
    p = correct.mean(0)
    noise = float((k / (k - 1) * p * (1 - p)).sum() / n**2)
    measured = float(correct.mean(1).var(ddof=1))
    return measured / noise if noise > 0 else float("nan")


def noise_null(correct: np.ndarray, draws: int = HEAVY_DRAWS, rng_seed: int = 0) -> np.ndarray:
    """(draws,) noise ratios when every seed's correctness on image i is redrawn from
    Bernoulli(p_i), independently: the parametric bootstrap null of `noise_ratio`. Images every
    seed gets right (or wrong) stay so; only the others are drawn."""
    k, n = correct.shape
    p = correct.mean(0)
    open_ = (p > 0) & (p < 1)
    fixed, q = int(correct[:, p == 1].sum() // k), p[open_].astype(np.float32)
    rng, out = np.random.default_rng(rng_seed), np.empty(draws)
    for i in range(0, draws, 20):
        c = rng.random((min(20, draws - i), k, len(q)), dtype=np.float32) < q  # (b, k, m)
        acc = (fixed + c.sum(2)) / n  # (b, k)
        ph = c.mean(1)  # (b, m)
        noise = (k / (k - 1) * ph * (1 - ph)).sum(1) / n**2
        with np.errstate(divide="ignore", invalid="ignore"):
            out[i : i + len(c)] = np.where(noise > 0, acc.var(1, ddof=1) / noise, np.nan)
    return out


def noise_rows(lam, C, name: str, correct: np.ndarray) -> list[dict]:
    null = noise_null(correct)
    null = null[np.isfinite(null)]
    lo, mid, hi = np.percentile(null, [2.5, 50, 97.5]) if len(null) else (np.nan,) * 3
    metric, k = f"noise_ratio.{name}", correct.shape[0]
    return [_row(lam, C, metric, "measured", (noise_ratio(correct), np.nan, np.nan, np.nan, k)),
            _row(lam, C, metric, "chance_bernoulli", (float(mid), np.nan, float(lo), float(hi), len(null)))]


def shift_rows(lam, C, name: str, outs: list[RunOutputs], iid_acc: np.ndarray, y: np.ndarray, idx,
               pred: np.ndarray) -> list[dict]:
    """Every row of one cell and one shift; outs: the k seeds' outputs, in the order of idx's
    columns, and pred (k, n) their predictions stacked."""
    acc, prob = np.array([o.acc for o in outs]), np.stack([o.prob for o in outs])
    rows = [_row(lam, C, f"{m}.{name}", "seed_bootstrap", s) for m, s in spread_stats(acc, idx).items()]
    rows.insert(1, _row(lam, C, f"loss.{name}", "seed_bootstrap",
                        spread_stats(np.array([o.loss for o in outs]), idx)["acc"]))
    rows += [_row(lam, C, f"acc.{name}", f"seed_{m}", (float(f(acc)), np.nan, np.nan, np.nan, len(acc)))
             for m, f in (("min", np.min), ("max", np.max))]
    if name != IID:
        rows.append(_row(lam, C, f"std_ratio.{name}", "seed_bootstrap", std_ratio(acc, iid_acc, idx)))
    order = list(range(len(outs)))
    dis = {(a, b): disagreement(pred[a], pred[b]) for a, b in itertools.combinations(order, 2)}
    rows.append(_row(lam, C, f"disagreement.{name}", "all_pairs", pair_summary(dis, order, len(idx))))
    rows += [_row(lam, C, f"{m}.{name}", "ensemble", s) for m, s in ensemble_stats(prob, pred, y, acc, idx).items()]
    return rows + noise_rows(lam, C, name, pred == y[None, :])


def cell_stress_rows(lam, C, outputs: dict[str, list[RunOutputs]], y: np.ndarray, n_boot: int,
                     preds: dict[str, np.ndarray] | None = None) -> list[dict]:
    """The rows of one cell: outputs {shift: [the k seeds' RunOutputs]} with the identity (the
    iid test set) among them, y (n,) the folded labels; the same seed resamples for every shift.
    preds {shift: (k, n)}: the outputs' predictions stacked, when the caller has them."""
    k = len(outputs[IID])
    idx = np.random.default_rng(0).integers(0, k, size=(n_boot, k))  # (n_boot, k)
    iid = np.array([o.acc for o in outputs[IID]])
    preds = preds or {name: np.stack([o.pred for o in outs]) for name, outs in outputs.items()}
    return [r for name, outs in outputs.items() for r in shift_rows(lam, C, name, outs, iid, y, idx, preds[name])]
