"""Checks for class-probability inputs (internal).

Probabilities must be finite, in [0, 1] and sum to 1 over the last (class)
axis within a dtype-dependent tolerance; labels must be integer class indices
with one entry per row.
"""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError

# how far a row sum may stray from 1: rounding of a softmax, not a modelling error
_SUM_TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-4}
_LOW_PRECISION_TOLERANCE = 1e-2


def probabilities(name: str, value: object, *, ndim: int) -> torch.Tensor:
    """``value`` as a (..., C) tensor of probabilities summing to 1 over its last axis."""
    value = _checks.tensor(name, value, ndim=ndim, floating=True, finite=True)
    if value.shape[-1] < 2:
        raise FblitzValueError(f"{name} must have at least 2 classes in its last dimension, got {tuple(value.shape)}")
    if value.numel() and not bool(((value >= 0) & (value <= 1)).all()):
        raise FblitzValueError(
            f"{name} must hold probabilities in [0, 1], got values from {value.min()} to {value.max()}"
        )
    tolerance = _SUM_TOLERANCE.get(value.dtype, _LOW_PRECISION_TOLERANCE)
    error = (value.double().sum(dim=-1) - 1).abs()
    if error.numel() and float(error.max()) > tolerance:
        raise FblitzValueError(
            f"{name} must sum to 1 over its last (class) dimension (within {tolerance:g}); "
            f"the worst row sums to {1 + float(error.max()):.6g} -- pass softmax(logits), not logits"
        )
    return value


def labels(name: str, value: object, *, rows: int, classes: int) -> torch.Tensor:
    """``value`` as a (rows,) integer tensor of class indices in [0, classes)."""
    value = _checks.tensor(name, value, ndim=1)
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise FblitzTypeError(f"{name} must hold integer class indices, got dtype {value.dtype}")
    if value.shape[0] != rows:
        raise FblitzValueError(
            f"{name} must have one class index per row of the probabilities ({rows}), got {value.shape[0]}"
        )
    if rows and (int(value.min()) < 0 or int(value.max()) >= classes):
        raise FblitzValueError(
            f"{name} must lie in [0, {classes}) for {classes} classes, got values from {int(value.min())} "
            f"to {int(value.max())}"
        )
    return value


def non_empty(name: str, value: torch.Tensor) -> None:
    """Raise when ``value`` has no rows (an average over nothing)."""
    if value.shape[0] == 0:
        raise FblitzValueError(f"{name} must have at least one row, got shape {tuple(value.shape)}")
