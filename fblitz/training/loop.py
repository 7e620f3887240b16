"""The one training loop that :func:`fblitz.training.fit` and :func:`fblitz.distributed.fit_distributed` share.

Epoch ``e`` shuffles the rows with ``key.fold_in(e)``, cuts them into
minibatches of ``batch_size`` rows and runs minibatch ``i`` with the key
``key.fold_in(e).fold_in(i + 1)`` and the KL weight of its place in the
epoch. What differs between one process and many is a :class:`Runner`:
how to take a step, which rows of a minibatch this process trains on, and
how the processes agree to stop. Everything else -- data checks, KL weights,
the non-finite guard, progress, callbacks, checkpoints, history -- is here,
once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz._progress import COMPILE_NOTE, TrainingProgress
from fblitz.checkpoint import save_checkpoint
from fblitz.errors import FblitzValueError, NonFiniteError, NonFiniteStepError
from fblitz.layers.base import Layer, check_model, estimator_summary, estimator_usage, init_state, is_stateful
from fblitz.layers.params_check import check_params
from fblitz.optim import OptState
from fblitz.random import permutation
from fblitz.training.options import EpochInfo, FitOptions
from fblitz.training.step import StepOutcome
from fblitz.tree import PyTree, tree_leaves
from fblitz.variational.distributions import rho_out_of_range


class FitResult(NamedTuple):
    """Outcome of :func:`fblitz.training.fit`: final params and optimizer state, per-epoch history.

    ``history`` maps ``"loss"``, ``"data"``, ``"kl"`` to per-epoch means over
    the minibatch steps, ``"skipped"`` to the skipped steps per epoch,
    ``"seconds"`` to the total wall time and ``"estimators"`` to the
    estimator each Bayesian layer used (:func:`fblitz.layers.estimator_usage`).
    ``state`` holds the running statistics of models with batch norm (None
    otherwise); pass it to :func:`fblitz.prediction.predict` for evaluation.
    """

    params: PyTree
    opt_state: OptState
    history: dict
    state: PyTree | None = None


class Runner(NamedTuple):
    """How one process takes part in :func:`train_loop`: how to step, which rows, how to agree.

    Attributes:
        step: ``step(params, opt_state, state, key, inputs, targets, weight,
            row_offset) -> StepOutcome`` on this process's rows of a
            minibatch; ``row_offset`` is the index of its first row in the
            minibatch. Every process must get the same ``finite`` flag.
        rows: ``rows(batch) -> slice``: this process's share of the rows
            ``batch`` (a slice) of a minibatch.
        start: ``start(params) -> params``: the params every process starts
            from (e.g. rank 0's).
        agree: ``agree(stop) -> stop``: the callback's decision (made on the
            main process) that every process follows.
        main: whether this process shows progress, calls the callback and
            writes checkpoints.
        config: what the checkpoints' config adds (e.g. the world size).
    """

    step: Callable[..., StepOutcome]
    rows: Callable[[slice], slice] = lambda batch: batch
    start: Callable[[PyTree], PyTree] = lambda params: params
    agree: Callable[[bool], bool] = lambda stop: stop
    main: bool = True
    config: dict = {}


def check_data(inputs: torch.Tensor, targets: torch.Tensor) -> int:
    """The number of rows of a training set; FblitzValueError unless ``inputs`` and ``targets`` have as many."""
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


def check_training_set(model: Layer, params: PyTree, inputs: torch.Tensor, targets: torch.Tensor) -> int:
    """:func:`check_data`, then the params against ``model`` and the data against the params; the row count."""
    n = check_data(inputs, targets)
    check_params(check_model(model), params)
    for name, data in (("inputs", inputs), ("targets", targets)):
        _checks.like_params(name, data, params)
        if data.is_floating_point():  # once here: inside the step, under vmap, values are not read
            _checks.float_input(name, data)
    if not any(isinstance(leaf, torch.Tensor) and leaf.is_floating_point() for leaf in tree_leaves(params)):
        raise FblitzValueError("params has no floating-point tensor to train (did model.init(key) build it?)")
    return n


class _Run:
    """One run of :func:`train_loop`: the data, the schedule and the display, and the epoch it is in."""

    def __init__(self, model, inputs, targets, options: FitOptions, runner: Runner, like: torch.Tensor):
        self.model, self.inputs, self.targets, self.options, self.runner = model, inputs, targets, options, runner
        self.rows = inputs.shape[0]
        self.num_batches = math.ceil(self.rows / options.batch_size)
        self.weights = [
            torch.tensor(w, dtype=like.dtype, device=like.device)
            for w in options.kl.weights(self.rows, self.num_batches)
        ]
        self.display = TrainingProgress(
            options.progress and runner.main,
            epochs=options.epochs,
            steps_per_epoch=self.num_batches,
            start_epoch=options.resume.epoch,
        )
        self.start = time.perf_counter()

    def epoch(self, epoch: int, params, opt_state, state) -> tuple:
        """Run epoch ``epoch``; returns ``(params, opt_state, state, terms)`` (terms: one row per step taken)."""
        options, runner = self.options, self.runner
        epoch_key = options.key.fold_in(epoch)
        order = permutation(epoch_key, self.rows, device=self.inputs.device) if options.shuffle else None
        x_epoch = self.inputs[order] if options.shuffle else self.inputs
        y_epoch = self.targets[order] if options.shuffle else self.targets
        terms = []
        for index in range(self.num_batches):
            batch = slice(index * options.batch_size, min((index + 1) * options.batch_size, self.rows))
            mine = runner.rows(batch)
            # params were checked once before the loop; each step returns params of the same shapes
            out = runner.step(
                params, opt_state, state, epoch_key.fold_in(index + 1), x_epoch[mine], y_epoch[mine],
                self.weights[index], mine.start - batch.start,
            )  # fmt: skip
            if not bool(out.finite):
                self.non_finite(out, epoch, index, params, opt_state, state)
                continue
            params, opt_state, state = out.params, out.opt_state, out.state
            terms.append(torch.stack(tuple(out.terms)))
            self.display.step(epoch, index)
            if options.compile and epoch == options.resume.epoch and index == 0:
                self.display.note(f"compiled and ran the first step in {time.perf_counter() - self.start:.1f} s")
        if not terms:
            raise NonFiniteError(
                f"every one of the {self.num_batches} steps of epoch {epoch} was non-finite and skipped"
            )
        return params, opt_state, state, terms

    def non_finite(self, out: StepOutcome, epoch: int, index: int, params, opt_state, state) -> None:
        """Raise for a non-finite step, unless ``on_nonfinite="skip"`` (then the step is left out)."""
        if self.options.on_nonfinite == "skip":
            return
        cause = rho_out_of_range(params)
        raise NonFiniteStepError(
            f"non-finite loss ({float(out.terms.loss)}) or gradient at epoch {epoch}, step {index}"
            + (f" ({cause})" if cause else "") + "; params and opt_state before the step are on this "
            "error (on_nonfinite='skip' skips such steps)",
            epoch=epoch, step=index, params=params, opt_state=opt_state, state=state,
        )  # fmt: skip

    def end_epoch(self, epoch: int, params, opt_state, state, losses: tuple[float, float, float]) -> bool:
        """Show the epoch, call the callback, save a checkpoint when due; whether to stop."""
        options, runner = self.options, self.runner
        self.display.epoch_done(epoch, losses[0])
        stop = False
        if runner.main and options.callback is not None:
            with self.display.writing():  # a callback that prints does not break the bar
                stop = bool(options.callback(EpochInfo(epoch, params, opt_state, *losses)))
        if options.callback is not None:  # the main process's decision, so that all processes stop together
            stop = runner.agree(stop)
        saving = options.checkpoint
        if runner.main and saving is not None and saving.due(epoch + 1, options.epochs, stop):
            save_checkpoint(
                saving.path, params=params, opt_state=opt_state, state=state, key=options.key, epoch=epoch + 1,
                config={**options.config(), **runner.config},
            )  # fmt: skip
        return stop


def train_loop(
    model: Layer, params: PyTree, inputs: torch.Tensor, targets: torch.Tensor, options: FitOptions, runner: Runner
) -> FitResult:
    """Train ``model`` from ``params`` on ``inputs``/``targets`` with ``options``, each step by ``runner``.

    The loop behind :func:`fblitz.training.fit` (with the runner of
    :func:`fblitz.training.local.local_runner`) and
    :func:`fblitz.distributed.fit_distributed` (with a rank's runner);
    ``options`` are checked (:meth:`~fblitz.training.options.FitOptions.checked`).
    Raises as ``fit`` does.
    """
    check_training_set(model, params, inputs, targets)
    usage = estimator_usage(model, params, options.estimator)
    like = tree_leaves(params)[0]
    run = _Run(model, inputs, targets, options, runner, like)
    params = runner.start(params)
    opt_state = options.optimizer.init(params) if options.resume.opt_state is None else options.resume.opt_state
    state = options.resume.state if is_stateful(model) else None
    if is_stateful(model) and state is None:
        state = init_state(model, dtype=like.dtype, device=like.device)
    history = {"loss": [], "data": [], "kl": [], "skipped": [], "estimators": usage}
    with run.display:
        if options.estimator is not None:
            run.display.note(estimator_summary(model, params, options.estimator))
        if options.compile:
            run.display.note(COMPILE_NOTE)
        for epoch in range(options.resume.epoch, options.epochs):
            params, opt_state, state, terms = run.epoch(epoch, params, opt_state, state)
            losses = tuple(torch.stack(terms).double().mean(dim=0).tolist())
            for name, value in zip(("loss", "data", "kl", "skipped"), (*losses, run.num_batches - len(terms))):
                history[name].append(value)
            if run.end_epoch(epoch, params, opt_state, state, losses):
                break
    history["seconds"] = time.perf_counter() - run.start
    return FitResult(params, opt_state, history, state)
