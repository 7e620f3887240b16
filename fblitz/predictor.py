"""Prediction built once and called many times, optionally compiled.

:func:`fblitz.prediction.predict` rebuilds its vectorized forward pass on every
call. :func:`make_predictor` builds it once for a model (and its running
statistics), so that ``torch.compile`` can compile it: at thousands of rows
the compiled forward fuses each layer's bias and activation into the matrix
products, so the hidden activations of a group of draws are written to memory
once instead of several times.

Example:
    >>> import torch
    >>> from fblitz.layers import linear, relu, serial
    >>> model = serial(linear(3, 16), relu, linear(16, 1))
    >>> params = model.init(0)
    >>> predictor = make_predictor(model)
    >>> predictor(params, torch.ones(5, 3), key=1, n_samples=20).shape
    torch.Size([20, 5, 1])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import vmap

from fblitz import _checks
from fblitz.estimators import check_estimator
from fblitz.layers.base import Layer, sample_noise
from fblitz.layers.params_check import check_params
from fblitz.objectives import _check_model, resolve_sample_count
from fblitz.per_example import draw_per_example
from fblitz.prediction import evaluate_in_groups, evaluation_forward
from fblitz.random import KeyLike
from fblitz.tree import PyTree

Predictor = Callable[..., torch.Tensor]


def make_predictor(
    model: Layer,
    *,
    state: PyTree | None = None,
    estimator: str | None = None,
    compile: bool = False,
    batch_size: int | None = None,
    sample_batch_size: int | None = None,
) -> Predictor:
    """Build ``predictor(params, inputs, *, key, n_samples=10) -> samples`` of shape (S, B, ...).

    The same draws as :func:`fblitz.prediction.predict` with the same key and
    options (to floating-point rounding when compiled). Evaluated under
    ``torch.no_grad``: for predictions to differentiate through (``jacrev``
    and the like) use :func:`~fblitz.prediction.predict`.

    Args:
        model: the :class:`~fblitz.layers.Layer` to evaluate.
        state: running statistics (batch norm) to evaluate with, as in
            :func:`fblitz.prediction.evaluation_forward`.
        estimator: the noise to draw (:mod:`fblitz.estimators`); None for
            each layer's own.
        compile: compile the vectorized forward pass with ``torch.compile``
            (on first use, seconds to tens of seconds; once more for a
            different group size, e.g. a smaller last group of draws).
        batch_size, sample_batch_size: how many rows and draws each
            vectorized call evaluates (see :func:`fblitz.prediction.predict_with_eps`).
    """
    model = _check_model(model)
    if estimator is not None:
        check_estimator("estimator", estimator)
    if batch_size is not None:
        _checks.integer("batch_size", batch_size, minimum=1)
    if sample_batch_size is not None:
        _checks.integer("sample_batch_size", sample_batch_size, minimum=1)
    compile = _checks.boolean("compile", compile)
    vectorized = vmap(evaluation_forward(model, state), in_dims=(None, None, 0))
    if compile:
        vectorized = torch.compile(vectorized)

    def mapped(params, rows, eps):
        # per-example noise drawn before the (compiled) vectorized pass, as predict draws it
        return vectorized(params, rows, draw_per_example(model, params, eps, rows, state))

    def predictor(params: PyTree, inputs: torch.Tensor, *, key: KeyLike, n_samples: int | None = 10) -> torch.Tensor:
        count = resolve_sample_count(n_samples, None, default=10)
        check_params(model, params)
        eps = sample_noise(model, key, params, count, estimator=estimator)
        with torch.no_grad():
            return evaluate_in_groups(
                mapped, params, inputs, eps, batch_size=batch_size, sample_batch_size=sample_batch_size
            )

    return predictor
