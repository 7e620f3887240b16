"""The implementations under test. Each builder returns a :class:`Runner` for one case.

A runner's ``run()`` does one unit of work -- an ELBO gradient step *including*
the Adam update, or one ``mfvi_forward`` (S predictions, mean and std) -- and
keeps its own parameters and optimizer state between calls, so every
implementation times the same work on the same data:

* ``fblitz``          -- ``make_train_step`` (vmap over S, ``torch.func.grad``, fblitz Adam),
                         eager or ``compile=True``; one row per estimator.
* ``loop``            -- fblitz's one-sample ``model.apply`` in a Python loop over S, same grad/Adam.
* ``bmm``             -- the hand-batched reference of :mod:`benchmarks.reference`.
* ``blitz``           -- BLiTZ's ``sample_elbo`` + ``backward`` + ``torch.optim.Adam``, or its
                         ``mfvi_forward`` (only when ``blitz`` is importable).

Estimators: :data:`ESTIMATORS` lists them; adding one is one entry (name ->
extra keyword arguments of ``make_train_step``).
"""

from __future__ import annotations

import contextlib
import importlib.util
from typing import NamedTuple

import torch

from benchmarks import reference
from benchmarks.cases import Case, data
from fblitz import optim
from fblitz.estimators import ESTIMATORS
from fblitz.kl import closed_form_kl, make_plan, monte_carlo_kl
from fblitz.layers import sample_noise
from fblitz.likelihoods import as_likelihood
from fblitz.prediction import mfvi_forward, predict, predictive_mean_std
from fblitz.predictor import make_predictor
from fblitz.random import Key
from fblitz.train import make_train_step
from fblitz.tree import tree_map

LEARNING_RATE = 1e-3
KL_WEIGHT = 1e-3  # complexity_cost_weight = 1 / N for a data set of 1000 rows


class Runner(NamedTuple):
    """``run()`` does one unit of work; ``context()`` wraps every call (e.g. ``fork_rng``)."""

    run: object
    context: object = contextlib.nullcontext


def _estimator_kwargs(name: str) -> dict:
    return {} if name == "reparameterization" else {"estimator": name}


def blitz_available() -> bool:
    """True when BLiTZ can be imported."""
    return importlib.util.find_spec("blitz") is not None


def _setup(case: Case, seed: int):
    model = case.net.build()
    params = model.init(Key(seed))
    x, y = data(case.net, case.batch, seed + 1)
    return model, params, x, y


def fblitz_step(case: Case, *, compile: bool = False, estimator: str = "reparameterization", seed: int = 0) -> Runner:
    """fblitz's full training step (``make_train_step``)."""
    model, params, x, y = _setup(case, seed)
    opt = optim.adam(LEARNING_RATE)
    step = make_train_step(
        model, case.net.likelihood, opt, n_samples=case.samples, compile=compile, **_estimator_kwargs(estimator)
    )
    weight = torch.tensor(KL_WEIGHT)
    carry = {"params": params, "opt": opt.init(params), "i": 0}
    key = Key(seed + 2)

    def run():
        carry["i"] += 1
        params, opt_state, terms = step(carry["params"], carry["opt"], key.fold_in(carry["i"]), x, y, weight)
        carry["params"], carry["opt"] = params, opt_state
        return terms.loss

    return Runner(run)


def loop_step(case: Case, *, seed: int = 0) -> Runner:
    """The same step with a Python loop over samples of the one-sample ``model.apply`` (no vmap)."""
    model, params, x, y = _setup(case, seed)
    likelihood = as_likelihood(case.net.likelihood)
    plan = make_plan(params, model.priors, "auto")
    opt = optim.adam(LEARNING_RATE)

    def loss(p, draws):
        total = 0.0
        for e in draws:
            total = total + likelihood(model.apply(p, x, e), y)
            if plan.needs_noise:
                total = total + KL_WEIGHT * monte_carlo_kl(plan, p, e)
        return total / len(draws) + KL_WEIGHT * closed_form_kl(plan, p)

    grad = torch.func.grad(loss)
    carry = {"params": params, "opt": opt.init(params), "i": 0}
    key = Key(seed + 2)

    def run():
        carry["i"] += 1
        eps = sample_noise(model, key.fold_in(carry["i"]), carry["params"], case.samples)
        draws = [tree_map(lambda t, s=s: t[s], eps) for s in range(case.samples)]
        grads = grad(carry["params"], draws)
        updates, carry["opt"] = opt.update(grads, carry["opt"], carry["params"])
        carry["params"] = optim.apply_updates(carry["params"], updates)

    return Runner(run)


def bmm_step(case: Case, *, seed: int = 0) -> Runner:
    """The hand-batched reference step (:mod:`benchmarks.reference`)."""
    model, params, x, y = _setup(case, seed)
    step = reference.make_step(case.net.kind, case.net.classes, params, LEARNING_RATE)
    key = Key(seed + 2)
    counter = [0]

    def run():
        counter[0] += 1
        return step(sample_noise(model, key.fold_in(counter[0]), step.params, case.samples), x, y, KL_WEIGHT)

    return Runner(run)


