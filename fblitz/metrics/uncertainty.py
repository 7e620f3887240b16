"""Uncertainty of a Bayesian classifier from sampled class probabilities.

Given ``prob_samples`` of shape (S, N, C) -- the softmax of S weight draws for
N inputs -- the entropy of the mean prediction splits into

    predictive entropy  H[mean_s p_s]               (total)
  = expected entropy    mean_s H[p_s]               (aleatoric)
  + mutual information  I(y; w | x)                 (epistemic)

(Houlsby et al. 2011; Depeweg et al. 2018; Gal 2016, sec. 3.3). All in nats,
one value per input.

Example:
    >>> import torch
    >>> confident_but_disagreeing = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # (S=2, N=1, C=2)
    >>> round(float(mutual_information(confident_but_disagreeing)[0]), 4)  # log 2
    0.6931
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fblitz.errors import FblitzValueError
from fblitz.metrics import _probabilities


def _samples(prob_samples: torch.Tensor) -> torch.Tensor:
    prob_samples = _probabilities.probabilities("prob_samples", prob_samples, ndim=3)
    if prob_samples.shape[0] < 1:
        raise FblitzValueError(f"prob_samples must have at least one draw (S, N, C), got {tuple(prob_samples.shape)}")
    return prob_samples


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy over the last axis, with 0 * log 0 = 0."""
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def predictive_entropy(prob_samples: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean predictive ``H[mean_s p_s]``: the total uncertainty.

    Args:
        prob_samples: (S, N, C) class probabilities of S weight draws.

    Returns:
        (N,) entropies in nats, in [0, log C].

    Example:
        >>> import torch
        >>> predictive_entropy(torch.tensor([[[0.5, 0.5]], [[0.5, 0.5]]])).tolist()
        [0.6931471824645996]
    """
    return _entropy(_samples(prob_samples).mean(dim=0))


def expected_entropy(prob_samples: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the individual draws ``mean_s H[p_s]``: the aleatoric part.

    Args:
        prob_samples: (S, N, C) class probabilities of S weight draws.

    Returns:
        (N,) entropies in nats.

    Example:
        >>> import torch
        >>> expected_entropy(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])).tolist()
        [0.0]
    """
    return _entropy(_samples(prob_samples)).mean(dim=0)


def mutual_information(prob_samples: torch.Tensor) -> torch.Tensor:
    """Mutual information between label and weights: predictive minus expected entropy.

    The epistemic part (BALD's score); zero when all draws agree. It is >= 0 by
    the concavity of entropy; rounding below 0 is clamped to 0.

    Args:
        prob_samples: (S, N, C) class probabilities of S weight draws.

    Returns:
        (N,) mutual information in nats.

    Example:
        >>> import torch
        >>> mutual_information(torch.tensor([[[0.9, 0.1]], [[0.9, 0.1]]])).tolist()
        [0.0]
    """
    return uncertainty_decomposition(prob_samples).epistemic


class UncertaintyDecomposition(NamedTuple):
    """``total = aleatoric + epistemic``, each of shape (N,), in nats."""

    total: torch.Tensor
    aleatoric: torch.Tensor
    epistemic: torch.Tensor


def uncertainty_decomposition(prob_samples: torch.Tensor) -> UncertaintyDecomposition:
    """Predictive entropy, expected entropy and mutual information in one pass.

    Args:
        prob_samples: (S, N, C) class probabilities of S weight draws.

    Example:
        >>> import torch
        >>> parts = uncertainty_decomposition(torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]]))
        >>> [round(float(t[0]), 4) for t in parts]
        [0.5623, 0.3466, 0.2158]
    """
    prob_samples = _samples(prob_samples)
    total = _entropy(prob_samples.mean(dim=0))
    aleatoric = _entropy(prob_samples).mean(dim=0)
    return UncertaintyDecomposition(total, aleatoric, (total - aleatoric).clamp_min(0.0))
