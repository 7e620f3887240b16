"""Boundaries of the core math that the mutation run (tests/README.md) found untested.

Each test pins a behaviour a surviving mutant changed: a strict inequality
that must stay strict, a default argument, float64 arithmetic that must not
drop to float32, an error that names its argument.
"""

import math

import numpy as np
import pytest
import torch

from fblitz import layers, likelihoods, optim
from fblitz.distributions import gaussian_kl, gaussian_log_prob, inverse_softplus, log_sigma, sigma, student_t_log_prob
from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError
from fblitz.kl import kl_divergence, make_plan, monte_carlo_kl
from fblitz.layers import sample_noise
from fblitz.objectives import elbo_samples
from fblitz.priors import gaussian, scale_mixture
from fblitz.seeded import bits, normal, seeds, uniform
from fblitz.train import kl_weights, minibatch_weights
from fblitz.tree import tree_map

f64 = torch.float64


def test_inverse_softplus_needs_positive_floating_sigmas():
    torch.testing.assert_close(sigma(inverse_softplus(torch.tensor([1e-6, 0.5, 30.0], dtype=f64))),
                               torch.tensor([1e-6, 0.5, 30.0], dtype=f64), rtol=1e-12, atol=0)  # fmt: skip
    assert inverse_softplus(0.5).dtype == torch.get_default_dtype()
    with pytest.raises(FblitzValueError, match="sigma must be > 0"):
        inverse_softplus(torch.tensor([0.5, 0.0]))
    with pytest.raises(FblitzTypeError, match="sigma must be a floating-point tensor"):
        inverse_softplus(torch.tensor([1, 2]))


def test_gaussian_log_prob_in_float64_with_a_float_std_and_a_zero_std_refused():
    x = torch.tensor([-1.0, 0.3, 2.5], dtype=f64)
    expected = torch.distributions.Normal(torch.tensor(0.2, dtype=f64), torch.tensor(0.3, dtype=f64)).log_prob(x)
    got = gaussian_log_prob(x, 0.2, 0.3)  # log(0.3) taken in float64, not float32
    assert got.dtype == f64
    torch.testing.assert_close(got, expected, rtol=1e-14, atol=1e-14)
    with pytest.raises(FblitzValueError, match="std must be > 0 everywhere"):
        gaussian_log_prob(x, 0.0, torch.tensor([1.0, 0.0, 1.0], dtype=f64))


def test_kl_weighting_defaults_to_uniform_and_names_a_negative_weight():
    assert minibatch_weights(4) == [0.25] * 4
    assert kl_weights(8, 2) == [0.125, 0.125]
    with pytest.raises(FblitzValueError, match="complexity_cost_weight must be >= 0"):
        kl_weights(8, 2, complexity_cost_weight=-1.0)


def test_apply_updates_names_a_mismatched_update_tree():
    params = {"w": torch.zeros(2), "b": torch.zeros(1)}
    assert math.isclose(float(optim.apply_updates(params, {"w": torch.ones(2), "b": torch.ones(1)})["b"]), 1.0)
    with pytest.raises(FblitzValueError, match="updates must have the tree structure of params"):
        optim.apply_updates(params, {"w": torch.ones(2)})


def test_monte_carlo_kl_names_noise_of_the_wrong_shape_or_type():
    params = {"w": {"mu": torch.zeros(2, 3), "rho": torch.zeros(2, 3)}}
    priors = {"w": gaussian(1.0)}
    with pytest.raises(FblitzValueError, match=r"eps at 'w' must be a tensor of mu's shape \(2, 3\) .* got \(3,\)"):
        kl_divergence(params, priors, {"w": torch.zeros(3)}, mode="monte_carlo")
    with pytest.raises(FblitzValueError, match=r"eps at 'w' must be a tensor of mu's shape \(2, 3\) .* got 1\.5"):
        kl_divergence(params, priors, {"w": 1.5}, mode="monte_carlo")


