"""``fit_distributed``: the loop of :func:`fblitz.training.fit` over a process group.

Every rank holds the whole training set and runs the same loop as ``fit``
(:func:`fblitz.training.loop.train_loop`: same shuffling, same minibatches,
same KL weights, same step keys); what this module adds is the
:class:`~fblitz.training.loop.Runner` of a rank. Each step is a
:class:`~fblitz.distributed.step.DistributedStep`: in data mode a rank trains
on its contiguous share of each minibatch's rows, in sample mode on its share
of the S weight samples. Rank 0 alone shows progress, calls the callback (its
stop decision is broadcast to all ranks) and writes checkpoints; every rank
returns the same :class:`~fblitz.training.FitResult`.
"""

from __future__ import annotations

import functools

import torch
import torch.distributed as dist

from fblitz.distributed.collectives import broadcast_tree, global_rank
from fblitz.distributed.sharding import shard
from fblitz.distributed.step import make_distributed_step
from fblitz.errors import FblitzValueError
from fblitz.layers.base import Layer
from fblitz.training import FitResult, StepOutcome, fit
from fblitz.training.loop import Runner
from fblitz.training.options import FitOptions
from fblitz.tree import PyTree, tree_leaves


def distributed_runner(
    model: Layer, params: PyTree, options: FitOptions, *, mode: str = "data", noise: str = "per_rank", group=None
) -> Runner:
    """The :class:`~fblitz.training.loop.Runner` of this rank: its share of each step, collectives to agree.

    A runner factory for :func:`fblitz.training.fit` once ``mode``, ``noise`` and
    ``group`` are bound (as :func:`fit_distributed` binds them).
    """
    if options.resume.state is not None:
        raise FblitzValueError(
            f"resume.state must be None: distributed training has no running statistics, got {options.resume.state!r}"
        )
    step = make_distributed_step(
        model, options.likelihood, options.optimizer, mode=mode, n_samples=options.n_samples, noise=noise,
        kl_mode=options.kl_mode, estimator=options.estimator, compile=options.compile, group=group,
    )  # fmt: skip
    rank, world_size = dist.get_rank(group), dist.get_world_size(group)
    # where the stop flag travels: the params' device, where NCCL needs it
    device = next((leaf.device for leaf in tree_leaves(params) if isinstance(leaf, torch.Tensor)), None)

    def run(params, opt_state, state, key, inputs, targets, weight, row_offset) -> StepOutcome:
        return StepOutcome(*step.fn(params, opt_state, key, inputs, targets, weight, row_offset))

    def rows(batch: slice) -> slice:
        if mode == "sample":
            return batch
        mine = shard(batch.stop - batch.start, rank, world_size)
        return slice(batch.start + mine.start, batch.start + mine.stop)

    def agree(stop: bool) -> bool:
        flag = torch.tensor([stop], dtype=torch.uint8, device=device)
        dist.broadcast(flag, src=global_rank(0, group), group=group)
        return bool(flag.item())

    return Runner(
        step=run,
        rows=rows,
        start=lambda params: broadcast_tree(params, src=0, group=group),
        agree=agree,
        main=rank == 0,
        config=dict(mode=mode, noise=noise, world_size=world_size),
    )


def fit_distributed(
    model: Layer,
    params: PyTree,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    mode: str = "data",
    noise: str = "per_rank",
    group=None,
    **options,
) -> FitResult:
    """Train with every rank of the process group (call it on every rank): :func:`fblitz.training.fit`, split.

    Args:
        model, params, inputs, targets: as for :func:`fblitz.training.fit`;
            every rank holds the whole training set.
        mode: ``"data"`` (split each minibatch's rows over the ranks) or
            ``"sample"`` (split its S weight samples).
        noise: data mode: ``"per_rank"`` (independent noise per rank, from
            :func:`~fblitz.distributed.sharding.rank_key`) or ``"shared"``
            (every rank draws the single-process noise, per-example noise
            indexed by the rows' places in the minibatch; then training equals
            ``fit`` up to floating-point summation order, for every estimator
            and with dropout).
        group: the process group (default: the default group).
        **options: the keyword arguments of :func:`fblitz.training.fit`
            (``likelihood``, ``optimizer``, ``key``, ``epochs``, ``batch_size``, ...).

    ``batch_size`` is the global minibatch (all ranks together); params are
    broadcast from rank 0 at the start so all ranks begin alike. Resuming
    continues the run exactly as ``fit`` does. A non-finite step is seen
    alike by every rank, so all raise (or, with ``on_nonfinite="skip"``, skip
    it) together. Models with running statistics (batch norm) are not
    supported (``resume.state`` must be None).

    Example (under ``torchrun --nproc-per-node 2``, after :func:`fblitz.distributed.init`)::

        result = fit_distributed(model, model.init(0), x, y, likelihood=likelihoods.gaussian(0.1),
                                 optimizer=optim.adam(1e-2), key=1, epochs=10, batch_size=32)
    """
    runner = functools.partial(distributed_runner, mode=mode, noise=noise, group=group)
    return fit(model, params, inputs, targets, runner=runner, **options)
