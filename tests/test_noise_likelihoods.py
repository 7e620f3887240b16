"""Regression likelihoods with learned noise recover the noise that generated the data.

Learned homoscedastic noise (``layers.learned_noise`` + ``heteroscedastic_gaussian``)
must find the data's constant noise level; a network that predicts its own
noise scale (heteroscedastic) must find a noise level that grows with x.
Both fits use 2000 points, so the maximum-likelihood noise is within a few
percent of the truth and the tolerances below leave room for optimisation error.
"""

import torch
import torch.nn.functional as F

from fblitz import layers, likelihoods, optim, priors
from fblitz.training import fit
from tests.helpers import randn

N = 2000


def _fit(model, x, y, steps=150):
    params = model.init(0, dtype=torch.float64)
    return fit(
        model, params, x, y, likelihood=likelihoods.heteroscedastic_gaussian(), optimizer=optim.adam(0.1),
        key=1, epochs=steps, batch_size=N, n_samples=1, progress=False,
    ).params  # fmt: skip


def test_learned_homoscedastic_noise_recovers_the_noise_level():
    x = randn(0, N, 1, dtype=torch.float64)
    y = 2.0 * x - 1.0 + 0.3 * randn(1, N, 1, dtype=torch.float64)
    model = layers.serial(
        layers.linear(1, 1, bayes=layers.Bayes(prior=priors.gaussian(10.0), rho_init=-6.0)),
        layers.learned_noise(1, init_sigma=1.0),
    )
    params = _fit(model, x, y)
    sigma = float(F.softplus(params["1"]["noise_rho"]))
    assert abs(sigma - 0.3) < 0.3 * 0.06, sigma
    assert torch.allclose(params["0"]["weight"]["mu"], torch.tensor([[2.0]], dtype=torch.float64), atol=0.03)


def test_heteroscedastic_network_predicts_a_noise_level_that_follows_the_data():
    x = torch.rand(N, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    true_sigma = lambda t: 0.05 + 0.4 * t  # noqa: E731
    y = x + true_sigma(x) * randn(3, N, 1, dtype=torch.float64)
    # one Bayesian linear layer outputs [mean, raw scale]; softplus(raw) is the predicted noise
    model = layers.linear(1, 2, bayes=layers.Bayes(prior=priors.gaussian(10.0), rho_init=-6.0))
    params = _fit(model, x, y, steps=250)
    probe = torch.tensor([[0.2], [0.5], [0.8]], dtype=torch.float64)
    mean, raw = model.apply(params, probe, None).chunk(2, dim=-1)
    predicted = F.softplus(raw)
    assert torch.allclose(predicted, true_sigma(probe), rtol=0.15), predicted.squeeze().tolist()
    assert torch.allclose(mean, probe, atol=0.03)
    # a homoscedastic fit to the same data would have one level; this one triples across [0.2, 0.8]
    assert float(predicted[2] / predicted[0]) > 2.5