def test_gaussian_prior_with_a_mean_and_overflows_named():
    prior = gaussian(0.5, mean=1.0)
    w = torch.tensor([-1.0, 0.5, 2.0], dtype=f64)
    expected = torch.distributions.Normal(torch.tensor(1.0, dtype=f64), torch.tensor(0.5, dtype=f64)).log_prob(w)
    torch.testing.assert_close(prior.log_prob(w), expected, rtol=1e-14, atol=1e-14)
    with pytest.raises(FblitzTypeError, match="w must be a floating-point tensor"):
        prior.log_prob(torch.tensor([1, 2]))
    with pytest.raises(NonFiniteError, match="the prior log_prob is not finite"):
        prior.log_prob(torch.tensor([1e30]))  # z^2 overflows float32
    with pytest.raises(NonFiniteError, match="the prior log_prob is not finite"):
        scale_mixture(0.5, 1.0, 0.1).log_prob(torch.tensor([1e30]))


def test_posterior_scale_underflow_is_named():
    rho = torch.tensor([0.0, -800.0], dtype=f64)  # softplus(-800) underflows to 0 in float64
    with pytest.raises(NonFiniteError, match="log_sigma is not finite"):
        log_sigma(rho)
    for scale in (sigma, log_sigma):
        with pytest.raises(FblitzTypeError, match="^rho must be a floating-point tensor"):
            scale(torch.tensor([1, 2]))
    with pytest.raises(NonFiniteError, match="the Gaussian KL is not finite"):
        gaussian_kl(torch.zeros(2, dtype=f64), rho, 0.0, 1.0)


def test_local_reparameterization_is_mean_plus_sd_times_the_seeded_normal_in_float64():
    # Kingma et al. (2015): out = x mu^T + b + sqrt(x^2 sigma^2 + sigma_b^2) z, z ~ N(0, 1) drawn from the seed
    layer = layers.linear(3, 2, posterior_rho_init=-1.0, estimator="local_reparameterization")
    params = layer.init(0, dtype=f64)
    x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.3, 3.0]], dtype=f64)
    e = {"seed": seeds(4, 1)[0]}
    w, b = params["weight"], params["bias"]
    mean = x @ w["mu"].T + b["mu"]
    sd = (x.square() @ sigma(w["rho"]).square().T + sigma(b["rho"]).square()).sqrt()
    torch.testing.assert_close(layer.apply(params, x, e), mean + sd * normal(e["seed"], (2, 2), dtype=f64),
                               rtol=1e-14, atol=1e-14)  # fmt: skip


def test_the_kl_of_a_model_mixing_closed_form_and_monte_carlo_priors():
    model = layers.serial(layers.linear(3, 2, prior_pi=0.5), layers.relu, layers.linear(2, 1))  # mixture, Gaussian
    params = model.init(0, dtype=f64)
    eps = sample_noise(model, 1, params, 2)
    x, y = torch.ones(4, 3, dtype=f64), torch.zeros(4, 1, dtype=f64)
    terms = elbo_samples(model, params, eps, x, y, likelihood=likelihoods.gaussian())
    for i in range(2):
        draw = tree_map(lambda t, i=i: t[i], eps)
        expected = kl_divergence(params, model.priors, draw)
        assert float(kl_divergence(params["2"], model.priors["2"])) > 0  # the closed-form part counts
        torch.testing.assert_close(terms.kl[i], expected, rtol=1e-12, atol=1e-12)


def _top_bits(words, width):
    return (words >> (64 - width)) & ((1 << width) - 1)  # logical shift of the int64 words


@pytest.mark.parametrize("dtype, width", [(torch.float32, 24), (torch.float64, 53)])
def test_uniform_is_the_top_bits_of_the_hash_centred_in_their_cell(dtype, width):
    # the definition in fblitz.seeded.uniform: (top `width` bits + 1/2) / 2^width, never 0 or 1
    seed = seeds(5, 1)[0]
    expected = (_top_bits(bits(seed, (1000,)), width).double() + 0.5) * 2.0**-width
    got = uniform(seed, (1000,), dtype=dtype)
    assert got.dtype == dtype and 0 < float(got.min()) and float(got.max()) < 1
    # exact where the float holds the centre: everywhere in float64, below 1/2 in float32; above 1/2
    # float32 rounds the centre to a neighbour, half a cell (2^-25) away
    below = expected < 0.5
    assert torch.equal(got.double()[below], expected[below])
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=2.0**-25 if dtype == torch.float32 else 0.0)
    assert uniform(seed, (3,), dtype=torch.bfloat16).dtype == torch.bfloat16


