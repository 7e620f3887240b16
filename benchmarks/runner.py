"""What every runner shares: the :class:`Runner` and :class:`Impl` records, the settings, the setup."""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch

from benchmarks.cases import Case, data
from fblitz.random import Key

LEARNING_RATE = 1e-3
KL_WEIGHT = 1e-3  # complexity_cost_weight = 1 / N for a data set of 1000 rows


class Runner(NamedTuple):
    """``run()`` does one unit of work; ``context()`` wraps every call (e.g. ``fork_rng``)."""

    run: object
    context: object = contextlib.nullcontext


class Impl(NamedTuple):
    """One row of the table for a case: name, estimator, compiled, builder (``build(case, device=...)``)."""

    name: str
    estimator: str
    compiled: bool
    build: object


def bind(builder, **fixed):
    """``builder`` with some keyword arguments fixed (an :class:`Impl`'s ``build``)."""
    return lambda case, **kw: builder(case, **fixed, **kw)


def setup(case: Case, seed: int, device="cpu"):
    """``(model, params, x, y)`` of ``case`` on ``device`` (the same for every fblitz-based runner)."""
    model = case.net.build()
    params = model.init(Key(seed), device=device)
    x, y = data(case.net, case.batch, seed + 1)
    return model, params, x.to(device), y.to(device)


def case_data(case: Case, seed: int, device="cpu"):
    """``(x, y)`` of ``case`` on ``device`` (for the runners of other libraries)."""
    return tuple(t.to(device) for t in data(case.net, case.batch, seed + 1))


def forked_rng():
    """For libraries that draw from the global RNG: their draws leave the caller's RNG as it was."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    return torch.random.fork_rng(devices=devices)
