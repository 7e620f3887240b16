"""Expected calibration error (ECE) and the data of a reliability diagram.

Rows are grouped by their top-label confidence ``max_c probs[c]``; in each bin
the mean confidence is compared with the accuracy, and the ECE is the
row-weighted mean of ``|accuracy - confidence|`` over the non-empty bins.

Example:
    >>> import torch
    >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> result = expected_calibration_error(probs, torch.tensor([0, 1, 0, 0]), n_bins=2)
    >>> round(result.ece, 4), result.bins.count.tolist()
    (0.25, [0, 4])
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.metrics import _probabilities

BINNINGS = ("equal_width", "equal_mass")


class ReliabilityBins(NamedTuple):
    """Per-bin data of a reliability diagram (all float64 except ``count``; shapes (B,)).

    Attributes:
        lower, upper: the bin's range of confidences. Equal-width bins hold
            confidences in ``(lower, upper]`` (the first also 0); equal-mass
            bins report the smallest and largest confidence they hold.
        confidence: mean top-label confidence of the bin's rows.
        accuracy: fraction of the bin's rows whose top label is right.
        count: rows in the bin (int64). Empty bins have NaN confidence,
            accuracy and, for equal-mass bins, NaN bounds.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor


class CalibrationError(NamedTuple):
    """The ECE (a float in [0, 1]) and the bins it was computed from."""

    ece: float
    bins: ReliabilityBins


def _bin_index(confidence: torch.Tensor, n_bins: int, binning: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Bin of each row and, for equal-width bins, the B + 1 edges."""
    if binning == "equal_width":
        edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
        return torch.bucketize(confidence, edges[1:-1]), edges
    # equal mass: split the rows sorted by confidence (stable, so ties keep row order) into B runs
    order = torch.sort(confidence, stable=True).indices
    sizes = [len(part) for part in torch.tensor_split(order, n_bins)]
    index = torch.empty_like(order)
    index[order] = torch.repeat_interleave(torch.arange(n_bins), torch.tensor(sizes))
    return index, None


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, *, n_bins: int = 15, binning: str = "equal_width"
) -> CalibrationError:
    """Top-label expected calibration error with equal-width or equal-mass bins.

    ``ECE = sum_b (n_b / N) * |accuracy_b - confidence_b|``.

    References:
        Naeini et al. (2015), *Obtaining well calibrated probabilities using
        Bayesian binning*; Guo et al. (2017), *On calibration of modern neural
        networks* (equal width); Nixon et al. (2019), *Measuring calibration in
        deep learning* (adaptive, equal mass).

    Args:
        probs: (N, C) class probabilities, N >= 1, rows summing to 1.
        labels: (N,) integer class indices.
        n_bins: number of bins B >= 1.
        binning: ``"equal_width"`` (B bins of width 1 / B on [0, 1]) or
            ``"equal_mass"`` (B bins of N / B rows each, adaptive; rows are
            split in order of confidence, so tied rows may share two bins).

    Returns:
        A :class:`CalibrationError` ``(ece, bins)``; ``bins`` is a
        :class:`ReliabilityBins` for a reliability diagram.

    Example:
        >>> import torch
        >>> probs = torch.tensor([[0.75, 0.25]] * 4)  # 75% confident, right 3 times out of 4
        >>> expected_calibration_error(probs, torch.tensor([0, 0, 0, 1])).ece
        0.0
    """
    probs = _probabilities.probabilities("probs", probs, ndim=2)
    _probabilities.non_empty("probs", probs)
    labels = _probabilities.labels("labels", labels, rows=probs.shape[0], classes=probs.shape[1])
    n_bins = _checks.integer("n_bins", n_bins, minimum=1)
    _checks.one_of("binning", binning, BINNINGS)
    confidence, predicted = probs.double().max(dim=1)
    correct = (predicted == labels).double()
    index, edges = _bin_index(confidence, n_bins, binning)
    count = torch.bincount(index, minlength=n_bins)
    sizes = count.double()
    mean_confidence = torch.bincount(index, weights=confidence, minlength=n_bins) / sizes
    mean_accuracy = torch.bincount(index, weights=correct, minlength=n_bins) / sizes
    if edges is None:
        nan = torch.full((n_bins,), float("nan"), dtype=torch.float64)
        lower = nan.scatter_reduce(0, index, confidence, "amin", include_self=False)
        upper = nan.scatter_reduce(0, index, confidence, "amax", include_self=False)
    else:
        lower, upper = edges[:-1], edges[1:]
    filled = count > 0
    gaps = (mean_accuracy - mean_confidence).abs()[filled]
    ece = float((sizes[filled] / probs.shape[0] * gaps).sum())
    return CalibrationError(ece, ReliabilityBins(lower, upper, mean_confidence, mean_accuracy, count))
