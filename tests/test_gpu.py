"""The CUDA path, exercised whenever a GPU is present (skipped elsewhere, with the reason)."""
import numpy as np
import pytest
import torch

from underspec.training.engine import EngineSettings, RunSpec, train_group

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def test_cuda_fused_vs_alone_and_vs_cpu(mnist):
    """On CUDA bitwise independence is not promised: measure and bound the largest difference."""
    s_gpu = EngineSettings(epochs=1, probe_size=100, device="cuda")
    specs = [RunSpec(0, lam, c) for lam in (0.0, 0.001, 0.05) for c in (2, 6, 10)]
    fused = {r.spec: r for r in train_group(specs, mnist, s_gpu)}
    alone = train_group([specs[4]], mnist, s_gpu)[0]
    diff = np.abs(alone.trajectory["W1"][-1] - fused[specs[4]].trajectory["W1"][-1]).max()
    print(f"CUDA fused vs alone, max |dW1| after one epoch: {diff:.3g}")
    assert diff < 1e-4
    cpu = train_group([specs[4]], mnist, EngineSettings(epochs=1, probe_size=100, device="cpu"))[0]
    assert np.abs(cpu.trajectory["W1"][-1] - alone.trajectory["W1"][-1]).max() < 1e-4
    assert abs(cpu.metrics["test_acc"][0] - alone.metrics["test_acc"][0]) < 2e-3
