"""Regression predictives: equally weighted Gaussian and Student-t mixtures over the weight draws.

Component s (one weight draw) is a location-scale distribution per target
element; all tensors below are (S, *T) with T the targets' shape (B, D) and
S the number of draws.

* mean ``(1/S) sum_s loc_s``;
* epistemic variance ``(1/S) sum_s (loc_s - mean)^2`` (the draws disagree);
* aleatoric variance ``(1/S) sum_s Var_s`` (noise within a draw: scale^2 for
  the Gaussian, scale^2 df / (df - 2) for the Student-t);
* their sum is the variance of the mixture, exactly.

Intervals are central intervals of each element's mixture: the Gaussian's
are exact (the mixture CDF inverted by bisection); the Student-t's are
empirical quantiles of seeded samples from the mixture (torch has no
Student-t CDF).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.metrics.coverage import DEFAULT_LEVELS, CalibrationCurve
from fblitz.metrics.student_t import student_t_mixture_samples
from fblitz.random import Key, KeyLike, as_key, normal
from fblitz.variational.distributions import gaussian_log_prob, student_t_log_prob

BISECTION_STEPS = 64  # halvings of the bracket: float64 resolution for any bracket width
SAMPLES_FOR_QUANTILES = 4000  # Student-t: draws from the mixture per element, in all, for its quantiles


def _level(level: object) -> float:
    level = _checks.real_number("level", level)
    if not 0.0 < level < 1.0:
        raise FblitzValueError(f"level must lie strictly between 0 and 1, got {level}")
    return level


def _levels(levels) -> list[float]:
    if isinstance(levels, torch.Tensor):
        levels = levels.tolist()
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels:
        raise FblitzValueError(f"levels must be a non-empty sequence of floats, got {levels!r}")
    values = [_level(value) for value in levels]
    if any(b <= a for a, b in zip(values, values[1:])):
        raise FblitzValueError(f"levels must be strictly increasing, got {values}")
    return values


class ContinuousMixture:
    """What the Gaussian and Student-t mixtures share. Build them with
    :func:`~fblitz.predictive.predictive_distribution` or
    :func:`~fblitz.predictive.from_draws`.

    Attributes:
        draws: (S, B, ...) the network outputs of each weight draw.
        locs, scales: (S, *T) each component's location and scale.
    """

    family = "continuous"

    def __init__(self, draws: torch.Tensor, locs: torch.Tensor, scales: torch.Tensor):
        self.draws, self.locs, self.scales = draws, locs, scales
        if not bool((scales > 0).all()):
            raise FblitzValueError("the noise scales must be > 0 everywhere (a learned scale collapsed to 0?)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(draws={self.n_draws}, target shape={tuple(self.locs.shape[1:])})"

    @property
    def n_draws(self) -> int:
        """S, the number of weight draws."""
        return self.locs.shape[0]

    @property
    def target_shape(self) -> tuple[int, ...]:
        """T, the shape of the targets this predictive describes."""
        return tuple(self.locs.shape[1:])

    @property
    def mean(self) -> torch.Tensor:
        """(*T) the predictive mean."""
        return self.locs.mean(dim=0)

    @property
    def epistemic_variance(self) -> torch.Tensor:
        """(*T) the variance of the component means across the weight draws."""
        return self.locs.var(dim=0, unbiased=False)

    @property
    def aleatoric_variance(self) -> torch.Tensor:
        """(*T) the mean noise variance within a draw."""
        return self.component_variances().mean(dim=0)

    @property
    def variance(self) -> torch.Tensor:
        """(*T) the total predictive variance, epistemic + aleatoric."""
        return self.epistemic_variance + self.aleatoric_variance

    @property
    def std(self) -> torch.Tensor:
        """(*T) the predictive standard deviation."""
        return self.variance.sqrt()

    def component_variances(self) -> torch.Tensor:
        """(S, *T) the variance of each component."""
        raise NotImplementedError

    def component_log_prob(self, targets: torch.Tensor) -> torch.Tensor:
        """(S, *T) each component's log density at ``targets``."""
        raise NotImplementedError

    def _targets(self, targets: object) -> torch.Tensor:
        _checks.tensor("targets", targets, floating=True)
        _checks.same_shape("targets", targets, self.target_shape, "the predictive's targets")
        return targets.to(self.locs.dtype)

    def log_prob(self, targets: torch.Tensor) -> torch.Tensor:
        """(B,) the log predictive density of each row of ``targets`` (*T).

        ``log (1/S) sum_s prod_d p_s(y_d)``: the mixture over draws of each
        draw's joint density over the row's elements.
        """
        targets = self._targets(targets)
        per_draw = self.component_log_prob(targets.expand_as(self.locs))
        per_row = per_draw.reshape(self.n_draws, per_draw.shape[1], -1).sum(dim=-1)
        return _checks.finite_result("the log predictive density", torch.logsumexp(per_row, 0) - math.log(self.n_draws))

    def nll(self, targets: torch.Tensor) -> float:
        """The mean negative log predictive density over the rows of ``targets`` (lower is better)."""
        return float(-self.log_prob(targets).mean())

    def interval(self, level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lower, upper)``, each (*T): the central ``level`` interval of each element's predictive."""
        level = _level(level)
        return self.quantile((1.0 - level) / 2), self.quantile((1.0 + level) / 2)

    def quantile(self, probability: float) -> torch.Tensor:
        """(*T) the ``probability`` quantile of each element's predictive."""
        raise NotImplementedError

    def coverage(self, targets: torch.Tensor, level: float = 0.9) -> float:
        """Fraction of the elements of ``targets`` inside their central ``level`` interval."""
        targets = self._targets(targets)
        lower, upper = self.interval(level)
        return float(((targets >= lower) & (targets <= upper)).double().mean())

    def calibration_curve(self, targets: torch.Tensor, levels=DEFAULT_LEVELS) -> CalibrationCurve:
        """Observed coverage of the central intervals at each nominal level (default 0.05 ... 0.95)."""
        nominal = _levels(levels)
        observed = [self.coverage(targets, level) for level in nominal]
        return CalibrationCurve(torch.tensor(nominal, dtype=torch.float64), torch.tensor(observed, dtype=torch.float64))

    def affine(self, shift, scale):
        """The predictive of ``shift + scale * y``, e.g. back to a target's original units.

        ``shift`` and ``scale`` (> 0) are floats or tensors of shape (D,) (one
        per target column) or of the targets' shape.
        """
        shift, scale = _affine_terms(self.locs, shift, scale)
        return self._rebuilt(shift + scale * self.locs, scale * self.scales)

    def with_noise_factor(self, factor: float):
        """The same predictive with every component's noise scale multiplied by ``factor`` > 0.

        Post-hoc recalibration of the observation noise: a factor fitted on
        held-out rows (e.g. by maximising their log-likelihood) widens (> 1) or
        narrows (< 1) the aleatoric part; the locations, so the mean and the
        epistemic variance, stay.
        """
        factor = _checks.positive("factor", factor)
        return self._rebuilt(self.locs, self.scales * factor)

    def _rebuilt(self, locs: torch.Tensor, scales: torch.Tensor):
        raise NotImplementedError


