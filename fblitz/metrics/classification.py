"""Classification metrics from predicted class probabilities: accuracy, Brier score, NLL.

``probs`` has shape (N, C) and sums to 1 over classes (for a Bayesian network,
average the softmax over weight draws first: ``prob_samples.mean(0)``);
``labels`` has shape (N,) with integer class indices.

Example:
    >>> import torch
    >>> probs = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    >>> accuracy(probs, torch.tensor([0, 0]))
    0.5
"""

from __future__ import annotations

import torch

from fblitz.metrics import _probabilities


def _inputs(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    probs = _probabilities.probabilities("probs", probs, ndim=2)
    _probabilities.non_empty("probs", probs)
    return probs, _probabilities.labels("labels", labels, rows=probs.shape[0], classes=probs.shape[1])


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose most probable class is the label.

    Args:
        probs: (N, C) class probabilities.
        labels: (N,) integer class indices.

    Example:
        >>> import torch
        >>> accuracy(torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]]), torch.tensor([0, 1, 1]))
        0.6666666666666666
    """
    probs, labels = _inputs(probs, labels)
    return float((probs.argmax(dim=1) == labels).double().mean())


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Multiclass Brier score: mean over rows of ``sum_c (probs[c] - onehot[c])^2``.

    It lies in [0, 2]; lower is better. For two classes it is twice the binary
    Brier score (scikit-learn's ``brier_score_loss`` on ``probs[:, 1]``).

    References:
        Brier (1950), *Verification of forecasts expressed in terms of probability*.

    Args:
        probs: (N, C) class probabilities.
        labels: (N,) integer class indices.

    Example:
        >>> import torch
        >>> round(brier_score(torch.tensor([[0.8, 0.2], [0.5, 0.5]]), torch.tensor([0, 1])), 4)
        0.29
    """
    probs, labels = _inputs(probs, labels)
    onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).to(probs.dtype)
    return float(((probs - onehot) ** 2).sum(dim=1).double().mean())


def classification_nll(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-probability of the labels (natural log; lower is better).

    A label given probability 0 makes it infinite; nothing is clipped.

    Args:
        probs: (N, C) class probabilities.
        labels: (N,) integer class indices.

    Example:
        >>> import torch
        >>> round(classification_nll(torch.tensor([[0.5, 0.5], [0.25, 0.75]]), torch.tensor([0, 1])), 4)
        0.4904
    """
    probs, labels = _inputs(probs, labels)
    chosen = probs.double().gather(1, labels.unsqueeze(1)).squeeze(1)
    return float(-torch.log(chosen).mean())
