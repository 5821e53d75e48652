"""The private torch APIs the engine calls, in one place: an ATen op without a public Python
name and the `torch._foreach_*` list kernels. Verified on torch VERIFIED_ON;
tests/test_torch_shim.py checks each against its public equivalent (bitwise, as the engine relies
on it) and fails, naming the call, when a torch upgrade changes its behaviour or the version.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

VERIFIED_ON = "2.14.1"


def relu_backward(grad: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """ReLU's backward: grad where z > 0, else 0 (z == 0 included); grad and z of one shape.
    `torch.ops.aten.threshold_backward(grad, z, 0)`: one kernel, no mask tensor."""
    return torch.ops.aten.threshold_backward(grad, z, 0)


def add_each_(tensors: Sequence[torch.Tensor], others: Sequence[torch.Tensor]) -> None:
    """tensors[i] += others[i] for every i, in place (`torch._foreach_add_`)."""
    torch._foreach_add_(tensors, others)


def addcmul_each_(tensors: Sequence[torch.Tensor], t1: Sequence[torch.Tensor], t2: Sequence[torch.Tensor],
                  value: float) -> None:
    """tensors[i].addcmul_(t1[i], t2[i], value=value) for every i, in place
    (`torch._foreach_addcmul_`; t2[i] may broadcast against t1[i])."""
    torch._foreach_addcmul_(tensors, t1, t2, value=value)
