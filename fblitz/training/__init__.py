"""Training: a pure ELBO step and the ``fit`` loop with minibatches and KL weighting.

* :mod:`fblitz.training.step` -- :func:`make_train_step`, one step of S weight draws;
* :mod:`fblitz.training.schedule` -- :class:`KLSchedule`, the KL weight of each minibatch;
* :mod:`fblitz.training.options` -- the grouped options of ``fit``: :class:`Checkpointing`, :class:`Resume`;
* :mod:`fblitz.training.loop` -- the one epoch loop that :func:`fit` and
  :func:`fblitz.distributed.fit_distributed` share, each with its :class:`~fblitz.training.loop.Runner`;
* :mod:`fblitz.training.local` -- :func:`fit`, the loop on one process.

Example:
    >>> import torch
    >>> from fblitz import layers, likelihoods, optim
    >>> model = layers.serial(layers.linear(1, 16), layers.relu, layers.linear(16, 1))
    >>> x = torch.linspace(-1, 1, 64).unsqueeze(1)
    >>> result = fit(model, model.init(0), x, 2 * x, likelihood=likelihoods.gaussian(0.1),
    ...              optimizer=optim.adam(1e-2), key=1, epochs=3, batch_size=16, kl="blundell", progress=False)
    >>> len(result.history["loss"])
    3
"""

from fblitz.training.local import fit
from fblitz.training.loop import FitResult
from fblitz.training.options import Checkpointing, EpochInfo, Resume
from fblitz.training.schedule import KL_WEIGHTINGS, KLSchedule, kl_weights, minibatch_weights
from fblitz.training.step import StepOutcome, TrainStep, make_train_step

__all__ = [
    "KL_WEIGHTINGS",
    "Checkpointing",
    "EpochInfo",
    "FitResult",
    "KLSchedule",
    "Resume",
    "StepOutcome",
    "TrainStep",
    "fit",
    "kl_weights",
    "make_train_step",
    "minibatch_weights",
]
