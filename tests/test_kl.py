import math

import pytest
import torch

from fblitz import priors
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers import Bayes
from fblitz.random import sample_eps
from fblitz.variational.kl import closed_form_kl, kl_divergence, make_plan, monte_carlo_kl
from tests.helpers import mlp, to_double


def model_and_params(**kwargs):
    model = mlp(4, 6, 2, **kwargs)
    return model, to_double(model.init(0))


def test_auto_uses_closed_form_for_gaussian_priors():
    model, params = model_and_params()
    plan = make_plan(params, model.priors, "auto")
    assert len(plan.closed_form) == 4 and not plan.needs_noise
    expected = sum(
        torch.distributions.kl_divergence(
            torch.distributions.Normal(node["mu"], torch.nn.functional.softplus(node["rho"])),
            torch.distributions.Normal(0.0, torch.tensor(0.1, dtype=torch.float64)),
        ).sum()
        for layer in (params["0"], params["2"])
        for node in layer.values()
    )
    assert torch.allclose(kl_divergence(params, model.priors), expected, rtol=1e-12)


def test_closed_form_with_a_mixture_prior_is_an_error():
    model, params = model_and_params(bayes=Bayes(prior=priors.scale_mixture(pi=0.5, sigma1=0.1, sigma2=0.4)))
    with pytest.raises(FblitzValueError, match=r"closed_form' is impossible for '0.bias'"):
        kl_divergence(params, model.priors, mode="closed_form")


def test_monte_carlo_needs_eps():
    model, params = model_and_params(bayes=Bayes(prior=priors.scale_mixture(pi=0.5, sigma1=0.1, sigma2=0.4)))
    with pytest.raises(FblitzValueError, match="eps is required"):
        kl_divergence(params, model.priors)


def test_unknown_mode_is_rejected():
    model, params = model_and_params()
    with pytest.raises(FblitzValueError, match="kl_mode must be one of"):
        kl_divergence(params, model.priors, mode="exact")


def test_priors_tree_must_match():
    model, params = model_and_params()
    with pytest.raises(FblitzValueError, match="priors must follow the structure"):
        kl_divergence(params, {"0": model.priors["0"]})
    with pytest.raises(FblitzTypeError, match="must be a fblitz prior"):
        kl_divergence(params, {**model.priors, "0": {"weight": 0.1, "bias": 0.1}})


def test_monte_carlo_estimate_is_unbiased_for_the_closed_form():
    # Mean of 4000 single-draw estimates vs the exact KL, within 5 standard errors.
    model, params = model_and_params(bayes=Bayes(rho_init=-2.0))
    plan_mc = make_plan(params, model.priors, "monte_carlo")
    eps = sample_eps(3, params, 4000)
    estimates = torch.vmap(lambda e: monte_carlo_kl(plan_mc, params, e))(eps)
    exact = float(kl_divergence(params, model.priors, mode="closed_form"))
    standard_error = float(estimates.std()) / math.sqrt(len(estimates))
    assert abs(float(estimates.mean()) - exact) < 5 * standard_error


def test_auto_mixes_estimators_per_tensor():
    mixture = priors.scale_mixture(0.5, 1.0, 0.01)
    params = {
        "a": {"mu": torch.zeros(3, dtype=torch.float64), "rho": torch.zeros(3, dtype=torch.float64)},
        "b": {"mu": torch.ones(2, dtype=torch.float64), "rho": torch.zeros(2, dtype=torch.float64)},
    }
    tree = {"a": priors.gaussian(1.0), "b": mixture}
    plan = make_plan(params, tree, "auto")
    assert [p for p, _ in plan.closed_form] == [("a",)] and [p for p, _ in plan.monte_carlo] == [("b",)]
    eps = sample_eps(0, params)
    total = kl_divergence(params, tree, eps)
    assert torch.allclose(total, closed_form_kl(plan, params) + monte_carlo_kl(plan, params, eps))


def test_kl_follows_the_params_dtype():
    model, params = model_and_params()
    assert kl_divergence(params, model.priors).dtype == torch.float64
    empty = make_plan({}, {}, "auto")
    assert closed_form_kl(empty, params).dtype == torch.float64
