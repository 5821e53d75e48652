"""Fused training engine: configurations that share one minibatch stream (group_key: the order
seed, the branch epoch and post-branch order seed, the batch size, and the width) trained in one
pass; init seed, jitter, lambda, C and lr vary within a group. A branched child fuses with the
children of its stream and retrains its parent's first k epochs (bitwise the parent's: the same
stream, the same arithmetic) instead of loading them.

The models of a group share every minibatch, so their first layers are stacked into one
(M*H, 784) matrix and trained with a hand-written backward pass (no autograd). A configuration's
trajectory never depends on what it is trained with: the two wide GEMMs are row-invariant in the
fused width, the small second-layer products are batched per model (`bmm`, invariant in the batch
count at one intra-op thread; at two threads a batch of one was seen to round differently, hence
EngineSettings.threads = 1), and every other operation is elementwise or a reduction over a
fixed-size last dimension, with classes always padded to MAX_CLASSES. tests/test_engine.py checks
fused == alone bitwise. Each minibatch's GEMMs use only the pixel columns up to its last non-zero
pixel (see pixels.pixel_columns): that depends on the data alone. Pure: no I/O, no tracking. The private
torch calls are in torch_shim.

Shapes: M models, H hidden units, K = MAX_CLASSES padded classes, B batch, D = 784 pixels,
E epochs, P probe images.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from underspec.spec.settings import RunSettings, RunSpec
from underspec.training.data import MNISTTensors, fold_labels
from underspec.training.model import batch_slices, init_params, jitter_params, run_permutations
from underspec.training.pixels import prepare
from underspec.training.torch_shim import add_each_, addcmul_each_, relu_backward

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
    """State of M models of one group: W1 (M*H, D) with its columns in pixels.pixel_columns' order,
    b1 (M*H,), W2 (M, K, H), b2 (M, K), and each parameter's gradient summed over every step so
    far (`gsum`, same shapes).

    Padded classes have W2 rows 0 and b2 = -inf, so their logits are -inf, their softmax 0 and
    their gradients exactly 0: they never touch the real classes' arithmetic.
    """

    def __init__(self, specs: Sequence[RunSpec], data: MNISTTensors, dev, cols: torch.Tensor):
        M, H, K = len(specs), specs[0].hidden, MAX_CLASSES
        self.M, self.H = M, H
        inits = [jitter_params(init_params(sp.seed, sp.classes, H), sp.jitter) for sp in specs]
        # W1's columns are kept in the order `cols` (pixels most often non-zero first).
        self.W1 = torch.cat([p["W1"] for p in inits])[:, cols].contiguous().to(dev)
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
        self.gsum = {k: torch.zeros_like(getattr(self, k)) for k in PARAMS}
        self.gsum["b2"] = torch.zeros(M, K, device=dev)
        self.ytrain = torch.stack([fold_labels(data.train_y, sp.classes) for sp in specs]).to(dev)
        self.ytest = torch.stack([fold_labels(data.test_y, sp.classes) for sp in specs]).to(dev)
        self.gW1 = torch.empty_like(self.W1)
        self.sign = torch.empty_like(self.W1)
        self.class_ids = torch.arange(K, device=dev)[None, :, None]  # (1, K, 1)
        self.param_list = [self.W1, self.b1, self.W2, self.b2]
        self.gsum_list = [self.gsum[k] for k in PARAMS]

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
        dz = relu_backward(torch.bmm(self.W2.transpose(1, 2), dlog).view(M * H, B), zT)
        gb1 = dz.sum(-1)  # (M*H,)
        self.gW1[:, :k].addmm_(dz, xk, beta=0)  # (M*H, k): the fast layout for this product
        self.gW1[:, k:].zero_()
        if self.any_l1:  # L1 subgradient on W1 (torch's sign: 0 at 0)
            torch.sign(self.W1, out=self.sign)
            self.gW1.addcmul_(self.sign, self.lam_rows)
        grads = [self.gW1, gb1, gW2, gb2]  # the order of PARAMS
        norm = torch.linalg.vector_norm  # per model: the norm of the four parts' norms
        stats[2] += norm(torch.stack([norm(g.view(M, -1), dim=1) for g in grads]), dim=0)
        add_each_(self.gsum_list, grads)
        addcmul_each_(self.param_list, grads, self.lr_list, value=-1)

    def evaluate(self, x: torch.Tensor, P: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Test metrics {name: (M,)} on x (N, D), pixels in W1's column order, and the probe
        embeddings (M, H, P) of its first P images, from one forward pass."""
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
        raise ValueError(f"train_group needs one (order seed, branch, post-branch seed, batch size, width), got {keys}")
    dev = resolve_device(s.device)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    try:
        with torch.inference_mode():
            return _train(specs, data, s, dev, on_epoch or (lambda e: None))
    finally:
        torch.set_num_threads(old_threads)


def group_key(sp: RunSpec) -> tuple[int, int, int, int, int]:
    """What runs fused together share: the minibatch stream (order seed, branch epoch, post-branch
    order seed, batch size) and the width (the second layer's batched products need one H). Init
    seed, jitter, lambda, C and lr vary."""
    return (sp.order_seed, sp.branch, sp.branch_seed, sp.batch_size, sp.hidden)


def groups(specs: Sequence[RunSpec]) -> dict[tuple, list[RunSpec]]:
    """Specs by group_key, in first-seen order."""
    out: dict[tuple, list[RunSpec]] = {}
    for sp in specs:
        out.setdefault(group_key(sp), []).append(sp)
    return out


