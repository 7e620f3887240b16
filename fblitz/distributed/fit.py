"""``fit_distributed``: the :func:`fblitz.train.fit` loop over a process group.

Every rank holds the whole training set and runs the same loop as ``fit``
(same shuffling, same minibatches, same KL weights, same step keys); each
step is a :class:`~fblitz.distributed.step.DistributedStep`. In data mode a
rank trains on its contiguous share of each minibatch's rows, in sample mode
on its share of the S weight samples. Rank 0 alone shows progress, calls the
callback (its stop decision is broadcast to all ranks) and writes
checkpoints; every rank returns the same :class:`~fblitz.train.FitResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.distributed as dist

from fblitz import _checks
from fblitz._progress import COMPILE_NOTE, TrainingProgress
from fblitz.checkpoint import save_checkpoint
from fblitz.distributed.collectives import broadcast_tree, global_rank
from fblitz.distributed.sharding import shard
from fblitz.distributed.step import make_distributed_step
from fblitz.errors import FblitzValueError, NonFiniteStepError
from fblitz.layers.base import Layer
from fblitz.objectives import resolve_sample_count
from fblitz.optim import GradientTransformation, OptState
from fblitz.random import KeyLike, as_key, permutation
from fblitz.train import EpochInfo, FitResult, _check_data, kl_weights
from fblitz.tree import PyTree, tree_leaves


def fit_distributed(
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
    mode: str = "data",
    noise: str = "per_rank",
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
    checkpoint_path: str | None = None,
    checkpoint_every: int = 1,
    group=None,
) -> FitResult:
    """Train with every rank of the process group (call it on every rank).

    Arguments are those of :func:`fblitz.train.fit` plus:

    Args:
        mode: ``"data"`` (split each minibatch's rows over the ranks) or
            ``"sample"`` (split its S weight samples).
        noise: data mode: ``"per_rank"`` (independent noise per rank, from
            :func:`~fblitz.distributed.sharding.rank_key`) or ``"shared"``
            (every rank draws the single-process noise, per-example noise
            indexed by the rows' places in the minibatch; then training equals
            ``fit`` up to floating-point summation order, for every estimator
            and with dropout).
        group: the process group (default: the default group).

    ``state`` exists so that ``**checkpoint.resume()`` can be passed; it must
    be None (models with running statistics are not supported). Resuming
    with ``start_epoch`` continues the run exactly as ``fit`` does.

    ``batch_size`` is the global minibatch (all ranks together); params are
    broadcast from rank 0 at the start so all ranks begin alike. Models with
    batch norm and ``on_nonfinite="skip"`` are not supported (a non-finite
    step raises :class:`~fblitz.errors.NonFiniteStepError` on every rank).

    Example (under ``torchrun --nproc-per-node 2``, after :func:`fblitz.distributed.init`)::

        result = fit_distributed(model, model.init(0), x, y, likelihood=likelihoods.gaussian(0.1),
                                 optimizer=optim.adam(1e-2), key=1, epochs=10, batch_size=32)
    """
    if state is not None:
        raise FblitzValueError(f"state must be None: distributed training has no running statistics, got {state!r}")
    n = _check_data(inputs, targets)
    _checks.like_params("inputs", inputs, params)
    _checks.like_params("targets", targets, params)
    start_epoch = _checks.integer("start_epoch", start_epoch, minimum=0)
    epochs = _checks.integer("epochs", epochs, minimum=start_epoch)
    checkpoint_every = _checks.integer("checkpoint_every", checkpoint_every, minimum=1)
    batch_size = _checks.integer("batch_size", batch_size, minimum=1)
    count = resolve_sample_count(n_samples, sample_nbr)
    progress = _checks.boolean("progress", progress)
    key = as_key(key)
    rank, world_size = dist.get_rank(group), dist.get_world_size(group)
    main = rank == 0
    num_batches = math.ceil(n / batch_size)
    like = tree_leaves(params)[0]
    weights = [
        torch.tensor(w, dtype=like.dtype, device=like.device)
        for w in kl_weights(n, num_batches, kl_weighting, complexity_cost_weight)
    ]
    step = make_distributed_step(
        model, likelihood, optimizer,
        mode=mode, n_samples=count, noise=noise, kl_mode=kl_mode, estimator=estimator, compile=compile, group=group,
    )  # fmt: skip
    config = dict(
        epochs=epochs, batch_size=batch_size, n_samples=count, kl_weighting=kl_weighting, shuffle=shuffle,
        estimator=estimator, mode=mode, noise=noise, world_size=world_size,
    )  # fmt: skip
    params = broadcast_tree(params, src=0, group=group)
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    history = {"loss": [], "data": [], "kl": [], "skipped": []}
    display = TrainingProgress(
        progress and main, epochs=epochs, steps_per_epoch=num_batches, start_epoch=start_epoch
    )  # rank 0 alone shows progress
    start = time.perf_counter()
    with display:
        if compile:
            display.note(COMPILE_NOTE)
        for epoch in range(start_epoch, epochs):
            epoch_key = key.fold_in(epoch)
            order = permutation(epoch_key, n, device=inputs.device) if shuffle else None
            x_epoch = inputs[order] if shuffle else inputs
            y_epoch = targets[order] if shuffle else targets
            epoch_terms = []
            for index in range(num_batches):
                rows, first = slice(index * batch_size, min((index + 1) * batch_size, n)), 0
                if mode == "data":
                    mine = shard(rows.stop - rows.start, rank, world_size)
                    rows, first = slice(rows.start + mine.start, rows.start + mine.stop), mine.start
                try:
                    params, opt_state, terms = step(
                        params, opt_state, epoch_key.fold_in(index + 1), x_epoch[rows], y_epoch[rows], weights[index],
                        row_offset=first,
                    )  # fmt: skip
                except NonFiniteStepError as error:  # the same on every rank: all leave together
                    raise NonFiniteStepError(
                        f"{error} at epoch {epoch}, step {index}",
                        epoch=epoch, step=index, params=params, opt_state=opt_state,
                    ) from None  # fmt: skip
                epoch_terms.append(torch.stack(tuple(terms)))
                display.step(epoch, index)
                if compile and epoch == start_epoch and index == 0:
                    display.note(f"compiled and ran the first step in {time.perf_counter() - start:.1f} s")
            loss, data, kl = torch.stack(epoch_terms).double().mean(dim=0).tolist()
            for name, value in zip(("loss", "data", "kl", "skipped"), (loss, data, kl, 0)):
                history[name].append(value)
            display.epoch_done(epoch, loss)
            stop = False
            if main and callback is not None:
                with display.writing():  # a callback that prints does not break the bar
                    stop = bool(callback(EpochInfo(epoch, params, opt_state, loss, data, kl)))
            if callback is not None:  # rank 0's decision, so that all ranks leave the loop together
                flag = torch.tensor([stop], dtype=torch.uint8, device=like.device)
                dist.broadcast(flag, src=global_rank(0, group), group=group)
                stop = bool(flag.item())
            due = stop or (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs
            if main and checkpoint_path is not None and due:
                save_checkpoint(
                    checkpoint_path, params=params, opt_state=opt_state, key=key, epoch=epoch + 1, config=config
                )
            if stop:
                break
    history["seconds"] = time.perf_counter() - start
    return FitResult(params, opt_state, history, None)
