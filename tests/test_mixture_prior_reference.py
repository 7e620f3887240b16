"""The scale-mixture prior inside the KL, against ``torch.distributions``.

The Monte Carlo KL of a layer with Blundell's prior is ``log q(w) - log p(w)``
at the sampled weights, with p = pi N(0, s1^2) + (1 - pi) N(0, s2^2). An
asymmetric pi (0.2 and 0.8 give different numbers) and two very different
scales make a swap of pi and 1 - pi, or of the scales, change the KL by far
more than rounding.
"""

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from fblitz import layers
from fblitz.distributions import sigma
from fblitz.kl import kl_divergence
from fblitz.layers import sample_noise

f64 = torch.float64


def torch_mixture(pi, s1, s2):
    components = Normal(torch.zeros(2, dtype=f64), torch.tensor([s1, s2], dtype=f64))
    return MixtureSameFamily(Categorical(probs=torch.tensor([pi, 1 - pi], dtype=f64)), components)


@pytest.mark.parametrize("pi", [0.2, 0.8])
def test_monte_carlo_kl_of_a_mixture_prior_layer(pi):
    s1, s2 = 1.0, 0.01
    layer = layers.linear(6, 4, prior_pi=pi, prior_sigma_1=s1, prior_sigma_2=s2, posterior_rho_init=-4.0)
    params = layer.init(0, dtype=f64)
    eps = sample_noise(layer, 1, params)
    mixture = torch_mixture(pi, s1, s2)
    expected = torch.zeros((), dtype=f64)
    for name, node in params.items():
        scale = sigma(node["rho"])
        w = node["mu"] + scale * eps[name]
        expected = expected + (Normal(node["mu"], scale).log_prob(w) - mixture.log_prob(w)).sum()
    got = kl_divergence(params, layer.priors, eps, mode="monte_carlo")
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert layer.priors["weight"].log_prob(torch.tensor([0.5], dtype=f64)).item() == pytest.approx(
        mixture.log_prob(torch.tensor([0.5], dtype=f64)).item(), rel=1e-12
    )
