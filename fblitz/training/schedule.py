"""The KL schedule: how much of the KL each minibatch of an epoch carries.

Example:
    >>> minibatch_weights(3, "blundell")  # 4/7, 2/7, 1/7
    [0.5714285714285714, 0.2857142857142857, 0.14285714285714285]
    >>> KLSchedule("blundell", complexity_cost_weight=0.1).weights(dataset_size=100, num_batches=2)
    [0.13333333333333333, 0.06666666666666667]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fblitz import _checks
from fblitz.errors import FblitzTypeError

KL_WEIGHTINGS = ("uniform", "blundell")


def minibatch_weights(num_batches: int, scheme: str = "uniform") -> list[float]:
    """The share pi_i of the KL given to minibatch i of an epoch; they sum to 1.

    ``"uniform"``: pi_i = 1 / M. ``"blundell"``: pi_i = 2^(M-i) / (2^M - 1) for
    i = 1..M (Blundell et al. 2015, sec. 3.4): early batches carry most of the KL.
    """
    m = _checks.integer("num_batches", num_batches, minimum=1)
    _checks.one_of("scheme", scheme, KL_WEIGHTINGS)
    if scheme == "uniform":
        return [1.0 / m] * m
    # 2^(M-i) / (2^M - 1) = 2^-i / (1 - 2^-M); this form never overflows a float.
    denominator = -math.expm1(-m * math.log(2.0))
    return [math.ldexp(1.0, -i) / denominator for i in range(1, m + 1)]


def kl_weights(
    dataset_size: int, num_batches: int, scheme: str = "uniform", complexity_cost_weight: float | None = None
) -> list[float]:
    """The ``complexity_cost_weight`` for each minibatch of an epoch.

    ``complexity_cost_weight * M * pi_i`` with pi_i from :func:`minibatch_weights`;
    the base weight defaults to ``1 / dataset_size`` (the convention of
    :mod:`fblitz.objectives`). Uniform weighting gives the base weight to every
    batch; Blundell's gives batch i the share pi_i of the KL.
    """
    n = _checks.integer("dataset_size", dataset_size, minimum=1)
    base = (
        1.0 / n
        if complexity_cost_weight is None
        else _checks.non_negative("complexity_cost_weight", complexity_cost_weight)
    )
    shares = minibatch_weights(num_batches, scheme)
    return [base * len(shares) * share for share in shares]


@dataclass(frozen=True)
class KLSchedule:
    """How :func:`fblitz.training.fit` weights the KL of each minibatch (``fit(..., kl=KLSchedule(...))``).

    Attributes:
        weighting: ``"uniform"`` (every minibatch gets the base weight) or
            ``"blundell"`` (minibatch i of M gets ``M * pi_i`` times it, early
            ones most; see :func:`minibatch_weights`).
        complexity_cost_weight: the base weight, a number >= 0; None (the
            default) is ``1 / len(inputs)``, which makes the loss the ELBO per
            training row.

    Raises:
        FblitzValueError: on an unknown ``weighting`` or a negative weight.
    """

    weighting: str = "uniform"
    complexity_cost_weight: float | None = None

    def __post_init__(self) -> None:
        _checks.one_of("KLSchedule.weighting", self.weighting, KL_WEIGHTINGS)
        if self.complexity_cost_weight is not None:
            weight = _checks.non_negative("KLSchedule.complexity_cost_weight", self.complexity_cost_weight)
            object.__setattr__(self, "complexity_cost_weight", weight)

    def weights(self, dataset_size: int, num_batches: int) -> list[float]:
        """The weight of each of the ``num_batches`` minibatches of an epoch over ``dataset_size`` rows."""
        return kl_weights(dataset_size, num_batches, self.weighting, self.complexity_cost_weight)


def as_kl_schedule(name: str, value: object) -> KLSchedule:
    """``value`` as a :class:`KLSchedule`: one itself, or a weighting's name (``"blundell"``)."""
    if isinstance(value, KLSchedule):
        return value
    if isinstance(value, str):
        return KLSchedule(_checks.one_of(name, value, KL_WEIGHTINGS))
    raise FblitzTypeError(f"{name} must be a KLSchedule or one of {KL_WEIGHTINGS}, got {value!r}")
