"""Prediction runners: S draws over a batch of rows, then the mean and std of each output (``mfvi_forward``).

* ``fblitz``        -- ``mfvi_forward`` (vmap, default draw groups), eager; one row per estimator
                       (local reparameterization draws each row's pre-activations from their exact
                       marginal; it keeps every row's distribution, not the correlation between rows
                       of one draw).
* ``fblitz`` compiled -- ``make_predictor(model, compile=True)``.
* ``fblitz-moments`` -- :func:`fblitz.moments.predictive_moments`: the mean and std in closed form, no draws
                       (exact for one hidden layer, see :mod:`fblitz.moments`).
* ``vmap-one-call`` -- all S draws in one vectorized call (``sample_batch_size=S``).
* ``loop``, ``bmm`` -- the Python loop over draws and the hand-batched reference.
* ``compat``, ``blitz`` -- ``mfvi_forward`` of the BLiTZ-API twins; ``bayesian-torch``, ``posteriors`` -- the peers.
"""

from __future__ import annotations

import torch

from benchmarks import blitz_twins, peers, reference
from benchmarks.cases import Case
from benchmarks.runner import KL_WEIGHT, LEARNING_RATE, Impl, Runner, bind, case_data, forked_rng, setup
from fblitz.estimators import ESTIMATORS
from fblitz.layers import sample_noise
from fblitz.moments import predictive_moments
from fblitz.prediction import mfvi_forward, predict, predictive_mean_std
from fblitz.predictor import make_predictor
from fblitz.tree import tree_map

PREDICT_ESTIMATORS = [name for name in ESTIMATORS if name != "flipout"]  # Flipout predicts as plain sampling
# rows x draws above which the one-call rows (every draw's activations at once: gigabytes) are left out
ONE_CALL_LIMIT = 400_000


def fblitz_predict(case: Case, *, estimator: str = "reparameterization", seed: int = 0, device="cpu"):
    """fblitz's ``mfvi_forward``: S predictions (vmap, default draw groups), mean and std."""
    model, params, x, _ = setup(case, seed, device)
    if estimator == "reparameterization":
        return Runner(lambda: mfvi_forward(model, params, x, key=seed + 2, sample_nbr=case.samples))
    return Runner(
        lambda: predictive_mean_std(
            predict(model, params, x, key=seed + 2, n_samples=case.samples, estimator=estimator)
        )
    )


def fblitz_compiled_predict(case: Case, *, seed: int = 0, device="cpu"):
    """``make_predictor(model, compile=True)``: the default draw groups, compiled once."""
    model, params, x, _ = setup(case, seed, device)
    predictor = make_predictor(model, compile=True)
    return Runner(lambda: predictive_mean_std(predictor(params, x, key=seed + 2, n_samples=case.samples)))


def fblitz_moments_predict(case: Case, *, seed: int = 0, device="cpu"):
    """:func:`fblitz.moments.predictive_moments`: the predictive mean and std in closed form (no draws)."""
    model, params, x, _ = setup(case, seed, device)

    def run():
        moments = predictive_moments(model, params, x)
        return moments.mean, moments.var.sqrt()

    return Runner(run)


def fblitz_one_call_predict(case: Case, *, seed: int = 0, device="cpu"):
    """fblitz's ``predict`` with all S draws in one vectorized call (``sample_batch_size=S``)."""
    model, params, x, _ = setup(case, seed, device)

    def run():
        samples = predict(model, params, x, key=seed + 2, n_samples=case.samples, sample_batch_size=case.samples)
        return predictive_mean_std(samples)

    return Runner(run)


def loop_predict(case: Case, *, seed: int = 0, device="cpu"):
    """S one-sample ``model.apply`` calls in a Python loop, stacked, mean and std."""
    model, params, x, _ = setup(case, seed, device)

    def run():
        eps = sample_noise(model, seed + 2, params, case.samples)
        outs = [model.apply(params, x, tree_map(lambda t, s=s: t[s], eps)) for s in range(case.samples)]
        return predictive_mean_std(torch.stack(outs))

    return Runner(run)


def bmm_predict(case: Case, *, seed: int = 0, device="cpu"):
    """The hand-batched forward over all S samples at once, mean and std."""
    model, params, x, _ = setup(case, seed, device)
    kind = case.net.kind
    return Runner(
        lambda: reference.predict_mean_std(kind, params, sample_noise(model, seed + 2, params, case.samples), x)
    )


def twin_predict(case: Case, *, library: str = "blitz", seed: int = 0, device="cpu"):
    """``mfvi_forward`` of the BLiTZ-API twin in ``library`` (under ``no_grad``, as for fblitz)."""
    module = blitz_twins.build(case.net, seed, library, device)
    x = case_data(case, seed, device)[0]

    def run():
        with torch.no_grad():
            return module.mfvi_forward(x, case.samples)

    return Runner(run, forked_rng)


def bayesian_torch_predict(case: Case, *, seed: int = 0, device="cpu"):
    """S forward passes of the bayesian-torch model under ``no_grad``."""
    module = peers.bayesian_torch_model(case.net, seed, device)
    x = case_data(case, seed, device)[0]
    return Runner(lambda: peers.bayesian_torch_predict(module, x, case.samples), forked_rng)


def posteriors_predict(case: Case, *, seed: int = 0, device="cpu"):
    """``posteriors.vi.diag.sample`` of S weight draws, evaluated under ``vmap``."""
    module = peers.deterministic(case.net, seed, device)
    x = case_data(case, seed, device)[0]
    _, state = peers.posteriors_transform(case.net, module, case.samples, LEARNING_RATE, KL_WEIGHT)
    return Runner(lambda: peers.posteriors_predict(case.net, module, state, x, case.samples), forked_rng)


def implementations(case: Case, *, compile: bool, blitz: bool, peer_names) -> list:
    """The prediction rows of ``case``."""
    rep = "reparameterization"
    impls = [Impl("fblitz", name, False, bind(fblitz_predict, estimator=name)) for name in PREDICT_ESTIMATORS]
    if compile:
        impls.append(Impl("fblitz", rep, True, fblitz_compiled_predict))
    impls.append(Impl("fblitz-moments", "closed_form_moments", False, fblitz_moments_predict))
    if case.batch * case.samples <= ONE_CALL_LIMIT:
        impls.append(Impl("vmap-one-call", rep, False, fblitz_one_call_predict))
    impls.append(Impl("loop", rep, False, loop_predict))
    if case.batch * case.samples <= ONE_CALL_LIMIT:
        impls.append(Impl("bmm", rep, False, bmm_predict))
    impls.append(Impl("compat", rep, False, bind(twin_predict, library="compat")))
    if blitz:
        impls.append(Impl("blitz", rep, False, bind(twin_predict, library="blitz")))
    builders = {"bayesian-torch": bayesian_torch_predict, "posteriors": posteriors_predict}
    return impls + [Impl(name, rep, False, builders[name]) for name in peer_names]
