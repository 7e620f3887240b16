"""Regression calibration: interval coverage (PICP) and the calibration curve.

A predictive distribution is given either as samples ``(S, ...)`` (central
intervals from empirical quantiles) or as a Gaussian ``mean``/``std`` of the
targets' shape (intervals ``mean +/- z * std``). A calibrated predictive has
the observed coverage of its central ``level`` intervals close to ``level``.

Example:
    >>> import torch
    >>> y = torch.tensor([0.0, 1.0, 3.0])
    >>> interval_coverage(y, mean=torch.zeros(3), std=torch.ones(3), level=0.9)  # |y| <= 1.645
    0.6666666666666666
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.prediction import quantile_interval

DEFAULT_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _level(name: str, value: object) -> float:
    value = _checks.real_number(name, value)
    if not 0.0 < value < 1.0:
        raise FblitzValueError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def _predictive(targets, samples, mean, std) -> None:
    _checks.tensor("targets", targets, floating=True)
    if samples is not None:
        if mean is not None or std is not None:
            raise FblitzValueError("give either samples or mean and std, not both")
        _checks.tensor("samples", samples, floating=True)
        if samples.dim() == 0 or samples.shape[0] < 2:
            raise FblitzValueError(
                f"samples must have shape (S, *targets.shape) with S >= 2, got {tuple(samples.shape)}"
            )
        _checks.same_shape("samples[0]", samples[0], targets.shape, "targets")
        return
    if mean is None or std is None:
        raise FblitzValueError("give either samples or both mean and std")
    _checks.tensor("mean", mean, floating=True)
    _checks.tensor("std", std, floating=True)
    _checks.same_shape("mean", mean, targets.shape, "targets")
    _checks.same_shape("std", std, targets.shape, "targets")
    if not bool((std >= 0).all()):
        raise FblitzValueError("std must be >= 0 everywhere")


def _coverage(targets, samples, mean, std, level: float) -> float:
    if samples is not None:
        lower, upper = quantile_interval(samples, level)
    else:
        z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
        lower, upper = mean - z * std, mean + z * std
    return float(((targets >= lower) & (targets <= upper)).double().mean())


def interval_coverage(
    targets: torch.Tensor,
    *,
    level: float = 0.9,
    samples: torch.Tensor | None = None,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> float:
    """Fraction of targets inside the central ``level`` predictive interval (PICP).

    Args:
        targets: (...) the observations.
        level: nominal coverage of the interval, strictly between 0 and 1.
        samples: (S, ...) predictive samples, S >= 2; the interval runs between
            their empirical ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles.
        mean, std: (...) a Gaussian predictive instead of ``samples``; the
            interval is ``mean +/- z * std`` with z the standard-normal
            ``(1 + level) / 2`` quantile (1.645 for 90%).

    Returns:
        The observed coverage in [0, 1].

    Example:
        >>> import torch
        >>> samples = torch.arange(101.0).reshape(101, 1).expand(101, 4)
        >>> interval_coverage(torch.tensor([0.0, 10.0, 50.0, 99.0]), samples=samples, level=0.9)
        0.5
    """
    _predictive(targets, samples, mean, std)
    return _coverage(targets, samples, mean, std, _level("level", level))


class CalibrationCurve(NamedTuple):
    """Observed coverage of central intervals against their nominal levels.

    Attributes:
        nominal: (L,) float64 nominal levels, increasing.
        observed: (L,) float64 observed coverage at each level.
    """

    nominal: torch.Tensor
    observed: torch.Tensor

    @property
    def mean_absolute_error(self) -> float:
        """Mean of ``|observed - nominal|`` over the levels (0 when calibrated)."""
        return float((self.observed - self.nominal).abs().mean())


def calibration_curve(
    targets: torch.Tensor,
    *,
    levels: Sequence[float] | torch.Tensor = DEFAULT_LEVELS,
    samples: torch.Tensor | None = None,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> CalibrationCurve:
    """:func:`interval_coverage` at several nominal levels (a regression calibration curve).

    Args:
        targets: (...) the observations.
        levels: increasing nominal levels strictly between 0 and 1; default
            0.05, 0.10, ..., 0.95.
        samples, mean, std: the predictive, as for :func:`interval_coverage`.

    Returns:
        A :class:`CalibrationCurve`; plot ``observed`` against ``nominal``.

    Example:
        >>> import torch
        >>> y = torch.tensor([0.1, -0.5, 1.0, -2.0])
        >>> curve = calibration_curve(y, mean=torch.zeros(4), std=torch.ones(4), levels=[0.5, 0.9])  # z = 0.674, 1.645
        >>> curve.observed.tolist()
        [0.5, 0.75]
    """
    _predictive(targets, samples, mean, std)
    if isinstance(levels, torch.Tensor):
        _checks.tensor("levels", levels, ndim=1, floating=True)
        levels = levels.tolist()
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels:
        raise FblitzValueError(f"levels must be a non-empty sequence of floats, got {levels!r}")
    nominal = [_level(f"levels[{i}]", value) for i, value in enumerate(levels)]
    if any(b <= a for a, b in zip(nominal, nominal[1:])):
        raise FblitzValueError(f"levels must be strictly increasing, got {nominal}")
    observed = [_coverage(targets, samples, mean, std, level) for level in nominal]
    return CalibrationCurve(torch.tensor(nominal, dtype=torch.float64), torch.tensor(observed, dtype=torch.float64))
