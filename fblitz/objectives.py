"""The Monte Carlo negative ELBO, vectorised over weight samples with ``vmap``.

For one weight draw w_s = mu + sigma * eps_s the per-sample loss is

    loss_s = likelihood(f(w_s, x), y) + complexity_cost_weight * KL_s

and the estimate is the mean over the S draws (BLiTZ's ``sample_elbo``). The
draws are evaluated in parallel by ``torch.func.vmap``, never by a Python loop.

**The one convention for ``complexity_cost_weight``.** Likelihoods return the
negative log-likelihood *averaged* over the batch, so the loss is the negative
ELBO of the whole data set divided by its size N, and the KL must be weighted
by ``1 / N`` -- for every minibatch, whatever its size. Then each minibatch
loss is an unbiased estimate of ``-ELBO / N``. Blundell et al.'s scheme instead
weights minibatch i of M by pi_i = 2^(M-i) / (2^M - 1); in this convention that
is ``complexity_cost_weight = M * pi_i / N``
(:func:`fblitz.training.kl_weights` computes both). A criterion that *sums* over
the batch (``reduction="sum"``) needs ``batch_size / N`` instead.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.func import vmap

from fblitz import _checks
from fblitz._grad import grad_with_aux, traced
from fblitz.errors import FblitzValueError
from fblitz.layers.base import Layer, check_model, draw_noise, forward_with_state, noise_sample_count, sample_noise
from fblitz.layers.params_check import check_params
from fblitz.likelihoods import Likelihood, as_likelihood
from fblitz.random import KeyLike
from fblitz.tree import PyTree, path_name, tree_flatten, tree_map, tree_unflatten
from fblitz.variational.distributions import shared_sigmas
from fblitz.variational.estimators import ESTIMATORS
from fblitz.variational.kl import KLPlan, closed_form_kl, make_plan, monte_carlo_kl
from fblitz.variational.per_example import draw_per_example


class ElboTerms(NamedTuple):
    """The negative ELBO and its two parts.

    Attributes:
        loss: ``data + complexity_cost_weight * kl``, the quantity to minimise.
        data: the likelihood term (mean negative log-likelihood per datum).
        kl: the unweighted KL(q || p) estimate.
    """

    loss: torch.Tensor
    data: torch.Tensor
    kl: torch.Tensor


def over_samples(fn):
    """``fn(eps_s) -> outputs`` mapped over the leading sample axis of ``eps``.

    ``torch.func.vmap`` for S > 1. A single draw (every leaf with S = 1) is evaluated directly on
    ``eps[0]`` (and its outputs given back their sample axis): the result is
    the same -- every layer's sample under ``vmap`` equals the layer alone,
    which the layer contract test checks -- without vmap's per-op overhead,
    which makes one-sample steps cost what a plain forward pass costs.
    """

    def run(eps):
        leaves, structure = tree_flatten(eps)
        if leaves and all(leaf.shape[0] == 1 for leaf in leaves):
            return tree_map(lambda t: t.unsqueeze(0), fn(tree_unflatten(structure, [leaf[0] for leaf in leaves])))
        # vmap over the flat leaves: vmap's own (Python) flattening of a nested noise tree costs more
        return vmap(lambda *flat: fn(tree_unflatten(structure, list(flat))))(*leaves)

    return run


def sample_count(model: Layer, params: PyTree, eps: PyTree) -> int:
    """Check ``eps`` against the noise ``model`` draws and return its sample count S.

    ``eps`` must have the structure of ``sample_noise(model, key, params, S,
    estimator=...)`` for some estimator: each leaf that tree's shape with one
    shared leading sample axis S.
    """
    error = None
    for estimator in (None, *ESTIMATORS):  # each layer's own estimator, or one chosen per call
        expected, structure = tree_flatten(draw_noise(model, 0, params, 1, estimator))
        try:
            leaves = structure.flatten_up_to(eps)
            break
        except (ValueError, TypeError) as mismatch:
            error = error or mismatch
    else:
        raise FblitzValueError(f"eps must follow the structure of sample_noise(model, key, params, S): {error}")
    for path, leaf, like in zip(structure.paths(), leaves, expected):
        if not isinstance(leaf, torch.Tensor) or leaf.dtype != like.dtype or leaf.shape[1:] != like.shape[1:]:
            got = f"{tuple(leaf.shape)} {leaf.dtype}" if isinstance(leaf, torch.Tensor) else repr(leaf)
            raise FblitzValueError(
                f"eps at '{path_name(path)}' must be a {like.dtype} tensor of shape (S, *{tuple(like.shape[1:])}) "
                f"with a leading sample axis, got {got}"
            )
    return noise_sample_count(leaves)


def elbo_terms(
    model: Layer,
    plan: KLPlan,
    likelihood: Likelihood,
    params: PyTree,
    eps: PyTree,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    complexity_cost_weight: float | torch.Tensor,
) -> ElboTerms:
    """The unchecked core of :func:`elbo_samples` for a resolved KL ``plan``.

    No tree traversal happens here, so training steps can call it every step
    (and ``torch.compile`` can trace it); arguments are trusted.
    """
    return elbo_terms_with_state(model, plan, likelihood, params, None, eps, inputs, targets, complexity_cost_weight)[0]


def elbo_terms_with_state(
    model: Layer,
    plan: KLPlan,
    likelihood: Likelihood,
    params: PyTree,
    state: PyTree | None,
    eps: PyTree,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    complexity_cost_weight: float | torch.Tensor,
) -> tuple[ElboTerms, PyTree | None]:
    """:func:`elbo_terms` that also updates running statistics (batch norm).

    With a ``state`` tree, every sample runs the training-mode forward pass
    (:func:`fblitz.layers.apply_with_state`) and the returned state is the
    average of the S updated states (integer counters are the same for every
    sample). With ``state=None`` the state is None.
    """
    if traced():
        return _elbo_terms(model, plan, likelihood, params, state, eps, inputs, targets, complexity_cost_weight)
    # eagerly: per-example noise drawn with torch's generator, outside the transforms; each sigma computed once
    eps = draw_per_example(model, params, eps, inputs, state)
    with shared_sigmas():
        return _elbo_terms(model, plan, likelihood, params, state, eps, inputs, targets, complexity_cost_weight)


def _elbo_terms(model, plan, likelihood, params, state, eps, inputs, targets, complexity_cost_weight):
    closed = closed_form_kl(plan, params)

    # params are captured rather than passed so vmap does not flatten them each call.
    def one_sample(e):
        if state is None:
            outputs, new_state = model.forward(params, inputs, e), ()
        else:
            outputs, new_state = forward_with_state(model, params, state, inputs, e, train=True)
        data = likelihood(outputs, targets)
        kl = monte_carlo_kl(plan, params, e) + closed if plan.needs_noise else closed
        return data, kl, new_state

    data, kl, new_states = over_samples(one_sample)(eps)
    terms = ElboTerms(data + complexity_cost_weight * kl, data, kl)
    if state is None:
        return terms, None
    return terms, tree_map(lambda t: t.mean(dim=0) if t.is_floating_point() else t[0], new_states)


def elbo_grad(model: Layer, likelihood: Likelihood):
    """The gradient of the mean negative ELBO over the S draws in ``eps``, unchecked.

    Returns ``grad_fn(params, state, eps, inputs, targets, complexity_cost_weight, plan)
    -> (grads, terms, state)``: ``grads`` has the structure of ``params``,
    ``terms`` are the 0-dim :class:`ElboTerms` (means over the draws) and
    ``state`` the updated running statistics (``()`` when ``state`` is None).
    Training steps (:func:`fblitz.training.make_train_step`,
    :mod:`fblitz.distributed`) build on it; arguments are trusted.

    Example:
        >>> import torch
        >>> from fblitz.variational.kl import make_plan
        >>> from fblitz.layers import linear, sample_noise
        >>> from fblitz.likelihoods import gaussian
        >>> model = linear(2, 1)
        >>> params = model.init(0)
        >>> grad_fn = elbo_grad(model, gaussian())
        >>> x, y = torch.ones(4, 2), torch.zeros(4, 1)
        >>> grads, terms, _ = grad_fn(params, None, sample_noise(model, 1, params, 3), x, y, 0.25,
        ...                           make_plan(params, model.priors, "auto"))
        >>> grads["weight"]["mu"].shape, terms.loss.shape
        (torch.Size([1, 2]), torch.Size([]))
    """

    def loss(params, state, eps, inputs, targets, weight, plan):
        terms, state = elbo_terms_with_state(model, plan, likelihood, params, state, eps, inputs, targets, weight)
        terms = ElboTerms(*(t.mean() for t in terms))
        return terms.loss, (terms, () if state is None else state)  # grad's aux takes no None

    loss_grad = grad_with_aux(loss)  # torch.autograd eagerly, torch.func.grad when traced

    def grad_fn(params, state, eps, inputs, targets, weight, plan):
        grads, (terms, state) = loss_grad(params, state, eps, inputs, targets, weight, plan)
        return grads, terms, state

    return grad_fn


def elbo_samples(
    model: Layer,
    params: PyTree,
    eps: PyTree,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    likelihood,
    complexity_cost_weight: float | torch.Tensor = 1.0,
    kl_mode: str = "auto",
) -> ElboTerms:
    """Per-sample negative-ELBO terms, each of shape (S,).

    Args:
        model: a :class:`~fblitz.layers.Layer`.
        params: its variational parameters.
        eps: noise with a leading sample axis S (``sample_noise(model, key, params, S)``).
        inputs: a batch for ``model.apply``.
        targets: the matching labels, as the likelihood expects them.
        likelihood: a :mod:`fblitz.likelihoods` likelihood or a criterion
            callable ``(outputs, targets) -> scalar``.
        complexity_cost_weight: the KL weight (see the module docstring).
        kl_mode: ``"auto"``, ``"closed_form"`` or ``"monte_carlo"``.
    """
    model = check_model(model)
    check_params(model, params)
    likelihood = as_likelihood(likelihood)
    _checks.tensor("inputs", inputs)
    _checks.tensor("targets", targets)
    _checks.like_params("inputs", inputs, params)
    if not isinstance(complexity_cost_weight, torch.Tensor):
        complexity_cost_weight = _checks.non_negative("complexity_cost_weight", complexity_cost_weight)
    elif complexity_cost_weight.dim() != 0 or not complexity_cost_weight.is_floating_point():
        raise FblitzValueError(
            f"complexity_cost_weight must be a float or a 0-dim floating tensor, got {complexity_cost_weight!r}"
        )
    elif _checks.eager(complexity_cost_weight):
        _checks.non_negative("complexity_cost_weight", float(complexity_cost_weight))
    sample_count(model, params, eps)
    plan = make_plan(params, model.priors, kl_mode)
    terms = elbo_terms(model, plan, likelihood, params, eps, inputs, targets, complexity_cost_weight)
    _checks.finite_result("the negative ELBO", terms.loss)
    return terms


def negative_elbo(
    model: Layer,
    params: PyTree,
    eps: PyTree,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    likelihood,
    complexity_cost_weight: float | torch.Tensor = 1.0,
    kl_mode: str = "auto",
) -> ElboTerms:
    """The negative ELBO averaged over the S draws in ``eps`` (0-dim terms).

    Per-example noise (local reparameterization, Flipout, dropout) is drawn
    from its seeds with torch's generator when called eagerly on the CPU, and
    by the counter-based hash of :mod:`fblitz.variational.seeded` inside a
    ``torch.func`` transform or ``torch.compile``: the same ``eps`` gives the
    same distribution, not the same numbers, in and out of a transform (see the
    estimators guide). Plain weight sampling is the same in both.

    Same arguments as :func:`elbo_samples`. Differentiate ``.loss`` with
    ``torch.func.grad``::

        grads = torch.func.grad(lambda p: negative_elbo(model, p, eps, x, y,
                                likelihood=nll).loss)(params)
    """
    terms = elbo_samples(
        model,
        params,
        eps,
        inputs,
        targets,
        likelihood=likelihood,
        complexity_cost_weight=complexity_cost_weight,
        kl_mode=kl_mode,
    )
    return ElboTerms(*(t.mean() for t in terms))


def sample_elbo(
    model: Layer,
    params: PyTree,
    key: KeyLike,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    likelihood,
    n_samples: int = 1,
    complexity_cost_weight: float | torch.Tensor = 1.0,
    kl_mode: str = "auto",
    estimator: str | None = None,
) -> ElboTerms:
    """BLiTZ's ``sample_elbo``, functional: draw S noise samples from ``key`` and
    return the mean negative ELBO terms.

    Example:
        >>> import torch
        >>> from fblitz.layers import linear
        >>> from fblitz.likelihoods import gaussian
        >>> model = linear(3, 1)
        >>> params = model.init(0)
        >>> x, y = torch.linspace(-1, 1, 24).view(8, 3), torch.linspace(0, 1, 8).view(8, 1)
        >>> terms = sample_elbo(model, params, 1, x, y, likelihood=gaussian(),
        ...                     n_samples=4, complexity_cost_weight=1 / 8)
        >>> terms.loss.shape
        torch.Size([])
    """
    count = _checks.integer("n_samples", n_samples, minimum=1)
    check_params(check_model(model), params)
    eps = sample_noise(model, key, params, count, estimator=estimator)
    return negative_elbo(
        model,
        params,
        eps,
        inputs,
        targets,
        likelihood=likelihood,
        complexity_cost_weight=complexity_cost_weight,
        kl_mode=kl_mode,
    )
