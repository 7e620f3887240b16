import pytest
import torch

from fblitz import layers, likelihoods
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.objectives import sample_elbo
from fblitz.priors import gaussian
from fblitz.variational.distributions import sigma
from fblitz.variational.kl import kl_divergence
from fblitz.variational.moped import CentredGaussianPrior, moped, recentre_priors
from tests.helpers import randn


def _module(factory):
    with torch.random.fork_rng():
        return factory()


@pytest.mark.parametrize(
    "make_layer, make_module",
    [
        (lambda: layers.linear(4, 3), lambda: torch.nn.Linear(4, 3)),
        (lambda: layers.conv2d(2, 3, 3), lambda: torch.nn.Conv2d(2, 3, 3)),
    ],
)
def test_moped_from_module_sets_means_and_sigmas(make_layer, make_module):
    layer, module = make_layer(), _module(make_module)
    params = moped(layer.init(0), module, delta=0.2)
    for name, w in module.state_dict().items():
        assert torch.equal(params[name]["mu"], w)
        torch.testing.assert_close(sigma(params[name]["rho"]), 0.2 * w.abs(), rtol=1e-5, atol=1e-12)


def test_moped_from_sequential_state_dict_and_tree_with_deterministic_leaves():
    model = layers.serial(layers.linear(3, 4), layers.relu, layers.linear(4, 1), layers.learned_noise(1))
    net = _module(lambda: torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)))
    params = model.init(0, dtype=torch.float64)
    from_dict = moped(params, net.state_dict(), delta=0.1)
    assert from_dict["2"]["weight"]["mu"].dtype == torch.float64
    torch.testing.assert_close(from_dict["2"]["weight"]["mu"], net[2].weight.detach().double())
    assert torch.equal(from_dict["3"]["noise_rho"], params["3"]["noise_rho"])  # deterministic leaf kept
    tree = {k: {n: from_dict[k][n]["mu"] for n in ("weight", "bias")} for k in ("0", "2")}
    again = moped(params, {**tree, "1": {}, "3": {}}, delta=0.1)
    assert torch.equal(again["0"]["weight"]["rho"], from_dict["0"]["weight"]["rho"])
    # the model with zero noise is the deterministic network
    x = randn(1, 5, 3, dtype=torch.float64)
    out = model.apply(from_dict, x, None)[..., :1]
    torch.testing.assert_close(out, net.double()(x))


def test_moped_zero_weight_gets_min_sigma_and_errors_are_clear():
    layer = layers.linear(2, 1, bias=False)
    params = moped(layer.init(0), {"weight": torch.tensor([[0.0, 1.0]])}, delta=0.5, min_sigma=1e-6)
    torch.testing.assert_close(sigma(params["weight"]["rho"]), torch.tensor([[1e-6, 0.5]]))
    with pytest.raises(FblitzValueError, match=r"no tensor for the Gaussian node\(s\) \['weight'\]"):
        moped(layer.init(0), {"bias": torch.zeros(1)})
    with pytest.raises(FblitzValueError, match="weights at 'weight' must have the shape"):
        moped(layer.init(0), {"weight": torch.zeros(2, 1)})
    with pytest.raises(FblitzTypeError, match="weights must be"):
        moped(layer.init(0), [torch.zeros(1, 2)])
    with pytest.raises(FblitzValueError, match="delta must be > 0"):
        moped(layer.init(0), {"weight": torch.zeros(1, 2)}, delta=0.0)


def test_recentred_prior_kl_is_zero_at_the_prior_and_matches_closed_form():
    layer = layers.linear(3, 2)
    w = {"weight": randn(2, 2, 3, dtype=torch.float64), "bias": randn(3, 2, dtype=torch.float64)}
    params = layer.init(0, dtype=torch.float64)
    model = recentre_priors(layer, params, w, prior_sigma=0.5)
    assert isinstance(model.priors["weight"], CentredGaussianPrior)
    at_prior = {
        n: {"mu": w[n], "rho": torch.full_like(w[n], float(torch.log(torch.expm1(torch.tensor(0.5)))))} for n in w
    }
    assert float(kl_divergence(at_prior, model.priors, mode="closed_form")) == pytest.approx(0.0, abs=1e-12)
    # against the zero-centred closed form after shifting the means
    shifted = {n: {"mu": params[n]["mu"] - w[n], "rho": params[n]["rho"]} for n in w}
    expected = kl_divergence(shifted, {n: gaussian(0.5) for n in w}, mode="closed_form")
    torch.testing.assert_close(kl_divergence(params, model.priors, mode="closed_form"), expected)
    x, y = randn(4, 6, 3, dtype=torch.float64), randn(5, 6, 2, dtype=torch.float64)
    terms = sample_elbo(model, params, 0, x, y, likelihood=likelihoods.gaussian(), n_samples=2, kl_mode="monte_carlo")
    assert torch.isfinite(terms.loss)
    log_p = model.priors["bias"].log_prob(w["bias"])
    torch.testing.assert_close(
        log_p,
        torch.full_like(
            log_p,
            -torch.log(torch.tensor(0.5, dtype=torch.float64)).item()
            - 0.5 * float(torch.log(torch.tensor(2 * torch.pi))),
        ),
    )


def test_recentring_keeps_the_radial_tag():
    from fblitz.variational.radial import RadialPrior

    layer = layers.linear(3, 2, bayes=layers.Bayes(posterior="radial"))
    params = layer.init(0)
    model = recentre_priors(layer, params, {n: params[n]["mu"] for n in params})
    assert isinstance(model.priors["weight"], RadialPrior)
    assert isinstance(model.priors["weight"].base, CentredGaussianPrior)
