"""Distributed training steps: data-parallel and sample-parallel.

In both modes rank r computes, with :func:`fblitz.objectives.elbo_grad`, the
gradient g_r of the mean negative ELBO over *its part* of the work and the
ranks combine them in one bucketed ``all_reduce``:

    grad = sum_r c_r * g_r / sum_r c_r

* ``mode="data"``: each rank passes its own rows of the batch; c_r is its row
  count, so the data term is the mean over the whole batch (the likelihood
  must average over rows, the fblitz convention). Noise is drawn from
  ``rank_key(key, r)`` (independent per rank) or, with ``noise="shared"``,
  from ``key`` on every rank, which reproduces single-process training:
  per-example noise (dropout, local reparameterization, Flipout) is indexed
  by each row's position in the whole minibatch, not in the rank's shard
  (:func:`fblitz.variational.seeded.offset_noise`), so every row gets the noise it gets
  in one process.
* ``mode="sample"``: every rank passes the same batch; all ranks draw the
  single-process noise ``sample_noise(model, key, params, S)`` and rank r
  keeps samples ``shard(S, r, W)``; c_r is its sample count. The result is
  the single-process step with the same S, up to floating-point summation order.

**The KL is counted once.** Rank r's objective is
``L_r = (c_r / C) * (data_r + complexity_cost_weight * KL_r)`` with
``C = sum_r c_r``; the shares c_r / C sum to 1, so the KL enters the summed
objective with weight ``complexity_cost_weight`` exactly once (summing the
ranks' unscaled losses would count it W times). With a closed-form KL, or
shared noise, KL_r is the same on every rank and the total is exactly
``complexity_cost_weight * KL``; a Monte Carlo KL with per-rank noise gives
the share-weighted average of the ranks' estimates.

The collective carries the scaled gradients, the scaled (loss, data, kl)
and c_r in one buffer; every rank then applies the same optimizer update, so
params stay identical on all ranks, and reads the same finiteness flag. In sample mode every rank draws all S
noise samples and keeps its slice, so rank r's samples are exactly the
single-process ones (the price: each rank draws S samples, not S / W).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.distributed as dist

from fblitz import _checks
from fblitz._fused import all_finite
from fblitz.distributed.collectives import all_reduce_tree, first_row
from fblitz.distributed.sharding import NOISE_MODES, rank_key, shard
from fblitz.errors import FblitzValueError
from fblitz.layers.base import Layer, check_model, is_stateful, sample_noise
from fblitz.layers.params_check import check_params
from fblitz.likelihoods import as_likelihood
from fblitz.objectives import ElboTerms, elbo_grad
from fblitz.optim import GradientTransformation, apply_updates, check_optimizer
from fblitz.random import as_key
from fblitz.training.step import StepOutcome, compiled_noise, weight_tensor
from fblitz.tree import PyTree, tree_leaves, tree_map, tree_structure
from fblitz.variational.estimators import check_estimator
from fblitz.variational.kl import KL_MODES, make_plan
from fblitz.variational.seeded import has_seeds, offset_noise

MODES = ("data", "sample")


class DistributedStep(NamedTuple):
    """A collective training step; call it as ``step(params, opt_state, key, inputs, targets, weight)``.

    Every rank must call it with the same params, opt_state, key and weight.
    Returns a :class:`~fblitz.training.StepOutcome` (as
    :class:`~fblitz.training.TrainStep` does; ``state`` is None), the same on
    every rank: the terms are those of the whole step (all rows, all
    samples), and ``finite`` is False on every rank when the reduced loss or
    gradient is NaN or infinite (then the new params are not to be used).

    Data mode with shared noise also needs each rank's place in the minibatch:
    ``row_offset`` is the index of this rank's first row in it. None computes
    it with one small ``all_gather`` of the row counts, assuming the ranks
    hold consecutive shards in rank order (as :func:`~fblitz.distributed.shard`
    gives); :func:`~fblitz.distributed.fit_distributed` passes it.
    """

    fn: Callable

    def __call__(self, params, opt_state, key, inputs, targets, complexity_cost_weight=1.0, *, row_offset=None):
        """The step (see the class docstring); ``params`` is checked against the model first."""
        return StepOutcome(*self.fn(params, opt_state, key, inputs, targets, complexity_cost_weight, row_offset))


class _Split(NamedTuple):
    """Which part of a step's work this rank does (see the module docstring)."""

    model: Layer
    mode: str
    noise: str
    n_samples: int
    estimator: str | None
    group: object

    def local_part(self, params, key, inputs, row_offset) -> tuple[PyTree | None, int]:
        """This rank's noise and its count c_r (rows or samples); None noise when c_r is 0."""
        model, n_samples, estimator = self.model, self.n_samples, self.estimator
        rank, world_size = dist.get_rank(self.group), dist.get_world_size(self.group)
        if self.mode == "data":
            count = inputs.shape[0]
            if self.noise == "per_rank":
                eps = sample_noise(model, rank_key(key, rank), params, n_samples, estimator=estimator)
                return (eps if count else None), count
            eps = sample_noise(model, key, params, n_samples, estimator=estimator)
            if has_seeds(eps):  # per-example noise: index it by the rows' places in the whole minibatch
                first = first_row(count, self.group, params) if row_offset is None else row_offset
                eps = offset_noise(eps, _checks.integer("row_offset", first, minimum=0))
            return (eps if count else None), count
        part = shard(n_samples, rank, world_size)
        count = part.stop - part.start
        if not count:
            return None, 0
        return tree_map(lambda t: t[part], sample_noise(model, key, params, n_samples, estimator=estimator)), count


