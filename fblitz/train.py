"""Training: a pure ELBO step and a ``fit`` loop with minibatches and KL weighting.

Example:
    >>> import torch
    >>> from fblitz import layers, likelihoods, optim
    >>> model = layers.serial(layers.linear(1, 16), layers.relu, layers.linear(16, 1))
    >>> x = torch.linspace(-1, 1, 64).unsqueeze(1)
    >>> result = fit(model, model.init(0), x, 2 * x, likelihood=likelihoods.gaussian(0.1),
    ...              optimizer=optim.adam(1e-2), key=1, epochs=3, batch_size=16, progress=False)
    >>> len(result.history["loss"])
    3
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz._fused import all_finite
from fblitz._progress import COMPILE_NOTE, TrainingProgress
from fblitz.checkpoint import check_checkpoint_path, save_checkpoint
from fblitz.distributions import rho_out_of_range
from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError, NonFiniteStepError
from fblitz.estimators import check_estimator
from fblitz.kl import KL_MODES, make_plan
from fblitz.layers._usage import describe
from fblitz.layers.base import Layer, draw_noise, estimator_usage, init_state, is_stateful, sample_noise
from fblitz.layers.params_check import check_params
from fblitz.likelihoods import as_likelihood
from fblitz.objectives import ElboTerms, _check_model, elbo_grad, resolve_sample_count
from fblitz.optim import GradientTransformation, OptState, apply_gradients
from fblitz.per_example import draw_per_example
from fblitz.random import KeyLike, as_key, permutation
from fblitz.tree import PyTree, tree_leaves, tree_structure

KL_WEIGHTINGS = ("uniform", "blundell")


def minibatch_weights(num_batches: int, scheme: str = "uniform") -> list[float]:
    """The share pi_i of the KL given to minibatch i of an epoch; they sum to 1.

    ``"uniform"``: pi_i = 1 / M. ``"blundell"``: pi_i = 2^(M-i) / (2^M - 1) for
    i = 1..M (Blundell et al. 2015, sec. 3.4): early batches carry most of the KL.
    """
    m = _checks.integer("num_batches", num_batches, minimum=1)
    _checks.one_of("scheme", scheme, KL_WEIGHTINGS)
    if scheme == "uniform":
        return [1.0 / m] * m
    # 2^(M-i) / (2^M - 1) = 2^-i / (1 - 2^-M); this form never overflows a float.
    denominator = -math.expm1(-m * math.log(2.0))
    return [math.ldexp(1.0, -i) / denominator for i in range(1, m + 1)]


def kl_weights(
    dataset_size: int, num_batches: int, scheme: str = "uniform", complexity_cost_weight: float | None = None
) -> list[float]:
    """The ``complexity_cost_weight`` for each minibatch of an epoch.

    ``complexity_cost_weight * M * pi_i`` with pi_i from :func:`minibatch_weights`;
    the base weight defaults to ``1 / dataset_size`` (the convention of
    :mod:`fblitz.objectives`). Uniform weighting gives the base weight to every
    batch; Blundell's gives batch i the share pi_i of the KL.
    """
    n = _checks.integer("dataset_size", dataset_size, minimum=1)
    base = (
        1.0 / n
        if complexity_cost_weight is None
        else _checks.non_negative("complexity_cost_weight", complexity_cost_weight)
    )
    shares = minibatch_weights(num_batches, scheme)
    return [base * len(shares) * share for share in shares]


class StepOutcome(NamedTuple):
    """What :meth:`TrainStep.guarded` returns: the new values and a 0-dim bool ``finite``.

    ``finite`` is False when the loss or the global gradient norm is NaN or
    infinite; the new params/opt_state are then not to be used (the inputs of
    the step are untouched, so keep those).
    """

    params: PyTree
    opt_state: OptState
    terms: ElboTerms
    state: PyTree | None
    finite: torch.Tensor


class TrainStep(NamedTuple):
    """A pure training step; call it as ``step(params, opt_state, key, inputs, targets, weight)``.

    Returns ``(params, opt_state, ElboTerms)`` with fresh tensors. Models with
    running statistics (batch norm) use :meth:`with_state`; :meth:`guarded`
    also reports whether the loss and gradients were finite.
    """

    fn: Callable
    model: Layer | None = None

    def __call__(self, params, opt_state, key, inputs, targets, complexity_cost_weight=1.0):
        return self.guarded(params, opt_state, None, key, inputs, targets, complexity_cost_weight)[:3]

    def guarded(self, params, opt_state, state, key, inputs, targets, complexity_cost_weight=1.0) -> StepOutcome:
        """The step with ``state`` threaded through and a finiteness flag (see :class:`StepOutcome`).

        ``params`` is checked against the model first (:func:`fblitz.layers.check_params`).
        """
        if self.model is not None:
            check_params(self.model, params)
        return StepOutcome(*self.fn(params, opt_state, state, key, inputs, targets, complexity_cost_weight))

    def with_state(self, params, opt_state, state, key, inputs, targets, complexity_cost_weight=1.0):
        """The step threading a state tree: returns ``(params, opt_state, ElboTerms, state)``.

        The new running statistics are the average over the S weight samples
        (see :func:`fblitz.objectives.elbo_terms_with_state`).
        """
        return self.guarded(params, opt_state, state, key, inputs, targets, complexity_cost_weight)[:4]


def _check_optimizer(optimizer: object) -> GradientTransformation:
    """``optimizer`` if it is a fblitz :class:`~fblitz.optim.GradientTransformation`; else FblitzTypeError."""
    if not isinstance(optimizer, GradientTransformation):
        raise FblitzTypeError(
            f"optimizer must be a fblitz.optim GradientTransformation (wrap a torchopt optimizer with "
            f"fblitz.interop.from_torchopt), got {optimizer!r}"
        )
    return optimizer


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
    """Build the step: draw S noise samples from the key, take ``torch.func.grad``
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
    model = _check_model(model)
    likelihood = as_likelihood(likelihood)
    _check_optimizer(optimizer)
    n_samples = _checks.integer("n_samples", n_samples, minimum=1)
    _checks.one_of("kl_mode", kl_mode, KL_MODES)
    if estimator is not None:
        check_estimator("estimator", estimator)
    compile = _checks.boolean("compile", compile)
    plans: dict = {}
    loss_grad = elbo_grad(model, likelihood)

    def update(params, opt_state, state, eps, inputs, targets, weight, plan):
        grads, terms, state = loss_grad(params, state, eps, inputs, targets, weight, plan)
        # the guard, read by the caller: one pass over the gradients, before the optimizer reads them
        finite = all_finite(terms.loss, tree_leaves(grads))
        params, opt_state = apply_gradients(optimizer, grads, opt_state, params)
        return params, opt_state, terms, state, finite

    if compile:
        loss_grad = torch.compile(loss_grad)

    def step(params, opt_state, state, key, inputs, targets, weight):
        structure = tree_structure(params)
        if structure not in plans:
            plans[structure] = make_plan(params, model.priors, kl_mode)
            eps = sample_noise(model, key, params, n_samples, estimator=estimator)  # checked once per tree
        else:
            eps = draw_noise(model, key, params, n_samples, estimator)
        if not isinstance(weight, torch.Tensor):
            # a tensor, so a compiled step is not specialised to each weight value
            like = next(leaf for leaf in tree_leaves(params) if leaf.is_floating_point())
            weight = torch.tensor(
                _checks.non_negative("complexity_cost_weight", weight), dtype=like.dtype, device=like.device
            )
        if compile:
            # per-example noise is drawn here, outside the compiled graph, as the eager step draws it
            eps = draw_per_example(model, params, eps, inputs, state)
            # one compiled graph for every batch size (e.g. a smaller last batch), per-example noise included
            torch._dynamo.maybe_mark_dynamic(inputs, 0)
            torch._dynamo.maybe_mark_dynamic(targets, 0)
            for leaf in tree_leaves(eps):
                if leaf.dim() >= 2 and inputs.dim() and leaf.shape[1] == inputs.shape[0]:
                    torch._dynamo.maybe_mark_dynamic(leaf, 1)
        params, opt_state, terms, state, finite = update(
            params, opt_state, state, eps, inputs, targets, weight, plans[structure]
        )
        return params, opt_state, terms, None if state == () else state, finite

    return TrainStep(step, model)


