"""Fused training engine: every (lambda, C) configuration of one seed trained in one pass.

Configurations of one seed share every minibatch, so their first layers are stacked into one
(M*H, 784) matrix and trained with a hand-written backward pass (no autograd). A configuration's
trajectory never depends on what it is trained with: the two wide GEMMs are row-invariant in the
fused width, the small second-layer products are batched per model (`bmm`, invariant in the batch
count at one intra-op thread; at two threads a batch of one was seen to round differently, hence
EngineSettings.threads = 1), and every other operation is elementwise or a reduction over a
fixed-size last dimension, with classes always padded to MAX_CLASSES. tests/test_engine.py checks
fused == alone bitwise. Each minibatch's GEMMs use only the pixel columns up to its last non-zero
pixel (see pixel_order): that depends on the data alone. Pure: no I/O, no tracking.

Shapes: M models, H hidden units, K = MAX_CLASSES padded classes, B batch, D = 784 pixels.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from underspec.spec.settings import RunSettings, RunSpec
from underspec.training.data import MNISTTensors, fold_labels
from underspec.training.model import batch_slices, epoch_orders, init_params, jitter_params

MAX_CLASSES = 10
SPARSITY_EPS = 1e-3
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc",
           "l1_w1", "w1_sparsity", "inactive_units", "grad_norm")
PARAMS = ("W1", "b1", "W2", "b2")


@dataclass(frozen=True)
class EngineSettings(RunSettings):
    """The shared run settings (epochs, probe size), and how the engine computes: its intra-op
    threads (recorded with each run) and device. Width, lr and batch size are per run (RunSpec)."""

    threads: int = 1
    device: str = "cpu"


@dataclass
class RunResult:
    """Everything one configuration produced; arrays are float32 numpy, index 0 = initialisation."""

    spec: RunSpec
    trajectory: dict[str, np.ndarray]
    embeddings: dict[str, np.ndarray]
    metrics: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (E,) for epochs 1..E


class _Group:
    """State of M same-seed models. W1 (M*H, D), b1 (M*H,), W2 (M, K, H), b2 (M, K).

    Padded classes have W2 rows 0 and b2 = -inf, so their logits are -inf, their softmax 0 and
    their gradients exactly 0: they never touch the real classes' arithmetic.
    """

    def __init__(self, specs: Sequence[RunSpec], s: EngineSettings, data: MNISTTensors, dev,
                 order: torch.Tensor):
        M, H, K = len(specs), specs[0].hidden, MAX_CLASSES
        self.M, self.H, self.s = M, H, s
        inits = [jitter_params(init_params(sp.seed, sp.classes, H), sp.jitter) for sp in specs]
        # W1's columns are kept in `order` (pixels most often non-zero first), see pixel_order.
        self.W1 = torch.cat([p["W1"] for p in inits])[:, order].contiguous().to(dev)
        self.b1 = torch.cat([p["b1"] for p in inits]).to(dev)
        self.W2 = torch.zeros(M, K, H, device=dev)
        self.b2 = torch.full((M, K), float("-inf"), device=dev)
        for m, (sp, p) in enumerate(zip(specs, inits, strict=True)):
            self.W2[m, : sp.classes] = p["W2"].to(dev)
            self.b2[m, : sp.classes] = p["b2"].to(dev)
        lam = torch.tensor([sp.lam for sp in specs], dtype=torch.float32, device=dev)
        self.lam_rows = lam.repeat_interleave(H)[:, None]  # (M*H, 1)
        lr = torch.tensor([sp.lr for sp in specs], dtype=torch.float32, device=dev)
        # Per-model learning rates, shaped for each parameter: p -= lr * g as one addcmul (on the
        # CPU bitwise the scalar p.add_(g, alpha=-lr) of a single-lr loop).
        self.lr_list = [lr.repeat_interleave(H)[:, None], lr.repeat_interleave(H), lr[:, None, None], lr[:, None]]
        self.any_l1 = bool((lam != 0).any())
        self.acc = {k: torch.zeros_like(getattr(self, k)) for k in PARAMS}
        self.acc["b2"] = torch.zeros(M, K, device=dev)
        self.ytrain = torch.stack([fold_labels(data.train_y, sp.classes) for sp in specs]).to(dev)
        self.ytest = torch.stack([fold_labels(data.test_y, sp.classes) for sp in specs]).to(dev)
        self.gW1 = torch.empty_like(self.W1)
        self.sign = torch.empty_like(self.W1)
        self.class_ids = torch.arange(K, device=dev)[None, :, None]  # (1, K, 1)
        self.param_list = [self.W1, self.b1, self.W2, self.b2]
        self.acc_list = [self.acc[k] for k in PARAMS]

    def second_layer(self, aT: torch.Tensor) -> torch.Tensor:
        """aT (M, H, B) -> logits (M, K, B)."""
        return torch.baddbmm(self.b2[:, :, None], self.W2, aT)

    def step(self, xb: torch.Tensor, k: int, yb: torch.Tensor, stats: torch.Tensor) -> None:
        """One SGD step on xb (B, D) whose pixels >= k are all zero, folded labels yb (M, B);
        adds loss, hits and gradient norm per model to stats (3, M)."""
        M, H, B = self.M, self.H, xb.shape[0]
        xk = xb[:, :k]  # (B, k): the zero pixels add nothing to z and get no CE gradient
        zT = torch.addmm(self.b1[:, None], self.W1[:, :k], xk.t())  # (M*H, B)
        aT = zT.clamp_min(0).view(M, H, B)
        logits = self.second_layer(aT)  # (M, K, B)
        mx = logits.amax(1, keepdim=True)  # (M, 1, B)
        p = logits.sub(mx).exp_()
        ssum = p.sum(1, keepdim=True)
        p.div_(ssum)
        ly = logits.gather(1, yb[:, None, :])  # (M, 1, B)
        stats[0] += ssum.log_().add_(mx).sub_(ly).view(M, B).mean(-1)
        stats[1] += ly.eq_(mx).view(M, B).sum(-1)
        # Cross-entropy gradient (softmax - onehot) / B, then the hand-written backward.
        # onehot by comparison, not scatter: deterministic on every device.
        dlog = p.sub_((self.class_ids == yb[:, None, :]).to(p.dtype)).mul_(1.0 / B)
        gb2 = dlog.sum(-1)  # (M, K)
        gW2 = torch.bmm(dlog, aT.transpose(1, 2))  # (M, K, H)
        dz = torch.ops.aten.threshold_backward(torch.bmm(self.W2.transpose(1, 2), dlog).view(M * H, B), zT, 0)
        gb1 = dz.sum(-1)  # (M*H,)
        self.gW1[:, :k].addmm_(dz, xk, beta=0)  # (M*H, k): the fast layout for this product
        self.gW1[:, k:].zero_()
        if self.any_l1:  # L1 subgradient on W1 (torch's sign: 0 at 0)
            torch.sign(self.W1, out=self.sign)
            self.gW1.addcmul_(self.sign, self.lam_rows)
        grads = [self.gW1, gb1, gW2, gb2]  # the order of PARAMS
        norm = torch.linalg.vector_norm  # per model: the norm of the four parts' norms
        stats[2] += norm(torch.stack([norm(g.view(M, -1), dim=1) for g in grads]), dim=0)
        torch._foreach_add_(self.acc_list, grads)
        torch._foreach_addcmul_(self.param_list, grads, self.lr_list, value=-1)

    def evaluate(self, x: torch.Tensor, P: int):
        """Test metrics per model and the probe embeddings (M, H, P) from one forward pass."""
        M, H = self.M, self.H
        zT = torch.addmm(self.b1[:, None], self.W1, x.t())  # (M*H, N)
        inactive = (~(zT > 0).any(-1)).view(M, H).sum(1)
        logits = self.second_layer(zT.clamp_min(0).view(M, H, -1))  # (M, K, N)
        loss = (torch.logsumexp(logits, 1) - logits.gather(1, self.ytest[:, None, :])[:, 0]).mean(-1)
        acc = (logits.argmax(1) == self.ytest).float().mean(-1)
        absw = self.W1.abs().view(M, -1)
        metrics = {"test_loss": loss, "test_acc": acc, "inactive_units": inactive.float(),
                   "l1_w1": absw.sum(1), "w1_sparsity": (absw < SPARSITY_EPS).float().mean(1)}
        return metrics, zT[:, :P].reshape(M, H, P)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        # Deterministic CUDA kernels; the workspace setting must precede cuBLAS's first use.
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    return torch.device(name)


def train_group(specs: Sequence[RunSpec], data: MNISTTensors, s: EngineSettings,
                on_epoch: Callable[[int], None] | None = None) -> list[RunResult]:
    """Train configurations that share one minibatch stream (group_key), fused; returns one
    RunResult per spec, in order."""
    keys = sorted({group_key(sp) for sp in specs})
    if len(keys) != 1:
        raise ValueError(f"train_group needs one (order seed, batch size, width), got {keys}")
    dev = resolve_device(s.device)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    try:
        with torch.inference_mode():
            return _train(specs, data, s, dev, on_epoch or (lambda e: None))
    finally:
        torch.set_num_threads(old_threads)


def group_key(sp: RunSpec) -> tuple[int, int, int]:
    """What runs fused together share: the minibatch stream (order seed, batch size) and the width
    (the second layer's batched products need one H). Init seed, jitter, lambda, C and lr vary."""
    return (sp.order, sp.batch_size, sp.hidden)


def groups(specs: Sequence[RunSpec]) -> dict[tuple, list[RunSpec]]:
    """Specs by group_key, in first-seen order."""
    out: dict[tuple, list[RunSpec]] = {}
    for sp in specs:
        out.setdefault(group_key(sp), []).append(sp)
    return out


def pixel_order(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels sorted by how often they are non-zero in x (N, D), and each image's extent.

    Returns order (D,) and last (N,): with columns in this order, image i is zero from column
    last[i] on. A minibatch then needs only its first max(last) columns in both GEMMs (about
    78% of them on MNIST). It depends on the data alone, so it never couples configurations.
    """
    order = torch.argsort((x != 0).sum(0), descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(1, x.shape[1] + 1)
    last = ((x != 0) * rank.to(torch.int16)).amax(1).long()
    return order, last


_PREPARED: list = []  # one entry: (data, order, last, train_x, test_x), reused across groups


def _prepare(data: MNISTTensors):
    """MNIST with pixels in pixel_order, computed once per data set and process."""
    if not _PREPARED or _PREPARED[0][0] is not data:
        order, last = pixel_order(data.train_x)
        _PREPARED[:] = [(data, order, last, data.train_x.index_select(1, order),
                         data.test_x.index_select(1, order))]
    return _PREPARED[0][1:]


def _train(specs, data, s: EngineSettings, dev, on_epoch) -> list[RunResult]:
    order, last, xtrain, xtest = _prepare(data)
    inv = torch.argsort(order).to(dev)
    g = _Group(specs, s, data, dev, order)
    M, H, E, P = g.M, g.H, s.epochs, s.probe_size
    xtrain, xtest = xtrain.to(dev), xtest.to(dev)
    n = len(xtrain)
    rec = {k: torch.zeros((E + 1, *getattr(g, k).shape)) for k in PARAMS}
    grec = {k: torch.zeros_like(v) for k, v in rec.items()}
    emb = torch.zeros(E + 1, M, H, P)
    mets = {k: torch.zeros(E, M) for k in METRICS}
    _record(g, rec, grec, 0, inv)
    emb[0] = g.evaluate(xtest, P)[1].cpu()
    slices = batch_slices(n, specs[0].batch_size)
    orders = epoch_orders(specs[0].order, n)
    for e in range(1, E + 1):
        cpu_perm = next(orders)
        extents = [max(1, int(last[cpu_perm[sl]].max())) for sl in slices]  # on the CPU: no sync
        perm = cpu_perm.to(dev)
        yperm = g.ytrain.index_select(1, perm)  # (M, n): one gather per epoch, slices per step
        stats = torch.zeros(3, M, device=dev)
        for sl, k in zip(slices, extents, strict=True):
            g.step(xtrain.index_select(0, perm[sl]), k, yperm[:, sl], stats)
        test, h = g.evaluate(xtest, P)
        _record(g, rec, grec, e, inv)
        emb[e] = h.cpu()
        for k, v in test.items():
            mets[k][e - 1] = v.cpu()
        mets["train_loss"][e - 1] = (stats[0] / len(slices)).cpu()
        mets["train_acc"][e - 1] = (stats[1] / n).cpu()
        mets["grad_norm"][e - 1] = (stats[2] / len(slices)).cpu()
        on_epoch(e)
    return [_result(m, sp, rec, grec, emb, mets, data, H, P) for m, sp in enumerate(specs)]


def _record(g: _Group, rec, grec, e: int, inv: torch.Tensor) -> None:
    """Copy the state at the end of epoch e, W1 back in pixel order."""
    for k in PARAMS:
        p, a = getattr(g, k), g.acc[k]
        if k == "W1":
            p, a = p[:, inv], a[:, inv]
        rec[k][e] = p.cpu()
        grec[k][e] = a.cpu()


def _result(m, sp: RunSpec, rec, grec, emb, mets, data, H, P) -> RunResult:
    rows, C = slice(m * H, (m + 1) * H), sp.classes
    pick = {"W1": lambda a: a[:, rows], "b1": lambda a: a[:, rows],
            "W2": lambda a: a[:, m, :C], "b2": lambda a: a[:, m, :C]}
    traj = {"epoch": np.arange(rec["W1"].shape[0], dtype=np.int64)}
    for k in PARAMS:
        traj[k] = np.ascontiguousarray(pick[k](rec[k]).numpy())
        traj["grad_" + k] = np.ascontiguousarray(pick[k](grec[k]).numpy())
    embeddings = {"epoch": traj["epoch"], "h": np.ascontiguousarray(emb[:, m].transpose(1, 2).numpy()),
                  "y": data.test_y[:P].numpy().astype(np.int64)}
    metrics = {k: v[:, m].numpy().astype(np.float64) for k, v in mets.items()}
    return RunResult(sp, traj, embeddings, metrics)


def train_many(specs: Sequence[RunSpec], data: MNISTTensors, s: EngineSettings,
               on_epoch: Callable[[int], None] | None = None) -> list[RunResult]:
    """Train any set of configurations, one fused pass per group_key; results in the order of specs."""
    out: dict[RunSpec, RunResult] = {}
    for group in groups(specs).values():
        for r in train_group(group, data, s, on_epoch):
            out[r.spec] = r
    return [out[sp] for sp in specs]