def _train(specs, data, s: EngineSettings, dev, on_epoch) -> list[RunResult]:
    prep = prepare(data)
    g = _Group(specs, data, dev, prep.cols)
    rec = _Recorder.empty(g, s, data.test_y, torch.argsort(prep.cols).to(dev))
    xtrain, xtest = prep.train_x.to(dev), prep.test_x.to(dev)
    n = len(xtrain)
    rec.state(g, 0)
    rec.emb[0] = g.evaluate(xtest, s.probe_size)[1].cpu()
    slices = batch_slices(n, specs[0].batch_size)
    perms = run_permutations(specs[0], n)
    for e in range(1, s.epochs + 1):
        stats = _epoch(g, xtrain, prep.last, next(perms), slices)
        test, h = g.evaluate(xtest, s.probe_size)
        rec.state(g, e)
        rec.emb[e] = h.cpu()
        rec.epoch_metrics(e, test, stats, len(slices), n)
        on_epoch(e)
    return [rec.result(m, sp) for m, sp in enumerate(specs)]


def _epoch(g: _Group, xtrain: torch.Tensor, last: torch.Tensor, cpu_perm: torch.Tensor,
           slices: list[slice]) -> torch.Tensor:
    """One epoch of SGD steps over xtrain (n, D) in the order cpu_perm (n,); returns the summed
    loss, hits and gradient norm per model (3, M)."""
    extents = [max(1, int(last[cpu_perm[sl]].max())) for sl in slices]  # on the CPU: no sync
    perm = cpu_perm.to(xtrain.device)
    yperm = g.ytrain.index_select(1, perm)  # (M, n): one gather per epoch, slices per step
    stats = torch.zeros(3, g.M, device=xtrain.device)
    for sl, k in zip(slices, extents, strict=True):
        g.step(xtrain.index_select(0, perm[sl]), k, yperm[:, sl], stats)
    return stats


@dataclass
class _Recorder:
    """What a group's training records, on the CPU: params and gsums {name: (E+1, *shape)} at the
    end of each epoch (0: the initialisation), the probe embeddings emb (E+1, M, H, P), metrics
    {name: (E, M)} for epochs 1..E, the probe labels y (P,) and inv_cols (D,), the permutation that
    puts W1's columns back in pixel order."""

    params: dict[str, torch.Tensor]
    gsums: dict[str, torch.Tensor]
    emb: torch.Tensor
    metrics: dict[str, torch.Tensor]
    y: torch.Tensor
    inv_cols: torch.Tensor

    @classmethod
    def empty(cls, g: _Group, s: EngineSettings, test_y: torch.Tensor, inv_cols: torch.Tensor) -> _Recorder:
        E, P = s.epochs, s.probe_size
        params = {k: torch.zeros((E + 1, *getattr(g, k).shape)) for k in PARAMS}
        gsums = {k: torch.zeros_like(v) for k, v in params.items()}
        return cls(params, gsums, torch.zeros(E + 1, g.M, g.H, P),
                   {k: torch.zeros(E, g.M) for k in METRICS}, test_y[:P], inv_cols)

    def state(self, g: _Group, e: int) -> None:
        """Copy the state at the end of epoch e, W1 back in pixel order."""
        for k in PARAMS:
            p, a = getattr(g, k), g.gsum[k]
            if k == "W1":
                p, a = p[:, self.inv_cols], a[:, self.inv_cols]
            self.params[k][e] = p.cpu()
            self.gsums[k][e] = a.cpu()

    def epoch_metrics(self, e: int, test: dict[str, torch.Tensor], stats: torch.Tensor, steps: int, n: int) -> None:
        """Epoch e's test metrics {name: (M,)} and its training stats (3, M) over `steps` steps
        of n images in all."""
        for k, v in test.items():
            self.metrics[k][e - 1] = v.cpu()
        self.metrics["train_loss"][e - 1] = (stats[0] / steps).cpu()
        self.metrics["train_acc"][e - 1] = (stats[1] / n).cpu()
        self.metrics["grad_norm"][e - 1] = (stats[2] / steps).cpu()

    def result(self, m: int, sp: RunSpec) -> RunResult:
        """Model m's RunResult: its rows of the fused W1 and b1, its real classes of W2 and b2."""
        H = self.emb.shape[2]
        rows, C = slice(m * H, (m + 1) * H), sp.classes
        pick = {"W1": lambda a: a[:, rows], "b1": lambda a: a[:, rows],
                "W2": lambda a: a[:, m, :C], "b2": lambda a: a[:, m, :C]}
        traj = {"epoch": np.arange(self.params["W1"].shape[0], dtype=np.int64)}
        for k in PARAMS:
            traj[k] = np.ascontiguousarray(pick[k](self.params[k]).numpy())
            traj["grad_" + k] = np.ascontiguousarray(pick[k](self.gsums[k]).numpy())
        embeddings = {"epoch": traj["epoch"], "h": np.ascontiguousarray(self.emb[:, m].transpose(1, 2).numpy()),
                      "y": self.y.numpy().astype(np.int64)}
        metrics = {k: v[:, m].numpy().astype(np.float64) for k, v in self.metrics.items()}
        return RunResult(sp, traj, embeddings, metrics)


def train_many(specs: Sequence[RunSpec], data: MNISTTensors, s: EngineSettings,
               on_epoch: Callable[[int], None] | None = None) -> list[RunResult]:
    """Train any set of configurations, one fused pass per group_key; results in the order of specs."""
    out: dict[RunSpec, RunResult] = {}
    for group in groups(specs).values():
        for r in train_group(group, data, s, on_epoch):
            out[r.spec] = r
    return [out[sp] for sp in specs]
