"""Bayesian fully connected layer (Bayes by Backprop, Blundell et al. 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.layers._spec import bayes_from, gaussian_layer
from fblitz.layers.base import Layer
from fblitz.layers.settings import Bayes, takes_bayes
from fblitz.variational.estimators import ESTIMATORS


@takes_bayes
def linear(in_features: int, out_features: int, bias: bool = True, *, bayes: Bayes | None = None) -> Layer:
    """A Bayesian ``y = x @ W.T + b`` with W, b ~ q = N(mu, softplus(rho)^2).

    torch's ``nn.Linear`` arguments; ``bayes`` (a :class:`~fblitz.layers.Bayes`,
    None for the defaults) holds the prior, posterior init, posterior family,
    estimator and ``freeze``. The defaults are BLiTZ's ``BayesianLinear``:
    prior N(0, 0.1^2), mu ~ N(0, 0.1^2), rho ~ N(-7, 0.1^2). Every estimator
    applies (``"reparameterization"``, ``"local_reparameterization"``,
    ``"flipout"``); ``posterior="radial"`` with the first or the last.

    Params tree::

        {"weight": {"mu": (out, in), "rho": (out, in)},
         "bias":   {"mu": (out,),    "rho": (out,)}}     # absent when bias=False

    ``apply(params, x, eps)`` maps ``x`` of shape (..., in_features) to
    (..., out_features).

    Example:
        >>> import torch
        >>> from fblitz.random import sample_eps
        >>> layer = linear(3, 2)
        >>> params = layer.init(0)
        >>> layer.apply(params, torch.ones(5, 3), sample_eps(1, params)).shape
        torch.Size([5, 2])
    """
    in_features = _checks.integer("in_features", in_features, minimum=1)
    out_features = _checks.integer("out_features", out_features, minimum=1)
    args = bayes_from(bayes, rho_init=-7.0, sigma_2=0.4)
    shapes = {"weight": (out_features, in_features)}
    if _checks.boolean("bias", bias):
        shapes["bias"] = (out_features,)

    def check(x):
        _checks.tensor("x", x, floating=True)
        _checks.last_dim("x", x, in_features)

    name = f"linear({in_features}, {out_features}{'' if bias else ', bias=False'})"
    return gaussian_layer(
        name, shapes, args, linear_op, check, estimators=ESTIMATORS, sign_shape=_feature_signs, moments=True
    )


def _feature_signs(t: torch.Tensor) -> tuple[int, ...]:
    """Flipout signs for a linear layer: one per example and feature."""
    return tuple(t.shape)


def linear_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The deterministic op of :func:`linear`: ``x @ weight.T + bias`` (``F.linear``)."""
    return F.linear(x, weight, bias)
