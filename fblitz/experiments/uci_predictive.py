"""The UCI runner's scores of a regression predictive, in the target's original units.

The predictive itself is the library's (:mod:`fblitz.predictive`): with S weight
draws, a :class:`~fblitz.predictive.GaussianMixture` or
:class:`~fblitz.predictive.StudentTMixture` of S components, one noise
distribution per draw, built by :func:`fblitz.experiments.uci_model.predictive_on`
and moved to original units with ``affine``. This module scores it the UCI way:
the RMSE of its mean, its average log density (the "test log-likelihood") and
the coverage of its central intervals at every level, all read off the
probability integral transform ``F(y)`` of each target (a central ``level``
interval holds ``y`` exactly when ``|F(y) - 1/2| <= level / 2``). ``F`` is exact
for a Gaussian mixture and estimated from seeded draws for a Student-t one, the
same draws for every level.

Post-hoc recalibration multiplies every component's noise scale by one factor
(``predictive.with_noise_factor``) fitted by maximum likelihood on held-out rows
(:func:`fit_noise_factor`).
"""

from __future__ import annotations

import math

import torch

from fblitz import _checks, metrics
from fblitz.errors import FblitzValueError
from fblitz.predictive import ContinuousMixture, GaussianMixture, StudentTMixture
from fblitz.random import KeyLike

REPORTED_LEVELS = (0.5, 0.8, 0.9, 0.95)
MIN_SIGMA = 1e-6
MIN_DF = 1.0


def log_likelihood(predictive: ContinuousMixture, targets: torch.Tensor) -> float:
    """Average log density of ``targets`` (N, 1) under the mixture (higher is better)."""
    return -predictive.nll(targets)


def pit(predictive: ContinuousMixture, targets: torch.Tensor, *, key: KeyLike, draws: int = 50) -> torch.Tensor:
    """(N, 1) the mixture's CDF at each target (probability integral transform).

    Exact for Gaussian components; otherwise the fraction of ``draws`` seeded
    draws per component (S * draws per target) at or below the target.
    """
    _checks.same_shape("targets", targets, predictive.target_shape, "the predictive's targets")
    if isinstance(predictive, GaussianMixture):
        return predictive.cdf(targets)
    samples = predictive.sample(key, _checks.integer("draws", draws, minimum=1))
    return (samples <= targets).double().mean(dim=0)


def coverage(pit_values: torch.Tensor, level: float) -> float:
    """Fraction of targets inside the central ``level`` interval, from their PIT values."""
    level = _checks.real_number("level", level)
    if not 0 < level < 1:
        raise FblitzValueError(f"level must lie strictly between 0 and 1, got {level}")
    return float(((pit_values - 0.5).abs() <= level / 2).double().mean())


def calibration_curve(pit_values: torch.Tensor, levels=metrics.coverage.DEFAULT_LEVELS) -> metrics.CalibrationCurve:
    """Observed coverage at each nominal level (default 0.05, 0.10, ..., 0.95)."""
    observed = [coverage(pit_values, level) for level in levels]
    return metrics.CalibrationCurve(
        torch.tensor(levels, dtype=torch.float64), torch.tensor(observed, dtype=torch.float64)
    )


def score(predictive: ContinuousMixture, targets: torch.Tensor, *, key: KeyLike, draws: int = 50) -> dict:
    """RMSE, log-likelihood, coverage at :data:`REPORTED_LEVELS` and the calibration curve."""
    values = pit(predictive, targets, key=key, draws=draws)
    result = {
        "rmse": metrics.rmse(predictive.mean, targets),
        "log_likelihood": log_likelihood(predictive, targets),
    }
    result |= {f"coverage_{round(100 * level)}": coverage(values, level) for level in REPORTED_LEVELS}
    result["calibration"] = calibration_curve(values)
    result["noise_scale"] = float(predictive.scales.mean())
    if isinstance(predictive, StudentTMixture):
        result["df"] = float(predictive.dfs.mean())
    return result


def fit_noise_factor(
    predictive: ContinuousMixture, targets: torch.Tensor, *, bounds: tuple[float, float] = (0.02, 50.0)
) -> float:
    """The noise-scale factor in ``bounds`` that maximises the log-likelihood of held-out ``targets``.

    Golden-section search on log(factor) to a relative tolerance of 1e-6 (the
    log-likelihood of a scale family is unimodal in practice; a factor at a
    bound means the bound was too tight).
    """
    low, high = (math.log(_checks.positive("bounds", bound)) for bound in bounds)
    if not low < high:
        raise FblitzValueError(f"bounds must be increasing, got {bounds}")
    value = lambda log_factor: log_likelihood(predictive.with_noise_factor(math.exp(log_factor)), targets)  # noqa: E731
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = value(c), value(d)
    while b - a > 1e-6:
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = value(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = value(d)
    return math.exp((a + b) / 2)