def _reduce(grads, terms, count: int, params, group) -> tuple[PyTree, ElboTerms]:
    """The count-weighted mean of the ranks' gradients and terms, in one bucketed ``all_reduce``."""
    like = next(leaf for leaf in tree_leaves(params) if leaf.is_floating_point())
    if count:
        scaled = tree_map(lambda g: g * count, grads)
        tally = torch.cat([torch.stack(tuple(terms)).to(like.dtype) * count, like.new_full((1,), count)])
    else:  # an empty shard (a batch smaller than the world) adds nothing
        scaled, tally = tree_map(torch.zeros_like, params), like.new_zeros(4)
    scaled, tally = all_reduce_tree((scaled, tally), group=group)
    total = tally[3]
    return tree_map(lambda g: g / total, scaled), ElboTerms(*(tally[:3] / total))


def make_distributed_step(
    model: Layer,
    likelihood,
    optimizer: GradientTransformation,
    *,
    mode: str = "data",
    n_samples: int = 1,
    noise: str = "per_rank",
    kl_mode: str = "auto",
    estimator: str | None = None,
    compile: bool = False,
    group=None,
) -> DistributedStep:
    """Build a data- or sample-parallel step (see the module docstring).

    Args:
        model, likelihood, optimizer: as for :func:`fblitz.training.make_train_step`.
        mode: ``"data"`` (inputs are this rank's rows) or ``"sample"``
            (inputs are the whole batch, the S samples are split).
        n_samples: S, weight draws per rank in data mode, in total in sample mode.
        noise: data mode only: ``"per_rank"`` or ``"shared"``.
        kl_mode, estimator: as for :func:`fblitz.training.make_train_step`.
        compile: compile each rank's gradient computation with ``torch.compile``.
        group: the process group (default: the default group).

    Example (run under ``torchrun``; see :func:`fblitz.distributed.fit_distributed`)::

        step = make_distributed_step(model, likelihoods.gaussian(0.1), optim.adam(1e-2), mode="sample", n_samples=8)
        params, opt_state, terms, _, finite = step(params, opt_state, key, x_batch, y_batch, 1 / n_train)
    """
    model = check_model(model)
    likelihood = as_likelihood(likelihood)
    check_optimizer(optimizer)
    _checks.one_of("mode", mode, MODES)
    _checks.one_of("noise", noise, NOISE_MODES)
    split = _Split(model, mode, noise, _checks.integer("n_samples", n_samples, minimum=1), estimator, group)
    _checks.one_of("kl_mode", kl_mode, KL_MODES)
    if estimator is not None:
        check_estimator("estimator", estimator)
    if is_stateful(model):
        raise FblitzValueError(
            "model must be stateless: distributed training does not support running statistics (batch norm) yet"
        )
    grad_fn = elbo_grad(model, likelihood)
    if compile:
        grad_fn = torch.compile(grad_fn)
    plans: dict = {}

    def step(params, opt_state, key, inputs, targets, weight, row_offset):
        check_params(model, params)  # as every rank's first act: a mismatch fails all ranks alike
        structure = tree_structure(params)
        if structure not in plans:
            plans[structure] = make_plan(params, model.priors, kl_mode)
        weight = weight_tensor(weight, params)
        eps, count = split.local_part(params, as_key(key), inputs, row_offset)
        grads, terms = None, None
        if count:
            if compile:
                eps = compiled_noise(model, params, eps, inputs, targets)
            grads, terms, _ = grad_fn(params, None, eps, inputs, targets, weight, plans[structure])
        grads, terms = _reduce(grads, terms, count, params, group)
        finite = all_finite(terms.loss, tree_leaves(grads))  # the same on every rank: all skip or stop together
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, terms, None, finite

    return DistributedStep(step)
