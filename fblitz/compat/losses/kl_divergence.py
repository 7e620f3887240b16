"""BLiTZ's ``kl_divergence_from_nn``: the complexity cost of a model's last forward pass."""

from __future__ import annotations

from torch import nn

from fblitz.compat._module import BayesianModule
from fblitz.errors import FblitzTypeError


def kl_divergence_from_nn(model: nn.Module):
    """``sum(log_variational_posterior - log_prior)`` over the model's :class:`BayesianModule` s.

    Each term is the Monte Carlo estimate ``log q(w) - log p(w)`` at the
    weights the layer drew in its last sampling forward pass (BLiTZ's
    estimate); layers that never sampled contribute 0. Returns a 0-dim tensor
    (or the int 0 for a model without Bayesian layers, as BLiTZ).

    Example:
        >>> import torch
        >>> from fblitz.compat.modules import BayesianLinear
        >>> layer = BayesianLinear(3, 2, seed=0)
        >>> _ = layer(torch.ones(1, 3))
        >>> kl_divergence_from_nn(layer).shape
        torch.Size([])
    """
    if not isinstance(model, nn.Module):
        raise FblitzTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    total = 0
    for module in model.modules():
        if isinstance(module, BayesianModule):
            total = total + (module.log_variational_posterior - module.log_prior)
    return total
