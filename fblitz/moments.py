"""The predictive mean and variance in closed form, without drawing weights.

For a row of inputs x, a Bayesian linear layer ``y = W x + b`` with independent
Gaussian weights has outputs of mean ``mu_W x + mu_b`` and variance
``sigma_W^2 x^2 + sigma_b^2``, and its output units are independent Gaussians
(each uses its own row of W). A ReLU of an independent Gaussian unit has the
mean and variance of a rectified Gaussian (closed form, with the normal CDF
and density). A linear layer applied to independent units of known mean m
and variance v has outputs of mean ``mu_W m + mu_b`` and variance
``sigma_W^2 (v + m^2) + mu_W^2 v + sigma_b^2``. So the predictive mean and
variance of every output of ``serial(linear, relu, linear)`` -- one hidden
layer -- are exact; what ``mfvi_forward`` estimates from S draws, without the
Monte Carlo error, at the cost of one forward pass of twice the width.

Beyond one hidden layer the outputs of a linear layer are correlated (they
share their input) and not Gaussian, and moment propagation treats them as
independent Gaussians: the standard diagonal approximation of deterministic
variational inference (Wu et al. 2019), not the exact predictive moments.
:class:`Moments` says which (``exact``).

A layer supports this through the optional ``moments`` field of the layer
protocol (``moments(params, Moments) -> Moments``): Gaussian linear layers,
ReLU, identity, flatten and ``serial`` chains of them have it.

What it does not give: samples (and so no quantiles or correlations between
rows or outputs), only the mean and variance of each output.

Example:
    >>> import torch
    >>> from fblitz.layers import linear, relu, serial
    >>> model = serial(linear(3, 64, posterior_rho_init=-3.0), relu, linear(64, 1, posterior_rho_init=-3.0))
    >>> params = model.init(0)
    >>> m = predictive_moments(model, params, torch.ones(5, 3))
    >>> m.mean.shape, m.var.shape, m.exact
    (torch.Size([5, 1]), torch.Size([5, 1]), True)

References:
    Wu, A., Nowozin, S., Meeds, E., Turner, R. E., Hernandez-Lobato, J. M., Gaunt, A. L. (2019).
    Deterministic variational inference for robust Bayesian neural networks. ICLR.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.distributions import shared_sigmas, sigma
from fblitz.errors import FblitzValueError
from fblitz.tree import PyTree

# What is known about the units of a Moments value, from most to least:
POINT = "point"  # no randomness (the inputs)
GAUSSIAN = "gaussian"  # independent Gaussian units, exact
INDEPENDENT = "independent"  # independent units, exact mean and variance, not Gaussian
EXACT = "exact"  # exact mean and variance of each unit; units correlated, not Gaussian
APPROXIMATE = "approximate"  # the diagonal Gaussian approximation took over


class Moments(NamedTuple):
    """Elementwise mean and variance of a layer's output, and what is known about them.

    Attributes:
        mean, var: tensors of the output's shape.
        kind: one of ``"point"``, ``"gaussian"``, ``"independent"``, ``"exact"``,
            ``"approximate"`` (see the module docstring).
    """

    mean: torch.Tensor
    var: torch.Tensor
    kind: str = POINT

    @property
    def exact(self) -> bool:
        """True when ``mean`` and ``var`` are the exact moments (no approximation was made)."""
        return self.kind != APPROXIMATE


def linear_moments(op, nodes: dict, frozen: bool, x: Moments) -> Moments:
    """Moments of ``op(x, weight, bias)`` (linear in its tensors, every output a sum over distinct
    weights) for independent Gaussian weights ``nodes`` (name -> ``{"mu", "rho"}``)."""
    means = {name: node["mu"] for name, node in nodes.items()}
    mean = op(x.mean, **means)
    if frozen:
        var = op(x.var, **{"weight": means["weight"].square()}) if x.kind != POINT else torch.zeros_like(mean)
    else:
        variances = {name: sigma(node["rho"]).square() for name, node in nodes.items()}
        var = op(x.var + x.mean.square(), **variances)
        if x.kind != POINT:
            var = var + op(x.var, weight=means["weight"].square())
    kind = {POINT: GAUSSIAN if not frozen else POINT, GAUSSIAN: EXACT, INDEPENDENT: EXACT}.get(x.kind, APPROXIMATE)
    return Moments(mean, var, kind)


def relu_moments(x: Moments) -> Moments:
    """Moments of ``relu`` of units with the given mean and variance, taken as Gaussian (exact when they are)."""
    if x.kind == POINT:
        return Moments(torch.relu(x.mean), torch.zeros_like(x.var), POINT)
    m, v = x.mean, x.var
    std = v.clamp_min(torch.finfo(v.dtype).tiny).sqrt()
    alpha = m / std
    # Phi(alpha) through erf, which is vectorised (torch's ndtr runs about ten times slower on CPUs)
    cdf = torch.erf(alpha * (1 / math.sqrt(2))).add_(1.0).mul_(0.5)
    # std * density(alpha); the exponent is clamped where the density is below 1e-34 anyway, because exp
    # producing subnormal numbers runs an order of magnitude slower on CPUs
    std_pdf = alpha.square_().mul_(-0.5).clamp_min_(-78.0).exp_().mul_(std).mul_(1 / math.sqrt(2 * math.pi))
    first = torch.addcmul(std_pdf, m, cdf)  # E[relu] = m cdf + std pdf
    second = torch.addcmul(std_pdf.mul_(m), torch.addcmul(v, m, m), cdf)  # E[relu^2] = (m^2 + v) cdf + m std pdf
    kind = INDEPENDENT if x.kind == GAUSSIAN else APPROXIMATE
    return Moments(first, second.addcmul_(first, first, value=-1.0).clamp_min_(0.0), kind)


ROWS_PER_CALL = 128  # rows evaluated together: a few hidden layers of them stay in the CPU's cache


def predictive_moments(model, params: PyTree, inputs: torch.Tensor, *, batch_size: int = ROWS_PER_CALL) -> Moments:
    """The mean and variance of ``model``'s output for each row of ``inputs``, in closed form.

    Args:
        model: a :class:`~fblitz.layers.Layer` whose layers all support moments
            (Gaussian linear layers, ReLU, identity, flatten, ``serial``).
        params: its params.
        inputs: a batch (B, ...) of inputs.
        batch_size: rows per pass (rows are independent; small passes keep
            the hidden layers' moments in cache).

    Returns:
        :class:`Moments` with ``mean`` and ``var`` of the output's shape;
        ``exact`` is True for up to one hidden layer (see the module docstring).

    Raises:
        FblitzValueError: a layer of ``model`` has no closed-form moments.
    """
    moments = getattr(model, "moments", None)
    if moments is None:
        raise FblitzValueError(
            f"{model!r} has no closed-form moments: supported are Gaussian linear layers, relu, identity, flatten "
            "and serial chains of them (use predict for draws)"
        )
    from fblitz.layers.params_check import check_params  # layers build on this module

    check_params(model, params)
    _checks.float_input("inputs", inputs)
    _checks.like_params("inputs", inputs, params)
    batch_size = _checks.integer("batch_size", batch_size, minimum=1)
    if inputs.dim() == 0:
        raise FblitzValueError("inputs must have a batch dimension, got a 0-dim tensor")
    with torch.no_grad(), _checks.trusted(), shared_sigmas():  # each sigma once for all chunks of rows
        parts = [moments(params, Moments(rows, torch.zeros_like(rows), POINT)) for rows in inputs.split(batch_size)]
    mean = torch.cat([part.mean for part in parts]) if len(parts) > 1 else parts[0].mean
    var = torch.cat([part.var for part in parts]) if len(parts) > 1 else parts[0].var
    _checks.finite_result("the predictive mean", mean)
    _checks.finite_result("the predictive variance", var)
    return Moments(mean, var, parts[0].kind)