def _affine_terms(locs: torch.Tensor, shift, scale) -> tuple[torch.Tensor, torch.Tensor]:
    shapes = ((), locs.shape[-1:], locs.shape[1:])
    terms = []
    for name, value in (("shift", shift), ("scale", scale)):
        value = torch.as_tensor(value, dtype=locs.dtype, device=locs.device)
        if tuple(value.shape) not in [tuple(s) for s in shapes]:
            raise FblitzValueError(
                f"{name} must be a number or have shape {tuple(locs.shape[-1:])} or {tuple(locs.shape[1:])}, "
                f"got {tuple(value.shape)}"
            )
        terms.append(_checks.finite_result(name, value))
    if not bool((terms[1] > 0).all()):
        raise FblitzValueError("scale must be > 0")
    return terms[0], terms[1]


class GaussianMixture(ContinuousMixture):
    """The predictive of Gaussian observation noise: a mixture of S Gaussians per element.

    Intervals and the calibration curve are exact (no sampling).
    """

    family = "gaussian"

    def component_variances(self) -> torch.Tensor:
        return self.scales.square()

    def component_log_prob(self, targets: torch.Tensor) -> torch.Tensor:
        return gaussian_log_prob(targets, self.locs, self.scales)

    def cdf(self, targets: torch.Tensor) -> torch.Tensor:
        """(*T) the predictive CDF at ``targets``: the probability integral transform."""
        return self._cdf(self._targets(targets))

    def _cdf(self, values: torch.Tensor) -> torch.Tensor:
        return torch.special.ndtr((values - self.locs) / self.scales).mean(dim=0)

    def quantile(self, probability: float) -> torch.Tensor:
        probability = _level(probability)
        lower = (self.locs - 9.0 * self.scales).amin(dim=0)  # the mixture's CDF is < 1e-18 below
        upper = (self.locs + 9.0 * self.scales).amax(dim=0)
        for _ in range(BISECTION_STEPS):
            middle = 0.5 * (lower + upper)
            below = self._cdf(middle) < probability
            lower, upper = torch.where(below, middle, lower), torch.where(below, upper, middle)
        return 0.5 * (lower + upper)

    def calibration_curve(self, targets: torch.Tensor, levels=DEFAULT_LEVELS) -> CalibrationCurve:
        # y lies in the central p interval iff its CDF value lies in [(1 - p) / 2, (1 + p) / 2]
        nominal = _levels(levels)
        distance = (self.cdf(targets) - 0.5).abs()
        observed = [float((distance <= level / 2).double().mean()) for level in nominal]
        return CalibrationCurve(torch.tensor(nominal, dtype=torch.float64), torch.tensor(observed, dtype=torch.float64))

    def sample(self, key: KeyLike, n: int) -> torch.Tensor:
        """(n * S, *T) draws from the predictive, ``n`` noise draws per weight draw, reproducible from ``key``."""
        n = _checks.integer("n", n, minimum=1)
        noise = normal(key, (n, *self.locs.shape), dtype=self.locs.dtype, device=self.locs.device)
        return (self.locs + self.scales * noise).reshape(n * self.n_draws, *self.target_shape)

    def _rebuilt(self, locs, scales):
        return GaussianMixture(self.draws, locs, scales)