def test_normal_is_box_muller_on_the_two_halves_of_the_hash_in_float64():
    # the definition in fblitz.seeded.normal: radius from the high 32 bits (centred), angle from the low 32
    seed = seeds(6, 1)[0]
    words = bits(seed, (1000,))
    u1 = (_top_bits(words, 32).double() + 0.5) * 2.0**-32
    u2 = (words & 0xFFFFFFFF).double() * 2.0**-32
    expected = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    torch.testing.assert_close(normal(seed, (1000,), dtype=f64), expected, rtol=1e-14, atol=1e-14)
    assert normal(seed, (3,), dtype=torch.bfloat16).dtype == torch.bfloat16


def test_apply_updates_checks_each_leaf_against_params():
    params = {"w": torch.zeros(2), "b": torch.zeros(1)}
    with pytest.raises(FblitzValueError, match=r"updates leaf 1 must match params: \(2,\) torch.float32, got \(1,\)"):
        optim.apply_updates(params, {"w": torch.ones(1), "b": torch.ones(1)})
    with pytest.raises(FblitzTypeError, match="params must hold floating-point tensors"):
        optim.apply_updates({"w": torch.zeros(2, dtype=torch.int64)}, {"w": torch.ones(2)})


def test_a_plan_without_monte_carlo_tensors_gives_a_zero_of_the_params_dtype():
    params = {"w": {"mu": torch.zeros(2, dtype=f64), "rho": torch.zeros(2, dtype=f64)}}
    plan = make_plan(params, {"w": gaussian(1.0)}, "closed_form")
    zero = monte_carlo_kl(plan, params, {"w": torch.zeros(2, dtype=f64)})
    assert zero.dtype == f64 and float(zero) == 0.0


def test_prior_arguments_are_stored_as_floats_and_named_in_errors():
    mixture, single = scale_mixture(1, np.float32(2.0), 3), gaussian(np.float64(0.5), 1)
    for value in (mixture.pi, mixture.sigma1, mixture.sigma2, single.sigma, single.mean):
        assert type(value) is float
    assert repr(mixture) == "ScaleMixturePrior(pi=1.0, sigma1=2.0, sigma2=3.0)"
    for make, message in [
        (lambda: scale_mixture(1.5), r"^pi must lie in \[0, 1\]"),
        (lambda: scale_mixture(0.5, 0.0), "^sigma1 must be > 0"),
        (lambda: scale_mixture(0.5, 1.0, -1.0), "^sigma2 must be > 0"),
        (lambda: gaussian(0.0), "^sigma must be > 0"),
        (lambda: gaussian(1.0, float("inf")), "^mean must be finite"),
    ]:
        with pytest.raises(FblitzValueError, match=message):
            make()


def test_student_t_refuses_a_zero_scale_or_df_tensor():
    x = torch.zeros(2, dtype=f64)
    for name in ("scale", "df"):
        arguments = {"scale": torch.ones(2, dtype=f64), "df": torch.full((2,), 3.0, dtype=f64)}
        arguments[name] = torch.tensor([1.0, 0.0], dtype=f64)
        with pytest.raises(FblitzValueError, match=f"^{name} must be > 0 everywhere"):
            student_t_log_prob(x, 0.0, **arguments)
    with pytest.raises(FblitzValueError, match="^scale must be > 0"):
        student_t_log_prob(x, 0.0, 0.0, 3.0)
    with pytest.raises(FblitzValueError, match="^df must be > 0"):
        student_t_log_prob(x, 0.0, 1.0, -1.0)
