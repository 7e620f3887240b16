"""The UCI runner's predictive distribution and its scores, in the target's original units.

With S weight draws, each network output is one component of the predictive: a
Gaussian (``likelihood="gaussian"``) or a location-scale Student-t with its
noise scale (learned constant or predicted per input) and degrees of freedom.
The predictive is their equally weighted mixture (:class:`MixturePredictive`);
it is scored by the RMSE of its mean, its average log density (the UCI "test
log-likelihood") and the coverage of its central intervals, read off the
probability integral transform ``F(y)`` of each target (a central ``level``
interval holds ``y`` exactly when ``|F(y) - 1/2| <= level / 2``). ``F`` is exact
for a Gaussian mixture and estimated from seeded draws for a Student-t one.

Post-hoc recalibration multiplies every component's noise scale by one factor
(:func:`with_noise_factor`) fitted by maximum likelihood on held-out rows
(:func:`fit_noise_factor`).

The runner's metric code lives here only, so that it can move onto a general
predictive-distribution API without touching the protocol.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import _checks, metrics
from fblitz.errors import FblitzValueError
from fblitz.experiments.standardize import Standardizer
from fblitz.random import KeyLike

REPORTED_LEVELS = (0.5, 0.8, 0.9, 0.95)
MIN_SIGMA = 1e-6
MIN_DF = 1.0


class MixturePredictive(NamedTuple):
    """Equal-weight mixture of S components per target (original units).

    Attributes:
        locs: (S, N, 1) component locations (the means of the weight draws).
        scales: (S, N, 1) their noise scales, > 0.
        dfs: (S, N, 1) Student-t degrees of freedom (> 1), or None for Gaussian components.
    """

    locs: torch.Tensor
    scales: torch.Tensor
    dfs: torch.Tensor | None

    @property
    def mean(self) -> torch.Tensor:
        """(N, 1) the mixture's mean: the average location (every component has mean = location)."""
        return self.locs.mean(dim=0)


def from_outputs(
    outputs: torch.Tensor, y_scaler: Standardizer, *, likelihood: str, df: float | None = None
) -> MixturePredictive:
    """The predictive of (S, N, K) network outputs in standardised units.

    Args:
        outputs: ``[location, raw scale]`` (K = 2), plus raw degrees of freedom
            (K = 3) for a Student-t with learned df; scale = softplus(raw) + 1e-6,
            df = softplus(raw) + 1.
        y_scaler: the target's standardiser; locations and scales go back to original units.
        likelihood: ``"gaussian"`` or ``"student_t"``.
        df: the fixed degrees of freedom of a Student-t with K = 2.
    """
    _checks.tensor("outputs", outputs, ndim=3, floating=True)
    _checks.one_of("likelihood", likelihood, ("gaussian", "student_t"))
    parts = 3 if likelihood == "student_t" and df is None else 2
    if outputs.shape[-1] != parts:
        raise FblitzValueError(f"outputs must have {parts} entries in the last dimension, got {outputs.shape[-1]}")
    outputs = outputs.double()
    locs = y_scaler.inverse(outputs[..., :1])
    scales = (F.softplus(outputs[..., 1:2]) + MIN_SIGMA) * y_scaler.scale
    if likelihood == "gaussian":
        return MixturePredictive(locs, scales, None)
    dfs = F.softplus(outputs[..., 2:3]) + MIN_DF if df is None else torch.full_like(locs, df)
    return MixturePredictive(locs, scales, dfs)


def with_noise_factor(predictive: MixturePredictive, factor: float) -> MixturePredictive:
    """The same mixture with every component's noise scale multiplied by ``factor`` > 0."""
    factor = _checks.positive("factor", factor)
    return predictive._replace(scales=predictive.scales * factor)


def log_likelihood(predictive: MixturePredictive, targets: torch.Tensor) -> float:
    """Average log density of ``targets`` (N, 1) under the mixture (higher is better)."""
    locs, scales, dfs = predictive
    if dfs is None:
        return metrics.gaussian_mixture_log_likelihood(locs, scales, targets)
    return metrics.student_t_mixture_log_likelihood(locs, scales, dfs, targets)


def pit(predictive: MixturePredictive, targets: torch.Tensor, *, key: KeyLike, draws: int = 50) -> torch.Tensor:
    """(N, 1) the mixture's CDF at each target (probability integral transform).

    Exact for Gaussian components; for Student-t ones the fraction of
    ``draws`` seeded draws per component (S * draws per target) at or below the target.
    """
    locs, scales, dfs = predictive
    _checks.same_shape("targets", targets, locs.shape[1:], "the predictive's targets")
    if dfs is None:
        return torch.special.ndtr((targets - locs) / scales).mean(dim=0)
    samples = metrics.student_t_mixture_samples(key, locs, scales, dfs, draws)
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


def score(predictive: MixturePredictive, targets: torch.Tensor, *, key: KeyLike, draws: int = 50) -> dict:
    """RMSE, log-likelihood, coverage at :data:`REPORTED_LEVELS` and the calibration curve."""
    values = pit(predictive, targets, key=key, draws=draws)
    result = {
        "rmse": metrics.rmse(predictive.mean, targets),
        "log_likelihood": log_likelihood(predictive, targets),
    }
    result |= {f"coverage_{round(100 * level)}": coverage(values, level) for level in REPORTED_LEVELS}
    result["calibration"] = calibration_curve(values)
    result["noise_scale"] = float(predictive.scales.mean())
    if predictive.dfs is not None:
        result["df"] = float(predictive.dfs.mean())
    return result


def fit_noise_factor(
    predictive: MixturePredictive, targets: torch.Tensor, *, bounds: tuple[float, float] = (0.02, 50.0)
) -> float:
    """The noise-scale factor in ``bounds`` that maximises the log-likelihood of held-out ``targets``.

    Golden-section search on log(factor) to a relative tolerance of 1e-6 (the
    log-likelihood of a scale family is unimodal in practice; a factor at a
    bound means the bound was too tight).
    """
    low, high = (math.log(_checks.positive("bounds", bound)) for bound in bounds)
    if not low < high:
        raise FblitzValueError(f"bounds must be increasing, got {bounds}")
    value = lambda log_factor: log_likelihood(with_noise_factor(predictive, math.exp(log_factor)), targets)  # noqa: E731
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
