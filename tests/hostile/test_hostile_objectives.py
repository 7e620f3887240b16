"""Hostile inputs to the ELBO, the KL and the likelihoods: a clear error or a correct result."""

import math

import pytest
import torch

from fblitz import likelihoods, priors
from fblitz.distributions import gaussian_kl, rho_range
from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError
from fblitz.kl import kl_divergence
from fblitz.layers import sample_noise
from fblitz.objectives import negative_elbo, sample_elbo
from fblitz.tree import tree_map
from tests.helpers import mlp, randn, to_double
from tests.hostile._expect import refuses

MODEL = mlp(3, 4, 1)
X, Y = randn(1, 8, 3), randn(2, 8, 1)
GAUSSIAN = likelihoods.gaussian()


def _elbo(params=None, x=X, y=Y, **options):
    options.setdefault("likelihood", GAUSSIAN)
    return sample_elbo(MODEL, MODEL.init(0) if params is None else params, 0, x, y, **options)


def _with_rho(value, dtype=torch.float32, path=("0", "weight")):
    params = MODEL.init(0, dtype=dtype)
    node = params[path[0]][path[1]]
    node["rho"] = torch.full_like(node["rho"], value)
    return params


def _with_mu(value):
    params = MODEL.init(0)
    params["2"]["bias"]["mu"] = torch.full_like(params["2"]["bias"]["mu"], value)
    return params


REFUSED = {
    "params-none": (lambda: sample_elbo(MODEL, None, 0, X, Y, likelihood=GAUSSIAN), FblitzTypeError,
                    ("params", "None")),
    "rho-underflow-float32": (lambda: _elbo(params=_with_rho(-1e4)), NonFiniteError,
                              ("params at '0.weight'", "rho must lie in (-87.3,", "torch.float32", "-1e+04")),
    "rho-underflow-float64": (lambda: _elbo(params=_with_rho(-1e4, torch.float64), x=X.double(), y=Y.double()),
                              NonFiniteError, ("rho must lie in (-708.4,", "torch.float64")),
    "rho-underflow-monte-carlo": (lambda: _elbo(params=_with_rho(-1e4), kl_mode="monte_carlo"), NonFiniteError,
                                  ("params at '0.weight'", "rho must lie in")),
    "mu-overflow": (lambda: _elbo(params=_with_mu(1e30)), NonFiniteError, ("mu", "1e+30")),
    "kl-weight-string": (lambda: _elbo(complexity_cost_weight="1"), FblitzTypeError, ("complexity_cost_weight",)),
    "kl-weight-vector": (lambda: _elbo(complexity_cost_weight=torch.ones(2)), FblitzValueError,
                         ("complexity_cost_weight", "0-dim")),
    "likelihood-string": (lambda: _elbo(likelihood="gaussian"), FblitzTypeError, ("likelihood", "'gaussian'")),
    "criterion-float": (lambda: _elbo(likelihood=lambda out, y: 1.0), FblitzValueError, ("criterion", "float")),
    "criterion-unreduced": (lambda: _elbo(likelihood=torch.nn.MSELoss(reduction="none")), FblitzValueError,
                            ("criterion", "0-dim", "(8, 1)")),
    "n-samples-bool": (lambda: _elbo(n_samples=True), FblitzTypeError, ("n_samples", "True")),
    "kl-mode": (lambda: _elbo(kl_mode="analytic"), FblitzValueError, ("kl_mode", "'analytic'")),
    "estimator-unknown": (lambda: _elbo(estimator="LRT"), FblitzValueError, ("estimator", "'LRT'")),
    "inputs-int": (lambda: _elbo(x=torch.ones(8, 3, dtype=torch.int64)), FblitzTypeError, ("x", "torch.int64")),
    "inputs-float64": (lambda: _elbo(x=X.double()), FblitzTypeError, ("inputs", "torch.float64")),
    "kl-needs-eps": (lambda: kl_divergence(MODEL.init(0), MODEL.priors, mode="monte_carlo"), FblitzValueError,
                     ("eps", "monte_carlo")),
    "kl-mode-unknown": (lambda: kl_divergence(MODEL.init(0), MODEL.priors, mode="mc"), FblitzValueError,
                        ("kl_mode", "'mc'")),
    "gaussian-kl-rho": (lambda: gaussian_kl(torch.zeros(3), torch.full((3,), -200.0), 0.0, 1.0), NonFiniteError,
                        ("rho must lie in (-87.3,", "-200")),
    "prior-sigma": (lambda: priors.gaussian(-1.0), FblitzValueError, ("sigma", "> 0")),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refuses(case):
    call, error, names = case
    refuses(call, error, *names)


def test_refuses_noise_of_another_dtype():
    params = MODEL.init(0)
    eps = tree_map(lambda t: t.double(), sample_noise(MODEL, 1, params, 2))
    refuses(lambda: negative_elbo(MODEL, params, eps, X, Y, likelihood=GAUSSIAN), FblitzValueError, "eps", "float64")


def test_refuses_the_self_contradictory_overflow_advice_in_float64():
    params = _with_rho(-1e4, torch.float64)
    message = refuses(lambda: _elbo(params=params, x=X.double(), y=Y.double()), NonFiniteError, "rho")
    assert "use float64" not in message


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_correct_rho_just_inside_the_safe_range_gives_the_exact_kl(dtype):
    low = rho_range(dtype)[0]
    rho = torch.tensor([low + 1.0, -20.0, 0.0], dtype=dtype)
    kl = gaussian_kl(torch.zeros(3, dtype=dtype), rho, 0.0, 1.0)
    # KL(N(0, s^2) || N(0, 1)) = s^2 / 2 - log s - 1/2, with s = softplus(rho) computed in float64
    s = torch.nn.functional.softplus(rho.double())
    torch.testing.assert_close(kl.double(), s.square() / 2 - s.log() - 0.5, rtol=1e-6, atol=0.0)
    assert math.isclose(low, math.log(torch.finfo(dtype).tiny))


def test_correct_meta_params_give_a_meta_kl_and_likelihood():
    params = tree_map(lambda t: t.to("meta"), MODEL.init(0))
    assert kl_divergence(params, MODEL.priors).device.type == "meta"
    outputs, targets = torch.zeros(8, 1, device="meta"), torch.zeros(8, 1, device="meta")
    assert GAUSSIAN(outputs, targets).device.type == "meta"


def test_correct_float64_everywhere_is_accepted():
    terms = _elbo(params=to_double(MODEL.init(0)), x=X.double(), y=Y.double(), n_samples=2)
    assert terms.loss.dtype == torch.float64 and torch.isfinite(terms.loss)
