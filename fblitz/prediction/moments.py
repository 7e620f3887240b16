"""The predictive mean and variance in closed form, without drawing weights.

:func:`predictive_moments` runs the moment-propagation rules of
:mod:`fblitz.variational.moments` through a model: exact for one hidden layer
(linear -> relu -> linear), the diagonal Gaussian approximation of
deterministic variational inference beyond (see that module). It gives the
mean and variance of each output, not samples (no quantiles, no correlations
between rows or outputs).

Example:
    >>> import torch
    >>> from fblitz.layers import Bayes, linear, relu, serial
    >>> model = serial(linear(3, 64, bayes=Bayes(rho_init=-3.0)), relu, linear(64, 1, bayes=Bayes(rho_init=-3.0)))
    >>> params = model.init(0)
    >>> m = predictive_moments(model, params, torch.ones(5, 3))
    >>> m.mean.shape, m.var.shape, m.exact
    (torch.Size([5, 1]), torch.Size([5, 1]), True)
"""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.layers.params_check import check_params
from fblitz.tree import PyTree
from fblitz.variational.distributions import blame_params, shared_sigmas
from fblitz.variational.moments import POINT, Moments

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
    blame_params("the predictive moments", params, mean, var)  # the layers skip value checks here
    _checks.finite_result("the predictive mean", mean)
    _checks.finite_result("the predictive variance", var)
    return Moments(mean, var, parts[0].kind)
