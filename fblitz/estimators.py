"""Gradient estimators for layers whose output is linear in their weights.

Every Bayesian weight layer computes ``op(x, weight, bias)`` with an op that
is linear in ``(weight, bias)`` (``F.linear``, ``F.conv*d``,
``F.conv_transpose*d``). Three ways to evaluate it under q = N(mu, sigma^2):

``"reparameterization"`` (Blundell et al. 2015, BLiTZ's only one)
    one weight sample ``w = mu + sigma * eps`` shared by the whole batch.
    Noise ``{"weight": eps_w, "bias": eps_b}``.
``"local_reparameterization"`` (Kingma, Salimans & Welling 2015)
    sample the pre-activations instead: ``mean = op(x, mu_w, mu_b)``,
    ``var = op(x^2, sigma_w^2, sigma_b^2)``, ``out = mean + sqrt(var) * z``
    with independent z per example and output. Each example gets its own
    implicit weight draw, so gradient variance drops, and no weight matrix is
    sampled. Needs a factorised Gaussian posterior and an op whose every
    output sums over distinct weights (true for linear and convolutions; for
    convolutions the marginal of each activation is exact, correlations
    between positions of one example are dropped). There is no weight sample,
    so the KL must be closed form (``kl_mode="closed_form"``, a Gaussian
    prior); the Monte Carlo KL raises. Noise ``{"seed": int64}``.
``"flipout"`` (Wen et al. 2018)
    one shared perturbation ``dW = sigma * eps`` decorrelated across the
    batch by random signs: ``out = op(x, mu_w, b) + op(x * s_in, dW) * s_out``
    with per-example Rademacher vectors over input and output features (or
    channels). Every example's output has exactly the distribution of plain
    reparameterization; examples are nearly independent. The weight sample
    ``mu + sigma * eps`` exists, so every KL mode works. Noise
    ``{"weight": eps_w, "bias": eps_b, "seed": int64}``.

The per-example numbers (the z of local reparameterization, Flipout's signs)
come from the ``"seed"``: drawn with ``torch``'s generator before the forward
pass on the CPU (:mod:`fblitz.per_example`), or expanded by the counter-based
generator of :mod:`fblitz.seeded` inside it.

A layer's ``apply`` recognises the estimator from the keys of its noise, so
the choice is made when noise is drawn: per layer (the constructor's
``estimator=``) or per call (``sample_noise(..., estimator=...)``, ``fit``,
``sample_elbo`` and ``predict`` take ``estimator=`` too and apply it to every
layer that supports it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fblitz import _checks, seeded
from fblitz.distributions import sigma

ESTIMATORS = ("reparameterization", "local_reparameterization", "flipout")

Op = Callable[..., torch.Tensor]


def check_estimator(name: str, value: object, supported: tuple[str, ...] = ESTIMATORS) -> str:
    """``value`` if it is one of ``supported``, else a clear error naming ``name``."""
    return _checks.one_of(name, value, supported)


def kind_of(eps: dict) -> str:
    """The estimator a layer's noise dict was drawn for (see the module docstring)."""
    if "seed" not in eps:
        return "reparameterization"
    return "flipout" if "weight" in eps else "local_reparameterization"


def local_reparameterization(op: Op, params: dict, x: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Pre-activations ``op(x, mu) + sqrt(op(x^2, sigma^2)) * z``, z ~ N(0, 1) from ``seed``.

    ``params`` maps each argument name of ``op`` (``weight``, ``bias``) to a
    Gaussian node. The output has ``op``'s shape.
    """
    means = {name: node["mu"] for name, node in params.items()}
    variances = {name: sigma(node["rho"]).square() for name, node in params.items()}
    mean = op(x, **means)
    var = op(x.square(), **variances)
    # var is 0 only where x and the bias vanish; clamping keeps sqrt's gradient finite there
    scale = var.clamp_min(torch.finfo(var.dtype).tiny).sqrt()
    return torch.addcmul(mean, scale, seeded.normal(seed, mean.shape, dtype=mean.dtype, device=mean.device))


def flipout(
    op: Op, params: dict, x: torch.Tensor, eps: dict, sign_shape: Callable[[torch.Tensor], tuple[int, ...]]
) -> torch.Tensor:
    """``op(x, mu_w, b) + op(x * s_in, sigma_w * eps_w) * s_out`` with random signs from ``eps["seed"]``.

    ``sign_shape(t)`` gives the shape of a per-example sign tensor for ``t``
    (the input or the output): e.g. ``t.shape`` for a linear layer,
    ``t.shape[:2] + (1,) * spatial`` for a convolution (one sign per channel).
    The bias, if any, is sampled once (``mu_b + sigma_b * eps_b``).
    """
    weight = params["weight"]
    mean_args = {"weight": weight["mu"]}
    if "bias" in params:
        bias = params["bias"]
        mean_args["bias"] = torch.addcmul(bias["mu"], sigma(bias["rho"]), eps["bias"])
    mean = op(x, **mean_args)
    delta = sigma(weight["rho"]) * eps["weight"]
    s_in = seeded.rademacher(seeded.stream(eps["seed"], 0), sign_shape(x), dtype=x.dtype, device=x.device)
    s_out = seeded.rademacher(seeded.stream(eps["seed"], 1), sign_shape(mean), dtype=mean.dtype, device=mean.device)
    return mean + op(x * s_in, weight=delta) * s_out
