"""The implementations under test. Each builder returns a :class:`Runner` for one case.

A runner's ``run()`` does one unit of work -- an ELBO gradient step *including*
the Adam update, or one prediction (S draws, mean and std) -- and keeps its
own parameters and optimizer state between calls, so every implementation
times the same work on the same data, on the same device:

* ``fblitz``          -- ``make_train_step`` (vmap over S, gradients, fblitz Adam),
                         eager or ``compile=True``; one row per estimator.
* ``loop``            -- fblitz's one-sample ``model.apply`` in a Python loop over S, same grad/Adam.
* ``bmm``             -- the hand-batched reference of :mod:`benchmarks.reference`.
* ``compat``          -- ``fblitz.compat``: BLiTZ's API (``sample_elbo``, ``backward``, ``torch.optim.Adam``)
                         on fblitz's functional core.
* ``blitz``           -- BLiTZ's ``sample_elbo`` + ``backward`` + ``torch.optim.Adam``
                         (only when ``blitz`` is importable).
* ``bayesian-torch``, ``posteriors`` -- the peers of :mod:`benchmarks.peers` (when importable).

Prediction runners are in :mod:`benchmarks.predict_impls`. Estimators:
:data:`fblitz.estimators.ESTIMATORS`; adding one is one entry there.
"""

from __future__ import annotations

import importlib.util

import torch

from benchmarks import blitz_twins, peers, predict_impls, reference
from benchmarks.cases import Case
from benchmarks.runner import KL_WEIGHT, LEARNING_RATE, Impl, Runner, bind, case_data, forked_rng, setup
from fblitz import optim
from fblitz.estimators import ESTIMATORS
from fblitz.kl import closed_form_kl, make_plan, monte_carlo_kl
from fblitz.layers import sample_noise
from fblitz.likelihoods import as_likelihood
from fblitz.random import Key
from fblitz.train import make_train_step
from fblitz.tree import tree_map


def blitz_available() -> bool:
    """True when BLiTZ can be imported."""
    return importlib.util.find_spec("blitz") is not None


def fblitz_step(case: Case, *, compile: bool = False, estimator: str = "reparameterization", seed=0, device="cpu"):
    """fblitz's full training step (``make_train_step``)."""
    model, params, x, y = setup(case, seed, device)
    opt = optim.adam(LEARNING_RATE)
    extra = {} if estimator == "reparameterization" else {"estimator": estimator}
    step = make_train_step(model, case.net.likelihood, opt, n_samples=case.samples, compile=compile, **extra)
    weight = torch.tensor(KL_WEIGHT, device=device)
    carry = {"params": params, "opt": opt.init(params), "i": 0}
    key = Key(seed + 2)

    def run():
        carry["i"] += 1
        params, opt_state, terms = step(carry["params"], carry["opt"], key.fold_in(carry["i"]), x, y, weight)
        carry["params"], carry["opt"] = params, opt_state
        return terms.loss

    return Runner(run)


def loop_step(case: Case, *, seed: int = 0, device="cpu") -> Runner:
    """The same step with a Python loop over samples of the one-sample ``model.apply`` (no vmap)."""
    model, params, x, y = setup(case, seed, device)
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


def bmm_step(case: Case, *, seed: int = 0, device="cpu") -> Runner:
    """The hand-batched reference step (:mod:`benchmarks.reference`)."""
    model, params, x, y = setup(case, seed, device)
    step = reference.make_step(case.net.kind, case.net.classes, params, LEARNING_RATE)
    key = Key(seed + 2)
    counter = [0]

    def run():
        counter[0] += 1
        return step(sample_noise(model, key.fold_in(counter[0]), step.params, case.samples), x, y, KL_WEIGHT)

    return Runner(run)


def twin_step(case: Case, *, library: str = "blitz", seed: int = 0, device="cpu") -> Runner:
    """BLiTZ's API on ``library`` (``"blitz"`` or ``"compat"``): ``zero_grad``, ``sample_elbo``, ``backward``,
    ``torch.optim.Adam.step``."""
    module = blitz_twins.build(case.net, seed, library, device)
    x, y = case_data(case, seed, device)
    opt = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    criterion = blitz_twins.criterion(case.net)

    def run():
        opt.zero_grad(set_to_none=True)
        loss = module.sample_elbo(x, y, criterion, case.samples, KL_WEIGHT)
        loss.backward()
        opt.step()

    return Runner(run, forked_rng)


def bayesian_torch_step(case: Case, *, seed: int = 0, device="cpu") -> Runner:
    """bayesian-torch's documented training step (:mod:`benchmarks.peers`)."""
    module = peers.bayesian_torch_model(case.net, seed, device)
    x, y = case_data(case, seed, device)
    opt = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    step = peers.bayesian_torch_step(module, blitz_twins.criterion(case.net), case.samples, KL_WEIGHT, opt)
    return Runner(lambda: step(x, y), forked_rng)


def posteriors_step(case: Case, *, seed: int = 0, device="cpu") -> Runner:
    """``posteriors.vi.diag``'s ``transform.update`` (:mod:`benchmarks.peers`)."""
    module = peers.deterministic(case.net, seed, device)
    x, y = case_data(case, seed, device)
    transform, state = peers.posteriors_transform(case.net, module, case.samples, LEARNING_RATE, KL_WEIGHT)
    carry = {"state": state}

    def run():
        carry["state"], aux = transform.update(carry["state"], (x, y))
        return aux

    return Runner(run, forked_rng)


def implementations(case: Case, *, compile: bool, blitz: bool, peer_names=("bayesian-torch", "posteriors")):
    """Every implementation to run for ``case`` (compiled fblitz only when ``compile``; peers when installed)."""
    peer_names = [name for name in peer_names if peers.available(name)]
    if case.net.kind == "lstm" and "posteriors" in peer_names:
        peer_names.remove("posteriors")  # vmap has no rule for nn.LSTM (see benchmarks.peers)
    if case.task == "predict":
        return predict_impls.implementations(case, compile=compile, blitz=blitz, peer_names=peer_names)
    impls = []
    for name in ESTIMATORS:
        impls.append(Impl("fblitz", name, False, bind(fblitz_step, estimator=name)))
        if compile:
            impls.append(Impl("fblitz", name, True, bind(fblitz_step, compile=True, estimator=name)))
    rep = "reparameterization"
    impls += [Impl("loop", rep, False, loop_step), Impl("bmm", rep, False, bmm_step)]
    impls.append(Impl("compat", rep, False, bind(twin_step, library="compat")))
    if blitz:
        impls.append(Impl("blitz", rep, False, bind(twin_step, library="blitz")))
    builders = {"bayesian-torch": bayesian_torch_step, "posteriors": posteriors_step}
    return impls + [Impl(name, rep, False, builders[name]) for name in peer_names]
