"""Hostile-input fuzzing of the public API.

Contract: for any input -- NaN, inf, huge, empty, wrong rank or dtype, ints,
bools, None, mismatched trees -- a public call either raises one of fblitz's
error classes or returns finite results. Never a silent NaN/inf, never a raw
torch or Python error.

Known exception, by design: optimizers pass non-finite *gradients* through
(the train step's guard catches them, see tests/test_resume_guard.py), so the
optimizer fuzz uses hostile types, shapes and dtypes with finite values.
"""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fblitz import kl, layers, likelihoods, metrics, optim, prediction, priors, train
from fblitz.distributions import gaussian_kl, gaussian_log_prob, log_sigma, reparameterize, sigma
from fblitz.errors import FblitzError
from fblitz.objectives import negative_elbo, sample_elbo
from fblitz.random import sample_eps

EXAMPLES = settings(max_examples=150)
COUNT = {"examples": 0}

specials = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, -1e30, 3e38, float("nan"), float("inf"), -float("inf")])
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), specials)
dtypes = st.sampled_from([torch.float32, torch.float64, torch.int64, torch.int32, torch.bool, torch.float16])
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)


@st.composite
def tensors(draw, shape=None, dtype=None):
    shape = draw(shapes) if shape is None else shape
    dtype = draw(dtypes) if dtype is None else dtype
    data = draw(st.lists(values, min_size=math.prod(shape), max_size=math.prod(shape)))
    t = torch.tensor(data, dtype=torch.float64).reshape(shape)
    if dtype in (torch.int64, torch.int32):
        t = torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0).clamp(-100, 100)
    return t.to(dtype)


junk = st.one_of(st.none(), st.integers(-3, 3), st.booleans(), st.text(max_size=2), st.just([1.0]), st.just({}))
anything = st.one_of(tensors(), junk)
near = st.one_of(tensors(shape=(3, 2), dtype=torch.float32), anything)  # mostly valid-looking inputs


def finite(result):
    if isinstance(result, torch.Tensor):
        return not result.is_floating_point() or bool(torch.isfinite(result).all())
    if isinstance(result, float):
        return math.isfinite(result)
    if isinstance(result, (tuple, list)):
        return all(finite(r) for r in result)
    if isinstance(result, dict):
        return all(finite(r) for r in result.values())
    return True


def check(call, *args, **kwargs):
    """Run ``call``: it must raise a fblitz error or return finite results."""
    COUNT["examples"] += 1
    try:
        result = call(*args, **kwargs)
    except FblitzError:
        return
    assert finite(result), f"{call} returned a non-finite result silently"


PRIORS = [priors.gaussian(0.1), priors.scale_mixture(0.5, 1.0, 1e-3), priors.gaussian(1e3, mean=1.0)]


@EXAMPLES
@given(st.sampled_from(PRIORS), anything, anything)
def test_priors_and_distributions(prior, a, b):
    check(prior.log_prob, a)
    if prior.has_closed_form_kl:
        check(prior.kl, a, b)
    check(sigma, a)
    check(log_sigma, a)
    check(gaussian_kl, a, b, 0.0, 0.5)
    check(reparameterize, a, b, a)
    check(gaussian_log_prob, a, 0.0, b)


@EXAMPLES
@given(st.floats(allow_nan=True, allow_infinity=True), st.one_of(st.floats(), junk), st.floats(-1e3, 1e3))
def test_prior_and_likelihood_constructors(pi, s, x):
    check(priors.scale_mixture, pi, 1.0, s)
    check(priors.gaussian, s, x)
    check(likelihoods.gaussian, s)
    check(train.minibatch_weights, s)
    check(train.kl_weights, 10, 3, "blundell", s)


LIKELIHOODS = [
    likelihoods.gaussian(0.5),
    likelihoods.bernoulli(),
    likelihoods.heteroscedastic_gaussian(),
    likelihoods.categorical(),
]


@EXAMPLES
@given(st.sampled_from(LIKELIHOODS), anything, anything)
def test_likelihoods(likelihood, outputs, targets):
    check(likelihood, outputs, targets)


