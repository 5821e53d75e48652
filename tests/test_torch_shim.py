"""The private torch calls of training/torch_shim.py against their public equivalents, bitwise
(the engine's trajectories rely on it), on small tensors shaped as the engine uses them; and the
torch version they were verified on. A failure names the private call."""
import torch

from underspec.training import torch_shim


def _bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape, dtype and bits (so -0.0 differs from 0.0, and NaNs compare)."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.view(torch.int32), b.view(torch.int32))


def _engine_like(seed: int = 0):
    """Parameters, gradients and per-model learning rates shaped as _Group's (M=3, H=4, K=10, D=6)."""
    g = torch.Generator().manual_seed(seed)
    M, H, K, D = 3, 4, 10, 6
    shapes = [(M * H, D), (M * H,), (M, K, H), (M, K)]
    params = [torch.randn(s, generator=g) for s in shapes]
    grads = [torch.randn(s, generator=g) * 1e-3 for s in shapes]
    lr = torch.tensor([0.01, 0.05, 0.003])
    lrs = [lr.repeat_interleave(H)[:, None], lr.repeat_interleave(H), lr[:, None, None], lr[:, None]]
    return params, grads, lrs


def test_threshold_backward_is_grad_times_z_above_zero():
    g = torch.Generator().manual_seed(1)
    grad, z = torch.randn(12, 9, generator=g), torch.randn(12, 9, generator=g)
    z[0, :4] = 0.0  # exactly 0: no gradient (strictly z > 0 passes)
    z[1, :2] = -0.0
    got = torch_shim.relu_backward(grad, z)
    assert torch.equal(got, grad * (z > 0)), "torch.ops.aten.threshold_backward(grad, z, 0) != grad * (z > 0)"
    want = torch.where(z > 0, grad, torch.zeros_like(grad))  # the bits: +0.0 where z <= 0
    assert _bits_equal(got, want), "torch.ops.aten.threshold_backward(grad, z, 0) != where(z > 0, grad, +0.0) bitwise"


def test_foreach_add_is_the_per_tensor_add():
    params, grads, _ = _engine_like()
    want = [p.clone().add_(q) for p, q in zip(params, grads, strict=True)]
    torch_shim.add_each_(params, grads)
    for i, (got, w) in enumerate(zip(params, want, strict=True)):
        assert _bits_equal(got, w), f"torch._foreach_add_ != per-tensor add_ (tensor {i})"


def test_foreach_addcmul_is_the_per_tensor_addcmul_and_the_scalar_sgd_step():
    params, grads, lrs = _engine_like(2)
    want = [p.clone().addcmul_(q, lr, value=-1) for p, q, lr in zip(params, grads, lrs, strict=True)]
    one_lr = [p.clone().add_(q, alpha=-0.01) for p, q in zip(params, grads, strict=True)]
    torch_shim.addcmul_each_(params, grads, lrs, value=-1)
    for i, (got, w) in enumerate(zip(params, want, strict=True)):
        assert _bits_equal(got, w), f"torch._foreach_addcmul_ != per-tensor addcmul_ (tensor {i})"
    # Model 0 trains at lr 0.01: bitwise the scalar step p.add_(g, alpha=-lr) of a single-lr loop.
    rows = [slice(0, 4), slice(0, 4), 0, 0]
    for i, (got, w, sl) in enumerate(zip(params, one_lr, rows, strict=True)):
        assert _bits_equal(got[sl], w[sl]), f"torch._foreach_addcmul_ != p.add_(g, alpha=-lr) (tensor {i})"


def test_torch_is_the_version_the_shim_was_verified_on():
    assert torch.__version__.startswith(torch_shim.VERIFIED_ON), (
        f"torch {torch.__version__}: underspec/training/torch_shim.py was verified on {torch_shim.VERIFIED_ON}; "
        "re-run tests/test_torch_shim.py and benchmarks/bitwise_check.py, then update VERIFIED_ON")
