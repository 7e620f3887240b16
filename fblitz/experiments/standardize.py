"""Standardisation fitted on the training rows only (no test statistics leak in).

Example:
    >>> import torch
    >>> scaler = Standardizer.fit(torch.tensor([[1.0], [3.0]]))
    >>> scaler.transform(torch.tensor([[5.0]])).tolist()
    [[3.0]]
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError


class Standardizer(NamedTuple):
    """Per-column ``(x - mean) / scale``; ``scale`` is the population std, 1 for constant columns."""

    mean: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def fit(cls, train: torch.Tensor) -> Standardizer:
        """Column statistics of ``train`` (N, D), N >= 1."""
        _checks.tensor("train", train, ndim=2, floating=True, finite=True)
        if train.shape[0] == 0:
            raise FblitzValueError("train must have at least one row to standardise")
        scale = train.std(dim=0, unbiased=False)
        return cls(train.mean(dim=0), torch.where(scale > 0, scale, torch.ones_like(scale)))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / scale`` for ``x`` of shape (..., D)."""
        _checks.last_dim("x", x, self.mean.shape[0])
        return (x - self.mean) / self.scale

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Back to the original units: ``z * scale + mean``."""
        _checks.last_dim("z", z, self.mean.shape[0])
        return z * self.scale + self.mean
