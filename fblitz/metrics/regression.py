"""Regression metrics: RMSE, Gaussian (mixture) log-likelihoods and interval accuracy.

Every function checks that its tensors have one shape; nothing is broadcast.

Example:
    >>> import torch
    >>> y = torch.tensor([0.0, 1.0, 2.0])
    >>> interval_accuracy(y, y - 1, y + 0.5).inside
    1.0
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.variational.distributions import LOG_SQRT_2PI


def _pair(pred: torch.Tensor, targets: torch.Tensor, name: str = "predictions") -> None:
    _checks.float_input(name, pred)
    _checks.float_input("targets", targets)
    if pred.numel() == 0:
        raise FblitzValueError(f"{name} must not be empty")
    _checks.same_shape("targets", targets, pred.shape, name)


def rmse(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Root mean squared error over all elements.

    Args:
        predictions: (...) point predictions, e.g. the predictive mean.
        targets: (...) observations of the same shape.

    Example:
        >>> import torch
        >>> rmse(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]))
        1.4142135381698608
    """
    _pair(predictions, targets)
    return float(_checks.finite_result("rmse", torch.sqrt(torch.mean((predictions - targets) ** 2))))


def gaussian_nll(mean: torch.Tensor, std: torch.Tensor, targets: torch.Tensor) -> float:
    """Average negative log-density of ``targets`` under N(mean, std^2), per element.

    Args:
        mean, std: (...) the Gaussian predictive; ``std`` must be > 0 everywhere.
        targets: (...) observations of the same shape.

    Example:
        >>> import torch
        >>> round(gaussian_nll(torch.zeros(2), torch.ones(2), torch.zeros(2)), 4)  # 0.5 * log(2 pi)
        0.9189
    """
    _pair(mean, targets, "mean")
    _checks.float_input("std", std)
    _checks.same_shape("std", std, mean.shape, "mean")
    if not bool((std > 0).all()):
        raise FblitzValueError("std must be > 0 everywhere for a Gaussian NLL")
    z = (targets - mean) / std
    return float(_checks.finite_result("gaussian_nll", torch.mean(0.5 * z * z + torch.log(std) + LOG_SQRT_2PI)))


class IntervalAccuracy(NamedTuple):
    """Fractions of targets inside an interval, below its upper and above its lower bound.

    The seed example's "CI acc", "CI upper acc" and "CI lower acc".
    """

    inside: float
    below_upper: float
    above_lower: float


def interval_accuracy(targets: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> IntervalAccuracy:
    """How often ``lower <= targets <= upper`` holds (and each side alone).

    Args:
        targets, lower, upper: (...) tensors of one shape.

    Example:
        >>> import torch
        >>> interval_accuracy(torch.tensor([0.0, 2.0]), torch.zeros(2), torch.ones(2))
        IntervalAccuracy(inside=0.5, below_upper=0.5, above_lower=1.0)
    """
    _pair(lower, targets, "lower")
    _checks.float_input("upper", upper)
    _checks.same_shape("upper", upper, lower.shape, "lower")
    below = targets <= upper
    above = targets >= lower
    return IntervalAccuracy(
        float((below & above).float().mean()), float(below.float().mean()), float(above.float().mean())
    )


def mean_interval_width(lower: torch.Tensor, upper: torch.Tensor) -> float:
    """Average ``upper - lower`` over all elements of the (...)-shaped bounds.

    Example:
        >>> import torch
        >>> mean_interval_width(torch.zeros(2), torch.tensor([1.0, 3.0]))
        2.0
    """
    _pair(upper, lower, "upper")
    return float(_checks.finite_result("mean_interval_width", (upper - lower).mean()))


def gaussian_mixture_log_likelihood(means: torch.Tensor, stds: torch.Tensor, targets: torch.Tensor) -> float:
    """Average log-density of ``targets`` under an equally weighted Gaussian mixture.

    The predictive of S weight draws, each predicting N(means[s], stds[s]^2):
    ``log (1/S) sum_s N(y; means[s], stds[s]^2)``, computed with a log-sum-exp
    and averaged over every element of ``targets``. This is the test
    log-likelihood of the UCI benchmarks (Hernandez-Lobato & Adams 2015; Gal &
    Ghahramani 2016), higher is better.

    Args:
        means: (S, ...) the mean of each mixture component.
        stds: (S, ...) their standard deviations, > 0 (e.g. the learned noise).
        targets: (...) the observations.

    Returns:
        The mean log-likelihood per element, a float.

    Example:
        >>> import torch
        >>> means = torch.tensor([[-1.0], [1.0]])  # two components, one target
        >>> round(gaussian_mixture_log_likelihood(means, torch.ones(2, 1), torch.zeros(1)), 4)
        -1.4189
    """
    _checks.float_input("means", means)
    _checks.float_input("targets", targets)
    _checks.float_input("stds", stds)
    _checks.same_shape("stds", stds, means.shape, "means")
    if means.dim() == 0 or means.shape[0] < 1:
        raise FblitzValueError(f"means must have a leading sample axis of at least 1, got shape {tuple(means.shape)}")
    _checks.same_shape("targets", targets, means.shape[1:], "means without its sample axis")
    if not bool((stds > 0).all()):
        raise FblitzValueError("stds must be > 0 everywhere for a Gaussian mixture log-likelihood")
    z = (targets - means) / stds
    log_densities = -0.5 * z * z - torch.log(stds) - LOG_SQRT_2PI
    per_element = torch.logsumexp(log_densities, dim=0) - math.log(means.shape[0])
    return float(_checks.finite_result("the mixture log-likelihood", per_element.mean()))
