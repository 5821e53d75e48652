"""The engine's pixel layout: MNIST's pixels permuted so that the ones most often non-zero come
first, and each image's extent in that order, so that a minibatch's GEMMs can skip the columns
where all its images are zero. Depends on the data alone, never on a run. Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from underspec.training.data import MNISTTensors


def pixel_columns(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixels sorted by how often they are non-zero in x (N, D), and each image's extent.

    Returns cols (D,), a permutation of the pixels, and last (N,): with x's columns in the order
    cols, image i is zero from column last[i] on. A minibatch then needs only its first max(last)
    columns in both GEMMs (about 78% of them on MNIST). It depends on the data alone, so it
    never couples configurations.
    """
    cols = torch.argsort((x != 0).sum(0), descending=True, stable=True)
    rank = torch.empty_like(cols)
    rank[cols] = torch.arange(1, x.shape[1] + 1)
    last = ((x != 0) * rank.to(torch.int16)).amax(1).long()
    return cols, last


@dataclass(frozen=True)
class Prepared:
    """MNIST with its pixels permuted by pixel_columns: cols (D,), last (N,), train_x (N, D),
    test_x (N_test, D)."""

    data: MNISTTensors
    cols: torch.Tensor
    last: torch.Tensor
    train_x: torch.Tensor
    test_x: torch.Tensor


_PREPARED: list[Prepared] = []  # one entry, reused across groups


def prepare(data: MNISTTensors) -> Prepared:
    """MNIST with pixels in pixel_columns' order, computed once per data set and process."""
    if not _PREPARED or _PREPARED[0].data is not data:
        cols, last = pixel_columns(data.train_x)
        _PREPARED[:] = [Prepared(data, cols, last, data.train_x.index_select(1, cols),
                                 data.test_x.index_select(1, cols))]
    return _PREPARED[0]