def _blitz_context():
    return torch.random.fork_rng(devices=[])


def blitz_step(case: Case, *, seed: int = 0) -> Runner:
    """BLiTZ: ``zero_grad``, ``sample_elbo``, ``backward``, ``torch.optim.Adam.step``."""
    from benchmarks import blitz_twins

    module = blitz_twins.build(case.net, seed)
    x, y = data(case.net, case.batch, seed + 1)
    opt = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    criterion = blitz_twins.criterion(case.net)

    def run():
        opt.zero_grad(set_to_none=True)
        loss = module.sample_elbo(x, y, criterion, case.samples, KL_WEIGHT)
        loss.backward()
        opt.step()

    return Runner(run, _blitz_context)


def fblitz_predict(case: Case, *, seed: int = 0) -> Runner:
    """fblitz's ``mfvi_forward``: S predictions (vmap, default draw groups), mean and std."""
    model, params, x, _ = _setup(case, seed)
    return Runner(lambda: mfvi_forward(model, params, x, key=seed + 2, sample_nbr=case.samples))


def fblitz_compiled_predict(case: Case, *, seed: int = 0) -> Runner:
    """``make_predictor(model, compile=True)``: the default draw groups, compiled once."""
    model, params, x, _ = _setup(case, seed)
    predictor = make_predictor(model, compile=True)
    return Runner(lambda: predictive_mean_std(predictor(params, x, key=seed + 2, n_samples=case.samples)))


def fblitz_one_call_predict(case: Case, *, seed: int = 0) -> Runner:
    """fblitz's ``predict`` with all S draws in one vectorized call (``sample_batch_size=S``)."""
    model, params, x, _ = _setup(case, seed)

    def run():
        samples = predict(model, params, x, key=seed + 2, n_samples=case.samples, sample_batch_size=case.samples)
        return predictive_mean_std(samples)

    return Runner(run)


def loop_predict(case: Case, *, seed: int = 0) -> Runner:
    """S one-sample ``model.apply`` calls in a Python loop, stacked, mean and std."""
    model, params, x, _ = _setup(case, seed)

    def run():
        eps = sample_noise(model, seed + 2, params, case.samples)
        outs = [model.apply(params, x, tree_map(lambda t, s=s: t[s], eps)) for s in range(case.samples)]
        return predictive_mean_std(torch.stack(outs))

    return Runner(run)


def bmm_predict(case: Case, *, seed: int = 0) -> Runner:
    """The hand-batched forward over all S samples at once, mean and std."""
    model, params, x, _ = _setup(case, seed)
    kind = case.net.kind

    def run():
        return reference.predict_mean_std(kind, params, sample_noise(model, seed + 2, params, case.samples), x)

    return Runner(run)


def blitz_predict(case: Case, *, seed: int = 0) -> Runner:
    """BLiTZ's ``mfvi_forward`` (under ``no_grad``, as for fblitz)."""
    from benchmarks import blitz_twins

    module = blitz_twins.build(case.net, seed)
    x, _ = data(case.net, case.batch, seed + 1)

    def run():
        with torch.no_grad():
            return module.mfvi_forward(x, case.samples)

    return Runner(run, _blitz_context)


class Impl(NamedTuple):
    """One row of the table for a case: name, estimator, compiled, builder."""

    name: str
    estimator: str
    compiled: bool
    build: object


def implementations(case: Case, *, compile: bool, blitz: bool) -> list[Impl]:
    """Every implementation to run for ``case`` (compiled fblitz only when ``compile``)."""
    if case.task == "predict":
        impls = [Impl("fblitz", "reparameterization", False, fblitz_predict)]
        if compile:
            impls += [Impl("fblitz", "reparameterization", True, fblitz_compiled_predict)]
        impls += [Impl("vmap-one-call", "reparameterization", False, fblitz_one_call_predict)]
        impls += [Impl("loop", "reparameterization", False, loop_predict)]
        impls += [Impl("bmm", "reparameterization", False, bmm_predict)]
        return impls + ([Impl("blitz", "reparameterization", False, blitz_predict)] if blitz else [])
    impls = []
    for name in ESTIMATORS:
        impls.append(Impl("fblitz", name, False, lambda c, n=name, **kw: fblitz_step(c, estimator=n, **kw)))
        if compile:
            impls.append(
                Impl("fblitz", name, True, lambda c, n=name, **kw: fblitz_step(c, compile=True, estimator=n, **kw))
            )
    impls += [Impl("loop", "reparameterization", False, loop_step), Impl("bmm", "reparameterization", False, bmm_step)]
    return impls + ([Impl("blitz", "reparameterization", False, blitz_step)] if blitz else [])
