"""Bayesian fully connected layer (Bayes by Backprop, Blundell et al. 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.estimators import ESTIMATORS
from fblitz.layers._spec import bayes_from, gaussian_layer
from fblitz.layers.base import Layer
from fblitz.priors import Prior


def linear(
    in_features: int,
    out_features: int,
    bias: bool = True,
    prior_sigma_1: float = 0.1,
    prior_sigma_2: float = 0.4,
    prior_pi: float = 1.0,
    posterior_mu_init: float = 0.0,
    posterior_rho_init: float = -7.0,
    freeze: bool = False,
    prior: Prior | None = None,
    *,
    posterior_mu_std: float = 0.1,
    posterior_rho_std: float = 0.1,
    estimator: str = "reparameterization",
    posterior: str = "gaussian",
) -> Layer:
    """A Bayesian ``y = x @ W.T + b`` with W, b ~ q = N(mu, softplus(rho)^2).

    Arguments and defaults are BLiTZ's ``BayesianLinear``: the prior is the
    scale mixture (``prior_pi``, ``prior_sigma_1``, ``prior_sigma_2``) unless
    ``prior`` is given; means start at N(posterior_mu_init, 0.1^2) and rho at
    N(posterior_rho_init, 0.1^2). ``freeze=True`` always uses the means.
    ``estimator``: ``"reparameterization"`` (BLiTZ's), ``"local_reparameterization"``
    or ``"flipout"`` (see :mod:`fblitz.estimators`). ``posterior="radial"``
    samples each tensor from the radial posterior instead of the Gaussian
    (see :mod:`fblitz.radial`; plain reparameterization or Flipout, Monte Carlo KL).

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
    args = bayes_from(locals())
    shapes = {"weight": (out_features, in_features)}
    if bias:
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
