"""Predictive sampling: S weight draws evaluated in parallel, and intervals.

Example:
    >>> import torch
    >>> from fblitz.layers import linear
    >>> model = linear(3, 1)
    >>> params = model.init(0)
    >>> samples = predict(model, params, torch.ones(10, 3), key=1, n_samples=25)
    >>> samples.shape
    torch.Size([25, 10, 1])
    >>> lower, upper = mean_std_interval(*predictive_mean_std(samples), k=3.0)
"""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.layers.base import Layer, forward_with_state, sample_noise
from fblitz.layers.params_check import check_params
from fblitz.objectives import _check_model, over_samples, resolve_sample_count
from fblitz.per_example import draw_per_example
from fblitz.random import KeyLike
from fblitz.tree import PyTree, tree_leaves, tree_map

ROWS_X_DRAWS_PER_CALL = 1536  # the default group size of predict_with_eps: rows x draws per vectorized call


def evaluation_forward(model: Layer, state: PyTree | None = None):
    """``(params, x, eps) -> y`` for prediction.

    With ``state`` (running statistics from :func:`fblitz.train.fit`), layers
    such as batch norm use the stored statistics (``train=False``); without
    it, ``model.apply`` as it is.
    """
    model = _check_model(model)
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
    :func:`fblitz.predictor.make_predictor`: ``inputs`` and ``eps`` are
    checked here, the outputs concatenated back to (S, B, ...) and checked
    finite.
    """
    _checks.tensor("inputs", inputs)
    _checks.like_params("inputs", inputs, params)
    if inputs.is_floating_point():
        _checks.float_input("inputs", inputs)
    count = _shared_sample_count(eps)
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
    return _checks.finite_result("the predictions", torch.cat(outputs, dim=0))


def _shared_sample_count(eps: PyTree) -> int:
    """The sample count S that every tensor leaf of ``eps`` has as its leading axis."""
    leaves = tree_leaves(eps)
    if not leaves:
        raise FblitzValueError("eps holds no tensors: the model draws no noise (no Gaussian node, no seed)")
    counts = {leaf.shape[0] if isinstance(leaf, torch.Tensor) and leaf.dim() else None for leaf in leaves}
    if None in counts:
        raise FblitzValueError("eps leaves must be tensors with a leading sample axis S")
    if len(counts) != 1:
        raise FblitzValueError(f"eps leaves must share one leading sample count S, got {sorted(counts)}")
    return counts.pop()


def predict(
    model: Layer,
    params: PyTree,
    inputs: torch.Tensor,
    *,
    key: KeyLike,
    n_samples: int | None = None,
    sample_nbr: int | None = None,
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
    :func:`evaluation_forward`). ``estimator``: see :mod:`fblitz.estimators`
    (with local reparameterization or Flipout and ``batch_size``, rows at the
    same position of different chunks share their per-example noise; each
    row's predictive distribution is unaffected).
    """
    count = resolve_sample_count(n_samples, sample_nbr, default=10)
    check_params(_check_model(model), params)
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


def predictive_mean_std(samples: torch.Tensor, *, unbiased: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over the sample axis 0 of ``samples``."""
    _checks.float_input("samples", samples)
    unbiased = _checks.boolean("unbiased", unbiased)
    if samples.dim() == 0 or samples.shape[0] < 2:
        raise FblitzValueError(
            f"samples needs at least 2 draws along axis 0 for a std, got shape {tuple(samples.shape)}"
        )
    if samples.numel() == 0:  # no rows: empty results (torch's std would warn about its degrees of freedom)
        return samples.new_empty(samples.shape[1:]), samples.new_empty(samples.shape[1:])
    mean, std = samples.mean(dim=0), samples.std(dim=0, unbiased=unbiased)
    return _checks.finite_result("the predictive mean", mean), _checks.finite_result("the predictive std", std)


def mfvi_forward(
    model: Layer, params: PyTree, inputs: torch.Tensor, *, key: KeyLike, sample_nbr: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """BLiTZ's ``mfvi_forward``: mean and std of ``sample_nbr`` predictions."""
    return predictive_mean_std(predict(model, params, inputs, key=key, n_samples=sample_nbr))


def gaussian_mixture_mean_std(samples: torch.Tensor, min_sigma: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean/std of samples of ``[mean, raw_scale]`` outputs (last dim 2 * D).

    For models trained with :func:`fblitz.likelihoods.heteroscedastic_gaussian`:
    the variance adds the spread of the means (epistemic) to the average noise
    variance (aleatoric).
    """
    _checks.tensor("samples", samples, floating=True)
    if samples.dim() < 2 or samples.shape[-1] % 2:
        raise FblitzValueError(f"samples must have shape (S, ..., 2 * D), got {tuple(samples.shape)}")
    means, raw = samples.chunk(2, dim=-1)
    noise_var = (torch.nn.functional.softplus(raw) + min_sigma).pow(2)
    mean = means.mean(dim=0)
    var = means.var(dim=0, unbiased=False) + noise_var.mean(dim=0)
    return mean, var.sqrt()


def mean_std_interval(mean: torch.Tensor, std: torch.Tensor, k: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean - k * std, mean + k * std)``; the seed example uses k = 3."""
    k = _checks.positive("k", k)
    _checks.float_input("mean", mean)
    _checks.float_input("std", std)
    _checks.same_shape("std", std, mean.shape, "mean")
    return tuple(_checks.finite_result("the interval", bound) for bound in (mean - k * std, mean + k * std))


def quantile_interval(samples: torch.Tensor, level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Central ``level`` interval from the empirical quantiles over sample axis 0."""
    _checks.float_input("samples", samples)
    if samples.dim() == 0 or samples.numel() == 0:
        raise FblitzValueError(
            f"samples must have at least one draw along axis 0 and be non-empty, got shape {tuple(samples.shape)}"
        )
    level = _checks.probability("level", level)
    if not 0 < level < 1:
        raise FblitzValueError(f"level must lie strictly between 0 and 1, got {level}")
    tail = (1 - level) / 2
    bounds = torch.quantile(samples, torch.tensor([tail, 1 - tail], dtype=samples.dtype, device=samples.device), dim=0)
    return bounds[0], bounds[1]
