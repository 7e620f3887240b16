"""Classification predictives: the average of the class probabilities of the weight draws.

The entropy of the averaged probabilities (total uncertainty) splits into the
mean entropy of the draws (aleatoric) and the mutual information between the
label and the weights (epistemic); see :mod:`fblitz.metrics.uncertainty`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.metrics.uncertainty import expected_entropy, mutual_information, predictive_entropy

NO_INTERVAL = (
    "a {family} predictive has no interval; use .probs (class probabilities), .predicted_class, "
    ".entropy and .mutual_information"
)


class _LabelMixture:
    """What the classification predictives share: the draws, their count, the NLL, no interval."""

    family = "labels"

    def __init__(self, draws: torch.Tensor):
        self.draws = draws

    @property
    def n_draws(self) -> int:
        """S, the number of weight draws."""
        return self.draws.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        """The predictive probabilities: the mean of the (one-hot) label."""
        return self.probs

    def log_prob(self, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def nll(self, targets: torch.Tensor) -> float:
        """The mean negative log predictive probability of the rows of ``targets`` (lower is better)."""
        return float(-self.log_prob(targets).mean())

    def interval(self, level: float = 0.9):
        """Not defined for labels: raises with what to use instead."""
        raise FblitzValueError(NO_INTERVAL.format(family=self.family))


class CategoricalMixture(_LabelMixture):
    """The predictive of a softmax classifier over S weight draws.

    Attributes:
        draws: (S, B, C) the logits of each weight draw.
    """

    family = "categorical"

    def __init__(self, draws: torch.Tensor):
        super().__init__(draws)
        self.log_probs = F.log_softmax(draws, dim=-1)  # (S, B, C)

    def __repr__(self) -> str:
        return f"CategoricalMixture(draws={self.n_draws}, rows={self.draws.shape[1]}, classes={self.draws.shape[2]})"

    @property
    def prob_samples(self) -> torch.Tensor:
        """(S, B, C) each draw's class probabilities."""
        return self.log_probs.exp()

    @property
    def probs(self) -> torch.Tensor:
        """(B, C) the predictive class probabilities (the mean over draws)."""
        return self.prob_samples.mean(dim=0)

    @property
    def predicted_class(self) -> torch.Tensor:
        """(B,) the most probable class."""
        return self.probs.argmax(dim=-1)

    @property
    def entropy(self) -> torch.Tensor:
        """(B,) the entropy of the predictive (total uncertainty), in nats."""
        return predictive_entropy(self.prob_samples)

    @property
    def aleatoric_entropy(self) -> torch.Tensor:
        """(B,) the mean entropy of the draws (aleatoric part), in nats."""
        return expected_entropy(self.prob_samples)

    @property
    def mutual_information(self) -> torch.Tensor:
        """(B,) entropy minus aleatoric entropy: the epistemic part, in nats."""
        return mutual_information(self.prob_samples)

    def log_prob(self, targets: torch.Tensor) -> torch.Tensor:
        """(B,) ``log (1/S) sum_s p_s(y)`` of the integer labels ``targets`` (B,)."""
        _checks.tensor("targets", targets, ndim=1)
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise FblitzValueError(f"targets must hold integer class indices, got dtype {targets.dtype}")
        rows, classes = self.draws.shape[1:]
        if targets.shape[0] != rows:
            raise FblitzValueError(f"targets must hold one label per row ({rows}), got shape {tuple(targets.shape)}")
        if targets.numel() and not bool(((targets >= 0) & (targets < classes)).all()):
            raise FblitzValueError(f"targets must be class indices in [0, {classes})")
        picked = self.log_probs.gather(-1, targets.view(1, -1, 1).expand(self.n_draws, -1, 1)).squeeze(-1)
        return torch.logsumexp(picked, dim=0) - math.log(self.n_draws)


class BernoulliMixture(_LabelMixture):
    """The predictive of a sigmoid (binary or multi-label) classifier over S weight draws.

    Attributes:
        draws: (S, B, ...) the logits of each weight draw; targets are 0/1 of shape (B, ...).
    """

    family = "bernoulli"

    def __repr__(self) -> str:
        return f"BernoulliMixture(draws={self.n_draws}, target shape={tuple(self.draws.shape[1:])})"

    @property
    def prob_samples(self) -> torch.Tensor:
        """(S, B, ...) each draw's probability of a 1."""
        return torch.sigmoid(self.draws)

    @property
    def probs(self) -> torch.Tensor:
        """(B, ...) the predictive probability of a 1."""
        return self.prob_samples.mean(dim=0)

    def _two_class(self) -> torch.Tensor:
        p = self.prob_samples.reshape(self.n_draws, -1)
        return torch.stack([1 - p, p], dim=-1)  # (S, B * ..., 2)

    @property
    def entropy(self) -> torch.Tensor:
        """(B, ...) the entropy of each label's predictive, in nats."""
        return predictive_entropy(self._two_class()).reshape(self.draws.shape[1:])

    @property
    def aleatoric_entropy(self) -> torch.Tensor:
        """(B, ...) the mean entropy of the draws, in nats."""
        return expected_entropy(self._two_class()).reshape(self.draws.shape[1:])

    @property
    def mutual_information(self) -> torch.Tensor:
        """(B, ...) the epistemic part of the entropy, in nats."""
        return mutual_information(self._two_class()).reshape(self.draws.shape[1:])

    def log_prob(self, targets: torch.Tensor) -> torch.Tensor:
        """(B,) the log predictive probability of each row of 0/1 ``targets`` (B, ...)."""
        _checks.tensor("targets", targets, floating=True)
        _checks.same_shape("targets", targets, self.draws.shape[1:], "the predictive's targets")
        if not bool(((targets == 0) | (targets == 1)).all()):
            raise FblitzValueError("targets must hold 0 or 1")
        per_draw = -F.binary_cross_entropy_with_logits(self.draws, targets.expand_as(self.draws), reduction="none")
        per_row = per_draw.reshape(self.n_draws, self.draws.shape[1], -1).sum(dim=-1)
        return torch.logsumexp(per_row, dim=0) - math.log(self.n_draws)
