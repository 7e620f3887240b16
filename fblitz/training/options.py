"""The options of :func:`fblitz.training.fit`, checked and grouped: the run, where it starts, where it saves.

Example:
    >>> import tempfile, os
    >>> saving = Checkpointing(os.path.join(tempfile.mkdtemp(), "run.ckpt"), every=5)
    >>> saving.due(epochs_done=10, epochs=12), saving.due(epochs_done=11, epochs=12)
    (True, False)
    >>> Resume(epoch=3).epoch
    3
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from fblitz import _checks
from fblitz.checkpoint import check_checkpoint_path
from fblitz.errors import FblitzTypeError
from fblitz.optim import GradientTransformation, OptState, check_optimizer
from fblitz.random import Key, KeyLike, as_key
from fblitz.training.schedule import KLSchedule, as_kl_schedule
from fblitz.tree import PyTree
from fblitz.variational.estimators import check_estimator
from fblitz.variational.kl import KL_MODES


@dataclass(frozen=True)
class Checkpointing:
    """When and where ``fit`` saves checkpoints (``fit(..., checkpoint=Checkpointing(path, every=5))``).

    A checkpoint (:func:`fblitz.checkpoint.save_checkpoint`, written
    atomically) holds params, optimizer state, running statistics, key,
    ``epoch`` = epochs done and the run's config. It is saved every ``every``
    epochs, after the last one and when a callback stops training; continue
    the run with ``fit(..., **load_checkpoint(path).resume())``.

    Attributes:
        path: the file to write (its directory must exist; checked here, so a
            typo does not end a long run at its first save).
        every: save after every ``every``-th epoch (an int >= 1).
    """

    path: str | os.PathLike
    every: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", check_checkpoint_path("Checkpointing.path", self.path))
        object.__setattr__(self, "every", _checks.integer("Checkpointing.every", self.every, minimum=1))

    def due(self, epochs_done: int, epochs: int, stop: bool = False) -> bool:
        """Whether to save after ``epochs_done`` of ``epochs`` epochs (``stop``: training ends early)."""
        return stop or epochs_done % self.every == 0 or epochs_done == epochs


def as_checkpointing(name: str, value: object) -> Checkpointing | None:
    """``value`` as a :class:`Checkpointing`: one itself, a path (saved every epoch) or None (no checkpoints)."""
    if value is None or isinstance(value, Checkpointing):
        return value
    if isinstance(value, (str, os.PathLike)):
        return Checkpointing(check_checkpoint_path(name, value))
    raise FblitzTypeError(f"{name} must be None, a file path or a Checkpointing, got {value!r}")


@dataclass(frozen=True)
class Resume:
    """Where a run starts: epochs done, optimizer state, running statistics (``fit(..., resume=Resume(...))``).

    :meth:`fblitz.checkpoint.Checkpoint.resume` builds one from a checkpoint
    (``fit(..., **checkpoint.resume())`` passes it with the run's key). Epoch
    ``e`` always shuffles and draws noise from ``key.fold_in(e)``, so
    ``fit(epochs=N)`` then ``fit(epochs=N + M, resume=Resume(N, opt_state))``
    with the saved params is bit-identical to ``fit(epochs=N + M)``.

    Attributes:
        epoch: the number of epochs already done (an int >= 0).
        opt_state: the optimizer state to continue from; None is
            ``optimizer.init(params)``.
        state: the running statistics of a model with batch norm; None is
            :func:`fblitz.layers.init_state` (ignored for models without).
    """

    epoch: int = 0
    opt_state: OptState = None
    state: PyTree | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "epoch", _checks.integer("Resume.epoch", self.epoch, minimum=0))


def as_resume(name: str, value: object) -> Resume:
    """``value`` as a :class:`Resume`: one itself, or None (a fresh start)."""
    if value is None:
        return Resume()
    if isinstance(value, Resume):
        return value
    raise FblitzTypeError(f"{name} must be None or a fblitz.training.Resume (e.g. checkpoint.resume()), got {value!r}")


class EpochInfo(NamedTuple):
    """What ``fit`` passes to its callback after each epoch."""

    epoch: int
    params: PyTree
    opt_state: OptState
    loss: float
    data: float
    kl: float


class FitOptions(NamedTuple):
    """The options of a training run, as :func:`fblitz.training.fit` takes them; :meth:`checked` normalises them.

    What the loop (:func:`fblitz.training.loop.train_loop`) and a runner factory
    (``fit(..., runner=...)``) receive is the checked value: ``key`` a
    :class:`~fblitz.random.Key`, ``kl`` a :class:`KLSchedule`, ``resume`` a
    :class:`Resume`, ``checkpoint`` a :class:`Checkpointing` or None,
    ``n_samples`` the resolved S.
    """

    likelihood: object
    optimizer: GradientTransformation
    key: Key | KeyLike
    epochs: int
    batch_size: int
    n_samples: int
    kl: KLSchedule | str
    kl_mode: str
    estimator: str | None
    shuffle: bool
    compile: bool
    on_nonfinite: str
    resume: Resume | None
    checkpoint: Checkpointing | str | os.PathLike | None
    progress: bool
    callback: Callable[[EpochInfo], bool | None] | None

    def checked(self) -> FitOptions:
        """These options checked and normalised; a bad one is a FblitzValueError/FblitzTypeError naming it."""
        resume = as_resume("resume", self.resume)
        if self.callback is not None and not callable(self.callback):
            raise FblitzTypeError(f"callback must be None or a callable taking an EpochInfo, got {self.callback!r}")
        if self.estimator is not None:
            check_estimator("estimator", self.estimator)
        return FitOptions(
            likelihood=self.likelihood,
            optimizer=check_optimizer(self.optimizer),
            key=as_key(self.key),
            epochs=_checks.integer("epochs", self.epochs, minimum=resume.epoch),
            batch_size=_checks.integer("batch_size", self.batch_size, minimum=1),
            n_samples=_checks.integer("n_samples", self.n_samples, minimum=1),
            kl=as_kl_schedule("kl", self.kl),
            kl_mode=_checks.one_of("kl_mode", self.kl_mode, KL_MODES),
            estimator=self.estimator,
            shuffle=_checks.boolean("shuffle", self.shuffle),
            compile=_checks.boolean("compile", self.compile),
            on_nonfinite=_checks.one_of("on_nonfinite", self.on_nonfinite, ("raise", "skip")),
            resume=resume,
            checkpoint=as_checkpointing("checkpoint", self.checkpoint),
            progress=_checks.boolean("progress", self.progress),
            callback=self.callback,
        )

    def config(self) -> dict:
        """The run's settings as a checkpoint stores them (of checked options)."""
        return dict(
            epochs=self.epochs, batch_size=self.batch_size, n_samples=self.n_samples,
            kl_weighting=self.kl.weighting, shuffle=self.shuffle, estimator=self.estimator,
        )  # fmt: skip