MODEL = layers.serial(layers.linear(2, 3), layers.relu, layers.linear(3, 1, prior_pi=0.5))
PARAMS = MODEL.init(0)
LINEAR = layers.linear(2, 1)
LIN_PARAMS = LINEAR.init(0)


@EXAMPLES
@given(near, st.one_of(st.none(), st.just("eps"), anything), st.sampled_from(["params", "bad", "none"]))
def test_layer_apply_and_kl(x, eps, which):
    noise = sample_eps(1, PARAMS) if eps == "eps" else eps
    params = {"params": PARAMS, "bad": {"0": LIN_PARAMS, "1": {}, "2": PARAMS["2"]}, "none": {"0": x}}[which]
    check(MODEL.apply, params, x, noise)
    if isinstance(x, torch.Tensor) and x.dtype == torch.float32 and bool(torch.isfinite(x).all()):
        check(LINEAR.apply, LIN_PARAMS, x, None)  # a bare layer checks only type and shape (see serial)
    check(kl.kl_divergence, params, MODEL.priors, noise)
    check(kl.kl_divergence, {"w": {"mu": x, "rho": x}}, {"w": priors.gaussian(0.1)})


@EXAMPLES
@given(
    near,
    st.one_of(tensors(shape=(3, 1), dtype=torch.float32), anything),
    st.one_of(st.integers(-1, 3), junk),
    st.one_of(st.floats(allow_nan=True), junk),
)
def test_elbo(x, y, n, weight):
    lik = likelihoods.gaussian(0.5)
    check(sample_elbo, MODEL, PARAMS, 0, x, y, likelihood=lik, n_samples=n, complexity_cost_weight=weight)
    check(negative_elbo, MODEL, PARAMS, sample_eps(0, PARAMS, 2), x, y, likelihood=lik)
    check(negative_elbo, MODEL, PARAMS, x, x, y, likelihood=lik)


@EXAMPLES
@given(near, st.one_of(st.integers(-1, 3), junk), st.one_of(st.none(), st.integers(-1, 2), junk))
def test_predict(x, n, batch_size):
    check(prediction.predict, MODEL, PARAMS, x, key=0, n_samples=n, batch_size=batch_size)
    check(prediction.predict_mean_weights, MODEL, PARAMS, x)
    check(prediction.predictive_mean_std, x)
    check(prediction.quantile_interval, x)
    check(prediction.mean_std_interval, x, x)


@EXAMPLES
@given(anything, anything, anything)
def test_metrics(a, b, c):
    check(metrics.rmse, a, b)
    check(metrics.gaussian_nll, a, b, c)
    check(metrics.interval_accuracy, a, b, c)
    check(metrics.mean_interval_width, a, b)
    check(metrics.gaussian_mixture_log_likelihood, a, b, c)
    check(metrics.accuracy, a, b)
    check(metrics.brier_score, a, b)
    check(metrics.expected_calibration_error, a, b)
    check(metrics.predictive_entropy, a)


OPTIMIZERS = [
    optim.sgd(0.1),
    optim.sgd(0.1, 0.9, nesterov=True),
    optim.adam(0.1, weight_decay=0.1),
    optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.01)),
]
finite_or_junk = st.one_of(tensors(dtype=torch.float32).map(lambda t: torch.nan_to_num(t).clamp(-1e3, 1e3)), junk)


@EXAMPLES
@given(st.sampled_from(OPTIMIZERS), finite_or_junk, st.sampled_from(["state", "junk", "other"]))
def test_optimizer_updates(opt, g, which):
    params = {"w": torch.ones(2, 2), "b": torch.zeros(2)}
    state = {"state": opt.init(params), "junk": g, "other": optim.adam(0.1).init({"w": torch.ones(3)})}[which]
    check(opt.update, {"w": g, "b": torch.zeros(2)}, state, params)
    check(optim.apply_updates, params, {"w": g, "b": torch.zeros(2)})
    check(opt.init, {"w": g})


def test_zz_report_example_count():
    print(f"\nfuzz calls checked: {COUNT['examples']} (8 tests x 150 hypothesis examples)")
    assert COUNT["examples"] > 1000
