"""The training step: S weight draws, the gradient of the vmapped negative ELBO, one optimizer update.

Example:
    >>> import torch
    >>> from fblitz import layers, likelihoods, optim
    >>> model = layers.serial(layers.linear(1, 8), layers.relu, layers.linear(8, 1))
    >>> opt = optim.adam(1e-2)
    >>> step = make_train_step(model, likelihoods.gaussian(0.1), opt, n_samples=2)
    >>> params = model.init(0)
    >>> x = torch.linspace(-1, 1, 16).unsqueeze(1)
    >>> out = step(params, opt.init(params), 1, x, 2 * x, 1 / 16)
    >>> bool(out.finite), out.terms.loss.shape
    (True, torch.Size([]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz._fused import all_finite
from fblitz.layers.base import Layer, check_model, draw_noise, sample_noise
from fblitz.layers.params_check import check_params
from fblitz.likelihoods import as_likelihood
from fblitz.objectives import ElboTerms, elbo_grad
from fblitz.optim import GradientTransformation, OptState, apply_gradients, check_optimizer
from fblitz.tree import PyTree, tree_leaves, tree_structure
from fblitz.variational.estimators import check_estimator
from fblitz.variational.kl import KL_MODES, make_plan
from fblitz.variational.per_example import draw_per_example


class StepOutcome(NamedTuple):
    """What a training step returns: the new values and a 0-dim bool ``finite``.

    ``finite`` is False when the loss or the global gradient norm is NaN or
    infinite; the new params/opt_state are then not to be used (the inputs of
    the step are untouched, so keep those). ``state`` holds the new running
    statistics of models with batch norm (None otherwise).
    """

    params: PyTree
    opt_state: OptState
    terms: ElboTerms
    state: PyTree | None
    finite: torch.Tensor


class TrainStep(NamedTuple):
    """A pure training step; call it as ``step(params, opt_state, key, inputs, targets, weight, state=None)``.

    Returns a :class:`StepOutcome` of fresh tensors: ``params, opt_state,
    terms, state, finite``. ``params`` is checked against the model first
    (:func:`fblitz.layers.check_params`); ``weight`` is the
    ``complexity_cost_weight``. Models with running statistics (batch norm)
    pass their ``state``; the new one is the average over the S weight samples
    (see :func:`fblitz.objectives.elbo_terms_with_state`).
    """

    fn: Callable
    model: Layer

    def __call__(
        self, params, opt_state, key, inputs, targets, complexity_cost_weight=1.0, *, state=None
    ) -> StepOutcome:
        check_params(self.model, params)
        return StepOutcome(*self.fn(params, opt_state, state, key, inputs, targets, complexity_cost_weight))


def weight_tensor(weight: float | torch.Tensor, params: PyTree) -> torch.Tensor:
    """The ``complexity_cost_weight`` as a 0-dim tensor of the params' dtype and device (checked when a number).

    A tensor, so that a compiled step is not specialised to each weight value.
    """
    if isinstance(weight, torch.Tensor):
        return weight
    like = next(leaf for leaf in tree_leaves(params) if leaf.is_floating_point())
    value = _checks.non_negative("complexity_cost_weight", weight)
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def compiled_noise(model: Layer, params: PyTree, eps: PyTree, inputs, targets, state=None) -> PyTree:
    """``eps`` ready for a compiled gradient: per-example noise drawn here, outside the graph, as the
    eager step draws it (:func:`fblitz.variational.per_example.draw_per_example`), and the batch
    dimensions marked dynamic. Single-process and distributed compiled steps both call it, so that
    compiled, eager, local and distributed training draw the same numbers from the same key.
    """
    eps = draw_per_example(model, params, eps, inputs, state)
    _mark_dynamic(inputs, targets, eps)
    return eps


def _mark_dynamic(inputs: torch.Tensor, targets: torch.Tensor, eps: PyTree) -> None:
    """One compiled graph for every batch size (e.g. a smaller last batch), per-example noise included."""
    torch._dynamo.maybe_mark_dynamic(inputs, 0)
    torch._dynamo.maybe_mark_dynamic(targets, 0)
    for leaf in tree_leaves(eps):
        if leaf.dim() >= 2 and inputs.dim() and leaf.shape[1] == inputs.shape[0]:
            torch._dynamo.maybe_mark_dynamic(leaf, 1)


def make_train_step(
    model: Layer,
    likelihood,
    optimizer: GradientTransformation,
    *,
    n_samples: int = 1,
    kl_mode: str = "auto",
    estimator: str | None = None,
    compile: bool = False,
) -> TrainStep:
    """Build the step: draw S noise samples from the key, take the gradient
    of the vmapped negative ELBO, apply the optimizer.

    With ``compile=True`` the gradient computation -- the vmapped ELBO and
    its gradient, where the many small operations are -- is compiled by
    ``torch.compile`` on first use (seconds to tens of seconds, once per
    process with a warm compile cache; needs a C++ compiler). The noise
    draws, the non-finite guard and the optimizer update stay outside the
    compiled graph: each is one or a few fused kernels already, and a smaller
    graph compiles faster. For small networks, where each step is dominated
    by per-op overhead, that makes steps several times faster; results match
    eager mode to floating-point rounding.
    """
    model = check_model(model)
    likelihood = as_likelihood(likelihood)
    check_optimizer(optimizer)
    n_samples = _checks.integer("n_samples", n_samples, minimum=1)
    _checks.one_of("kl_mode", kl_mode, KL_MODES)
    if estimator is not None:
        check_estimator("estimator", estimator)
    compile = _checks.boolean("compile", compile)
    plans: dict = {}
    loss_grad = elbo_grad(model, likelihood)
    if compile:
        loss_grad = torch.compile(loss_grad)

    def step(params, opt_state, state, key, inputs, targets, weight):
        structure = tree_structure(params)
        if structure not in plans:
            plans[structure] = make_plan(params, model.priors, kl_mode)
            eps = sample_noise(model, key, params, n_samples, estimator=estimator)  # checked once per tree
        else:
            eps = draw_noise(model, key, params, n_samples, estimator)
        weight = weight_tensor(weight, params)
        if compile:
            eps = compiled_noise(model, params, eps, inputs, targets, state)
        grads, terms, state = loss_grad(params, state, eps, inputs, targets, weight, plans[structure])
        # the guard, read by the caller: one pass over the gradients, before the optimizer reads them
        finite = all_finite(terms.loss, tree_leaves(grads))
        params, opt_state = apply_gradients(optimizer, grads, opt_state, params)
        return params, opt_state, terms, None if state == () else state, finite

    return TrainStep(step, model)
