"""``fit``: the training loop, with each step run in this process (or by the ``runner`` given).

Example:
    >>> import torch
    >>> from fblitz import layers, likelihoods, optim
    >>> model = layers.serial(layers.linear(1, 16), layers.relu, layers.linear(16, 1))
    >>> x = torch.linspace(-1, 1, 64).unsqueeze(1)
    >>> seen = []
    >>> result = fit(model, model.init(0), x, 2 * x, likelihood=likelihoods.gaussian(0.1), optimizer=optim.adam(1e-2),
    ...              key=1, epochs=3, batch_size=16, progress=False, callback=lambda info: seen.append(info.epoch))
    >>> seen, len(result.history["loss"])
    ([0, 1, 2], 3)
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from fblitz.errors import FblitzTypeError
from fblitz.layers.base import Layer
from fblitz.optim import GradientTransformation
from fblitz.random import KeyLike
from fblitz.training.loop import FitResult, Runner, train_loop
from fblitz.training.options import Checkpointing, EpochInfo, FitOptions, Resume
from fblitz.training.schedule import KLSchedule
from fblitz.training.step import StepOutcome, make_train_step
from fblitz.tree import PyTree

RunnerFactory = Callable[[Layer, PyTree, FitOptions], Runner]


def local_runner(model: Layer, params: PyTree, options: FitOptions) -> Runner:
    """The :class:`~fblitz.training.loop.Runner` of one process: :func:`make_train_step` on every row."""
    step = make_train_step(
        model, options.likelihood, options.optimizer, n_samples=options.n_samples, kl_mode=options.kl_mode,
        estimator=options.estimator, compile=options.compile,
    )  # fmt: skip

    def run(params, opt_state, state, key, inputs, targets, weight, row_offset) -> StepOutcome:
        return StepOutcome(*step.fn(params, opt_state, state, key, inputs, targets, weight))

    return Runner(run)


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
    n_samples: int = 1,
    kl: KLSchedule | str = "uniform",
    kl_mode: str = "auto",
    estimator: str | None = None,
    shuffle: bool = True,
    compile: bool = False,
    on_nonfinite: str = "raise",
    resume: Resume | None = None,
    checkpoint: Checkpointing | str | os.PathLike | None = None,
    progress: bool = True,
    callback: Callable[[EpochInfo], bool | None] | None = None,
    runner: RunnerFactory | None = None,
) -> FitResult:
    """Train by minibatch stochastic variational inference (the loop: :mod:`fblitz.training.loop`).

    Args:
        model, params: the model and its initial variational parameters.
        inputs, targets: the training set (rows along dimension 0), with the dtype and device of ``params``.
        likelihood: see :mod:`fblitz.likelihoods` (or a criterion callable).
        optimizer: an optax-shaped transform from :mod:`fblitz.optim`.
        key: random key or seed; drives shuffling and weight noise.
        epochs, batch_size: train until ``epochs`` epochs are done (counting
            those of ``resume``); rows per step.
        n_samples: weight draws per step (BLiTZ's ``sample_nbr``).
        kl: a :class:`~fblitz.training.KLSchedule` (how the KL is weighted across
            minibatches; its base ``complexity_cost_weight`` defaults to
            ``1 / len(inputs)``) or a weighting's name, ``"uniform"`` or ``"blundell"``.
        kl_mode, estimator, compile: as for :func:`~fblitz.training.make_train_step`;
            an ``estimator`` no layer uses is an error; which layer uses which
            is in ``history["estimators"]`` (and printed, with ``progress``).
        shuffle: reshuffle the rows every epoch (True or False).
        on_nonfinite: a step whose loss or gradient norm is NaN/infinite is
            ``"raise"``d as :class:`~fblitz.errors.NonFiniteStepError` (holding
            the params/opt_state from before it) or ``"skip"``ped (no update;
            counted in ``history["skipped"]``).
        resume: a :class:`~fblitz.training.Resume` (epochs done, optimizer state,
            running statistics) to continue a run; ``**checkpoint.resume()`` passes it.
        checkpoint: a :class:`~fblitz.training.Checkpointing`, or a file path (saved after every epoch), or None.
        progress: show progress on stderr (a tqdm bar, or plain lines off a terminal).
        callback: called with an :class:`~fblitz.training.EpochInfo` after each epoch; returning True stops.
        runner: how each step is run, ``runner(model, params, options) -> Runner``
            (:mod:`fblitz.training.loop`); None: here. ``fit_distributed`` passes a rank's.

    Raises:
        NonFiniteStepError: a non-finite step with ``on_nonfinite="raise"``.
        NonFiniteError: every step of an epoch was skipped.
    """
    options = FitOptions(
        likelihood=likelihood, optimizer=optimizer, key=key, epochs=epochs, batch_size=batch_size,
        n_samples=n_samples, kl=kl, kl_mode=kl_mode, estimator=estimator,
        shuffle=shuffle, compile=compile, on_nonfinite=on_nonfinite, resume=resume, checkpoint=checkpoint,
        progress=progress, callback=callback,
    ).checked()  # fmt: skip
    make_runner = local_runner if runner is None else runner
    if not callable(make_runner):
        raise FblitzTypeError(f"runner must be None or a callable (model, params, options) -> Runner, got {runner!r}")
    return train_loop(model, params, inputs, targets, options, make_runner(model, params, options))
