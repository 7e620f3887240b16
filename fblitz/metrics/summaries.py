"""Summaries of predictive samples: mean and std, intervals.

The samples come from :func:`fblitz.prediction.predict` (shape (S, ...), draws
along axis 0); these functions only read them.

Example:
    >>> import torch
    >>> samples = torch.tensor([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0]])  # S=3 draws of 2 outputs
    >>> mean, std = predictive_mean_std(samples)
    >>> mean.tolist(), std.tolist()
    ([1.0, 20.0], [1.0, 10.0])
    >>> lower, upper = mean_std_interval(mean, std, k=2.0)
    >>> lower.tolist(), upper.tolist()
    ([-1.0, 0.0], [3.0, 40.0])
"""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError


def predictive_mean_std(samples: torch.Tensor, *, unbiased: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over the sample axis 0 of ``samples``."""
    _checks.float_input("samples", samples)
    unbiased = _checks.boolean("unbiased", unbiased)
    if samples.dim() == 0 or samples.shape[0] < 2:
        raise FblitzValueError(
            f"samples needs at least 2 draws along axis 0 for a std, got shape {tuple(samples.shape)}"
        )
    if samples.numel() == 0:  # no rows: empty results (torch's std would warn about its degrees of freedom)
        return samples.new_empty(samples.shape[1:]), samples.new_empty(samples.shape[1:])
    mean, std = samples.mean(dim=0), samples.std(dim=0, unbiased=unbiased)
    return _checks.finite_result("the predictive mean", mean), _checks.finite_result("the predictive std", std)


def gaussian_mixture_mean_std(samples: torch.Tensor, min_sigma: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean/std of samples of ``[mean, raw_scale]`` outputs (last dim 2 * D).

    For models trained with :func:`fblitz.likelihoods.heteroscedastic_gaussian`:
    the variance adds the spread of the means (epistemic) to the average noise
    variance (aleatoric).
    """
    _checks.tensor("samples", samples, floating=True)
    if samples.dim() < 2 or samples.shape[-1] % 2:
        raise FblitzValueError(f"samples must have shape (S, ..., 2 * D), got {tuple(samples.shape)}")
    means, raw = samples.chunk(2, dim=-1)
    noise_var = (torch.nn.functional.softplus(raw) + min_sigma).pow(2)
    mean = means.mean(dim=0)
    var = means.var(dim=0, unbiased=False) + noise_var.mean(dim=0)
    return mean, var.sqrt()


def mean_std_interval(mean: torch.Tensor, std: torch.Tensor, k: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean - k * std, mean + k * std)``; the seed example uses k = 3."""
    k = _checks.positive("k", k)
    _checks.float_input("mean", mean)
    _checks.float_input("std", std)
    _checks.same_shape("std", std, mean.shape, "mean")
    return tuple(_checks.finite_result("the interval", bound) for bound in (mean - k * std, mean + k * std))


def quantile_interval(samples: torch.Tensor, level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Central ``level`` interval from the empirical quantiles over sample axis 0."""
    _checks.float_input("samples", samples)
    if samples.dim() == 0 or samples.numel() == 0:
        raise FblitzValueError(
            f"samples must have at least one draw along axis 0 and be non-empty, got shape {tuple(samples.shape)}"
        )
    level = _checks.probability("level", level)
    if not 0 < level < 1:
        raise FblitzValueError(f"level must lie strictly between 0 and 1, got {level}")
    tail = (1 - level) / 2
    # torch.quantile takes float32/float64 only: half-precision samples are summarised in float32
    exact = samples if samples.dtype in (torch.float32, torch.float64) else samples.float()
    bounds = torch.quantile(exact, torch.tensor([tail, 1 - tail], dtype=exact.dtype, device=exact.device), dim=0)
    return bounds[0].to(samples.dtype), bounds[1].to(samples.dtype)