class StudentTMixture(ContinuousMixture):
    """The predictive of Student-t observation noise: a mixture of S Student-t's per element.

    The mean needs df > 1 and the variance df > 2 in every component (where
    df <= 2 the aleatoric variance is infinite). Intervals are empirical
    quantiles of about 4000 draws per element from the mixture, made from the
    key given at construction (the same key, the same intervals).

    Attributes:
        dfs: (S, *T) each component's degrees of freedom.
    """

    family = "student_t"

    def __init__(self, draws, locs, scales, dfs, *, key: Key):
        super().__init__(draws, locs, scales)
        self.dfs, self.key = dfs, key
        self._sorted_samples: torch.Tensor | None = None

    @property
    def mean(self) -> torch.Tensor:
        if not bool((self.dfs > 1).all()):
            raise FblitzValueError("the Student-t predictive has no mean where a component's df <= 1")
        return super().mean

    def component_variances(self) -> torch.Tensor:
        ratio = torch.where(self.dfs > 2, self.dfs / (self.dfs - 2).clamp_min(1e-30), torch.inf)
        return self.scales.square() * ratio

    def component_log_prob(self, targets: torch.Tensor) -> torch.Tensor:
        return student_t_log_prob(targets, self.locs, self.scales, self.dfs)

    def sample(self, key: KeyLike, n: int) -> torch.Tensor:
        """(n * S, *T) draws from the predictive, ``n`` noise draws per weight draw, reproducible from ``key``."""
        return student_t_mixture_samples(key, self.locs, self.scales, self.dfs, n)

    def quantile(self, probability: float) -> torch.Tensor:
        probability = _level(probability)
        if self._sorted_samples is None:  # drawn once, sorted once, for every level
            per_draw = max(1, math.ceil(SAMPLES_FOR_QUANTILES / self.n_draws))
            self._sorted_samples = self.sample(self.key, per_draw).sort(dim=0).values
        ordered = self._sorted_samples
        position = probability * (ordered.shape[0] - 1)  # linear interpolation, as torch.quantile
        below = math.floor(position)
        above = min(below + 1, ordered.shape[0] - 1)
        return torch.lerp(ordered[below], ordered[above], position - below)

    def _rebuilt(self, locs, scales):
        return StudentTMixture(self.draws, locs, scales, self.dfs, key=as_key(self.key))