class EpochInfo(NamedTuple):
    """What ``fit`` passes to its callback after each epoch."""

    epoch: int
    params: PyTree
    opt_state: OptState
    loss: float
    data: float
    kl: float


class FitResult(NamedTuple):
    """Outcome of :func:`fit`: final params and optimizer state, per-epoch history.

    ``history`` maps ``"loss"``, ``"data"``, ``"kl"`` to per-epoch means over
    the minibatch steps, ``"skipped"`` to the skipped steps per epoch,
    ``"seconds"`` to the total wall time, and (from :func:`fit`) ``"estimators"``
    to the estimator each Bayesian layer used (:func:`fblitz.layers.estimator_usage`). ``state``
    holds the running statistics of models with batch norm (None otherwise);
    pass it to :func:`fblitz.prediction.predict` for evaluation.
    """

    params: PyTree
    opt_state: OptState
    history: dict
    state: PyTree | None = None


def _check_data(inputs: torch.Tensor, targets: torch.Tensor) -> int:
    _checks.tensor("inputs", inputs)
    _checks.tensor("targets", targets)
    if inputs.dim() == 0 or targets.dim() == 0 or inputs.shape[0] != targets.shape[0]:
        raise FblitzValueError(
            f"inputs and targets must have the same number of rows, got shapes "
            f"{tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
    if inputs.shape[0] == 0:
        raise FblitzValueError("inputs must have at least one row")
    return inputs.shape[0]


def fit(
    model: Layer,
    params: PyTree,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    likelihood,
    optimizer: GradientTransformation,
    key: KeyLike,
    epochs: int,
    batch_size: int,
    n_samples: int | None = None,
    sample_nbr: int | None = None,
    complexity_cost_weight: float | None = None,
    kl_weighting: str = "uniform",
    kl_mode: str = "auto",
    estimator: str | None = None,
    shuffle: bool = True,
    opt_state: OptState | None = None,
    state: PyTree | None = None,
    compile: bool = False,
    progress: bool = True,
    callback: Callable[[EpochInfo], bool | None] | None = None,
    start_epoch: int = 0,
    on_nonfinite: str = "raise",
    checkpoint_path: str | None = None,
    checkpoint_every: int = 1,
) -> FitResult:
    """Train by minibatch stochastic variational inference.

    Args:
        model, params: the model and its initial variational parameters.
        inputs, targets: the whole training set (rows along dimension 0),
            on the device and with the dtype of ``params``.
        likelihood: see :mod:`fblitz.likelihoods` (or a criterion callable).
        optimizer: an optax-shaped transform from :mod:`fblitz.optim`.
        key: random key or seed; drives shuffling and weight noise.
        epochs, batch_size: train until ``epochs`` passes over the data are
            done (counting from ``start_epoch``); rows per step.
        n_samples: weight draws per step (BLiTZ's ``sample_nbr``, also accepted).
        complexity_cost_weight: base KL weight; default ``1 / len(inputs)``.
        kl_weighting: ``"uniform"`` or ``"blundell"`` (see :func:`kl_weights`).
        kl_mode: ``"auto"``, ``"closed_form"`` or ``"monte_carlo"``.
        estimator: override every supporting layer's gradient estimator (see
            :mod:`fblitz.estimators`); None keeps each layer's own. An
            estimator no layer of ``model`` uses is an error; which layer
            uses which is in ``history["estimators"]`` and, with
            ``progress``, printed as one line before training.
        shuffle: reshuffle the rows every epoch (True or False; other
            values, even truthy ones like ``"no"``, are refused).
        opt_state: resume from this optimizer state instead of ``optimizer.init``.
        state: running statistics to start from, for models with batch norm
            (default :func:`fblitz.layers.init_state`); ignored otherwise.
        compile: compile the gradient step with ``torch.compile`` (see
            :func:`make_train_step`).
        progress: show progress on stderr (True or False): a tqdm bar with the
            epoch, the last epoch's mean loss, the rate and the ETA on a
            terminal or in a notebook; plain lines (after the first epoch, then
            every 10 s, and at the end) when stderr is a pipe or a file. With
            ``compile=True`` a line says so before the first step (which
            compiles) and another how long it took.
        callback: called with an :class:`EpochInfo` after each epoch; returning
            True stops training.
        start_epoch: the number of epochs already done, to resume a run: epoch
            ``e`` always shuffles and draws noise from ``key.fold_in(e)``, so
            ``fit(epochs=N)`` then ``fit(start_epoch=N, epochs=N + M)`` with the
            saved params and opt_state is bit-identical to ``fit(epochs=N + M)``.
        on_nonfinite: a step whose loss or gradient norm is NaN/infinite is
            ``"raise"``d as :class:`~fblitz.errors.NonFiniteStepError` (holding
            the params/opt_state from before it), or ``"skip"``ped (no update);
            ``history["skipped"]`` counts skipped steps per epoch.
        checkpoint_path, checkpoint_every: save a checkpoint
            (:func:`fblitz.checkpoint.save_checkpoint`, atomically) every
            ``checkpoint_every`` epochs and after the last one, with
            ``epoch`` = epochs done; resume with ``fit(..., **checkpoint.resume())``
            (:meth:`fblitz.checkpoint.Checkpoint.resume`).

    Raises:
        NonFiniteStepError: a non-finite step with ``on_nonfinite="raise"``.
        NonFiniteError: every step of an epoch was skipped.
    """
    n = _check_data(inputs, targets)
    check_params(_check_model(model), params)
    for name, data in (("inputs", inputs), ("targets", targets)):
        _checks.like_params(name, data, params)
        if data.is_floating_point():  # once here: inside the step, under vmap, values are not read
            _checks.float_input(name, data)
    if checkpoint_path is not None:
        check_checkpoint_path("checkpoint_path", checkpoint_path)
    start_epoch = _checks.integer("start_epoch", start_epoch, minimum=0)
    epochs = _checks.integer("epochs", epochs, minimum=start_epoch)
    _checks.one_of("on_nonfinite", on_nonfinite, ("raise", "skip"))
    checkpoint_every = _checks.integer("checkpoint_every", checkpoint_every, minimum=1)
    batch_size = _checks.integer("batch_size", batch_size, minimum=1)
    _checks.one_of("kl_weighting", kl_weighting, KL_WEIGHTINGS)
    shuffle = _checks.boolean("shuffle", shuffle)
    compile = _checks.boolean("compile", compile)
    progress = _checks.boolean("progress", progress)
    if callback is not None and not callable(callback):
        raise FblitzTypeError(f"callback must be None or a callable taking an EpochInfo, got {callback!r}")
    count = resolve_sample_count(n_samples, sample_nbr)
    key = as_key(key)
    if not any(isinstance(leaf, torch.Tensor) and leaf.is_floating_point() for leaf in tree_leaves(params)):
        raise FblitzValueError("params has no floating-point tensor to train (did model.init(key) build it?)")
    if estimator is not None:
        check_estimator("estimator", estimator)
    usage = estimator_usage(_check_model(model), params, estimator)
    num_batches = math.ceil(n / batch_size)
    like = tree_leaves(params)[0]
    weights = [
        torch.tensor(w, dtype=like.dtype, device=like.device)
        for w in kl_weights(n, num_batches, kl_weighting, complexity_cost_weight)
    ]
    step = make_train_step(
        model, likelihood, optimizer, n_samples=count, kl_mode=kl_mode, estimator=estimator, compile=compile
    )
    config = dict(
        epochs=epochs,
        batch_size=batch_size,
        n_samples=count,
        kl_weighting=kl_weighting,
        shuffle=shuffle,
        estimator=estimator,
    )
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    if is_stateful(model) and state is None:
        state = init_state(model, dtype=like.dtype, device=like.device)
    elif not is_stateful(model):
        state = None
    history = {"loss": [], "data": [], "kl": [], "skipped": [], "estimators": usage}
    display = TrainingProgress(progress, epochs=epochs, steps_per_epoch=num_batches, start_epoch=start_epoch)
    start = time.perf_counter()
    with display:
        if estimator is not None:
            display.note(describe(usage, estimator))
        if compile:
            display.note(COMPILE_NOTE)
        for epoch in range(start_epoch, epochs):
            epoch_key = key.fold_in(epoch)
            order = permutation(epoch_key, n, device=inputs.device) if shuffle else None
            x_epoch = inputs[order] if shuffle else inputs
            y_epoch = targets[order] if shuffle else targets
            epoch_terms = []
            for index in range(num_batches):
                rows = slice(index * batch_size, (index + 1) * batch_size)
                # params were checked once above; each step returns params of the same shapes
                out = StepOutcome(
                    *step.fn(
                        params,
                        opt_state,
                        state,
                        epoch_key.fold_in(index + 1),
                        x_epoch[rows],
                        y_epoch[rows],
                        weights[index],
                    )
                )
                if not bool(out.finite):
                    if on_nonfinite == "raise":
                        cause = rho_out_of_range(params)
                        raise NonFiniteStepError(
                            f"non-finite loss ({float(out.terms.loss)}) or gradient at epoch {epoch}, step {index}"
                            + (f" ({cause})" if cause else "") + "; params and opt_state before the step are on this "
                            "error (on_nonfinite='skip' skips such steps)",
                            epoch=epoch, step=index, params=params, opt_state=opt_state, state=state,
                        )  # fmt: skip
                    continue
                params, opt_state, _, state, _ = out
                epoch_terms.append(torch.stack(out.terms))
                display.step(epoch, index)
                if compile and epoch == start_epoch and index == 0:
                    display.note(f"compiled and ran the first step in {time.perf_counter() - start:.1f} s")
            if not epoch_terms:
                raise NonFiniteError(
                    f"every one of the {num_batches} steps of epoch {epoch} was non-finite and skipped"
                )
            loss, data, kl = torch.stack(epoch_terms).double().mean(dim=0).tolist()
            for name, value in zip(("loss", "data", "kl", "skipped"), (loss, data, kl, num_batches - len(epoch_terms))):
                history[name].append(value)
            display.epoch_done(epoch, loss)
            stop = False
            if callback is not None:
                with display.writing():  # a callback that prints does not break the bar
                    stop = callback(EpochInfo(epoch, params, opt_state, loss, data, kl))
            if checkpoint_path is not None and (stop or (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs):
                save_checkpoint(
                    checkpoint_path,
                    params=params,
                    opt_state=opt_state,
                    state=state,
                    key=key,
                    epoch=epoch + 1,
                    config=config,
                )
            if stop:
                break
    history["seconds"] = time.perf_counter() - start
    return FitResult(params, opt_state, history, state)
