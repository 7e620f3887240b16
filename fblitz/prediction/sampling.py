"""Predictive sampling: S weight draws evaluated in parallel.

Summaries of the draws (mean and std, intervals) are in :mod:`fblitz.metrics.summaries`.

Example:
    >>> import torch
    >>> from fblitz.layers import linear
    >>> model = linear(3, 1)
    >>> params = model.init(0)
    >>> samples = predict(model, params, torch.ones(10, 3), key=1, n_samples=25)
    >>> samples.shape
    torch.Size([25, 10, 1])
    >>> from fblitz.metrics import mean_std_interval, predictive_mean_std
    >>> lower, upper = mean_std_interval(*predictive_mean_std(samples), k=3.0)
"""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.layers.base import Layer, check_model, forward_with_state, noise_sample_count, sample_noise
from fblitz.layers.params_check import check_params
from fblitz.objectives import over_samples
from fblitz.random import KeyLike
from fblitz.tree import PyTree, tree_leaves, tree_map
from fblitz.variational.distributions import blame_params
from fblitz.variational.per_example import draw_per_example

ROWS_X_DRAWS_PER_CALL = 1536  # the default group size of predict_with_eps: rows x draws per vectorized call


def evaluation_forward(model: Layer, state: PyTree | None = None):
    """``(params, x, eps) -> y`` for prediction.

    With ``state`` (running statistics from :func:`fblitz.training.fit`), layers
    such as batch norm use the stored statistics (``train=False``); without
    it, ``model.apply`` as it is.
    """
    model = check_model(model)
    if state is None:
        return model.forward
    return lambda params, x, eps: forward_with_state(model, params, state, x, eps, train=False)[0]


def predict_with_eps(
    model: Layer,
    params: PyTree,
    inputs: torch.Tensor,
    eps: PyTree,
    *,
    batch_size: int | None = None,
    sample_batch_size: int | None = None,
    state: PyTree | None = None,
) -> torch.Tensor:
    """Model outputs for each draw in ``eps`` (leading sample axis S): shape (S, B, ...).

    Memory: one vectorized call holds every layer's activations for all its
    draws and rows at once (draws x rows x width values per hidden layer).
    Two options bound it without changing the draws:

    - ``batch_size``: rows of ``inputs`` in chunks of that many (same weight
      draws for every chunk);
    - ``sample_batch_size``: the S draws in groups of that many, one
      vectorized call per group. The default (None) takes groups of about
      ``ROWS_X_DRAWS_PER_CALL // rows`` draws: all S at once for small
      inputs, a few at a time for thousands of rows, where it also runs
      faster (the activations stay in cache; see benchmarks/README.md).
      Pass ``sample_batch_size=S`` for a single call.

    ``state``: see :func:`evaluation_forward`. Every tensor of ``eps`` must
    have the same leading sample count S (FblitzValueError otherwise, also
    for a noise tree without tensors: a model that draws no noise).
    """
    forward = evaluation_forward(model, state)
    check_params(model, params)

    def mapped(params, rows, eps):
        eps = draw_per_example(model, params, eps, rows, state)
        with _checks.trusted():  # inputs are checked before, the predictions after (evaluate_in_groups)
            return over_samples(lambda e: forward(params, rows, e))(eps)

    return evaluate_in_groups(mapped, params, inputs, eps, batch_size=batch_size, sample_batch_size=sample_batch_size)


def evaluate_in_groups(
    mapped, params: PyTree, inputs: torch.Tensor, eps: PyTree, *, batch_size=None, sample_batch_size=None
) -> torch.Tensor:
    """``mapped(params, rows, eps_group) -> (draws, rows, ...)`` over groups of rows and draws.

    The grouping of :func:`predict_with_eps` and
    :func:`fblitz.prediction.predictor.make_predictor`: ``inputs`` and ``eps`` are
    checked here, the outputs concatenated back to (S, B, ...) and checked
    finite.
    """
    _checks.tensor("inputs", inputs)
    _checks.like_params("inputs", inputs, params)
    if inputs.is_floating_point():
        _checks.float_input("inputs", inputs)
    count = noise_sample_count(tree_leaves(eps))
    for leaf in tree_leaves(eps):
        if leaf.is_floating_point():
            _checks.like_params("eps", leaf, params)
    row_chunks = [inputs]
    if batch_size is not None:
        batch_size = _checks.integer("batch_size", batch_size, minimum=1)
        if inputs.dim() == 0:
            raise FblitzValueError("inputs must have a batch dimension to be split into chunks, got a 0-dim tensor")
        row_chunks = list(inputs.split(batch_size))
    if sample_batch_size is None:
        rows = row_chunks[0].shape[0] if inputs.dim() else 1
        sample_batch_size = max(1, ROWS_X_DRAWS_PER_CALL // max(rows, 1))
    else:
        sample_batch_size = _checks.integer("sample_batch_size", sample_batch_size, minimum=1)
    size = sample_batch_size
    eps_groups = [tree_map(lambda t, i=i: t[i : i + size], eps) for i in range(0, count, size)]
    outputs = [torch.cat([mapped(params, rows, group) for rows in row_chunks], dim=1) for group in eps_groups]
    predictions = torch.cat(outputs, dim=0)
    blame_params("the predictions", params, predictions)  # the layers skip value checks here
    return _checks.finite_result("the predictions", predictions)


def predict(
    model: Layer,
    params: PyTree,
    inputs: torch.Tensor,
    *,
    key: KeyLike,
    n_samples: int = 10,
    batch_size: int | None = None,
    sample_batch_size: int | None = None,
    state: PyTree | None = None,
    estimator: str | None = None,
) -> torch.Tensor:
    """Predictive samples: ``n_samples`` weight draws from ``key``, output (S, B, ...).

    ``batch_size``, ``sample_batch_size``: how many rows and draws each
    vectorized call evaluates (see :func:`predict_with_eps`; by default all
    rows, and all draws unless there are thousands of rows); the draws are
    the same whatever the grouping.
    ``state``: running statistics for models with batch norm (see
    :func:`evaluation_forward`). ``estimator``: see :mod:`fblitz.variational.estimators`
    (with local reparameterization or Flipout and ``batch_size``, rows at the
    same position of different chunks share their per-example noise; each
    row's predictive distribution is unaffected).
    """
    count = _checks.integer("n_samples", n_samples, minimum=1)
    check_params(check_model(model), params)
    eps = sample_noise(model, key, params, count, estimator=estimator)
    return predict_with_eps(
        model, params, inputs, eps, batch_size=batch_size, sample_batch_size=sample_batch_size, state=state
    )


def predict_mean_weights(
    model: Layer, params: PyTree, inputs: torch.Tensor, *, state: PyTree | None = None
) -> torch.Tensor:
    """The output of the network with the posterior means (BLiTZ's frozen model)."""
    forward = evaluation_forward(model, state)
    check_params(model, params)
    return forward(params, inputs, None)
