"""How the output noise of each estimator scales with the posterior sigma.

For a layer linear in its weights, ``out - out(means)`` is ``op(x, sigma_w * eps_w) + sigma_b * eps_b``
under weight sampling, ``sqrt(op(x^2, sigma_w^2, sigma_b^2)) * z`` under local
reparameterization and a sign-flipped ``op(x, sigma_w * eps_w)`` plus the bias noise
under Flipout: in every case exactly proportional to sigma when the noise is held
fixed. A layer that put sigma where sigma^2 belongs (local reparameterization's
variance) scales as sqrt(sigma) instead; the exact test below catches that at
any noise level, where the zero-noise and vmap-versus-loop contract tests
cannot.

The second test is statistical: the variance of local reparameterization's
activations against the variance of outputs from explicitly sampled weights,
with sigma = 0.05 so that sigma and sigma^2 differ twentyfold and the
tolerance (10%, seven standard errors of 20 000 draws each) separates them.
"""

import pytest
import torch
from torch.func import vmap

from fblitz import layers
from fblitz.distributions import inverse_softplus, sigma
from fblitz.estimators import ESTIMATORS
from fblitz.layers import sample_noise
from fblitz.random import normal
from fblitz.tree import map_gaussian, tree_map
from tests.helpers import randn

f64 = torch.float64

LAYERS = [
    (lambda: layers.linear(4, 3, posterior_rho_init=-1.0), (5, 4)),
    (lambda: layers.conv1d(2, 3, 3, padding=1, posterior_rho_init=-1.0), (2, 2, 6)),
    (lambda: layers.conv2d(2, 3, 2, stride=2, posterior_rho_init=-1.0), (3, 2, 4, 4)),
    (lambda: layers.conv_transpose2d(3, 2, 2, posterior_rho_init=-1.0), (2, 3, 3, 3)),
]


def scale_sigma(params, factor):
    """The params with every sigma multiplied by ``factor`` (means unchanged)."""
    return map_gaussian(lambda node: {"mu": node["mu"], "rho": inverse_softplus(factor * sigma(node["rho"]))}, params)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("make, shape", LAYERS, ids=["linear", "conv1d", "conv2d", "conv_transpose2d"])
def test_output_noise_is_proportional_to_sigma(make, shape, estimator):
    layer = make()
    params = layer.init(0, dtype=f64)
    x = 2.0 * randn(1, *shape, dtype=f64)  # |x| far from 1, so x and x^2 differ too
    eps = tree_map(lambda t: t[0], sample_noise(layer, 2, params, 1, estimator=estimator))
    mean = layer.apply(params, x, None)
    noise = layer.apply(params, x, eps) - mean
    assert float(noise.abs().min()) > 0
    for factor in (0.25, 3.0):
        scaled = layer.apply(scale_sigma(params, factor), x, eps) - mean
        torch.testing.assert_close(scaled, factor * noise, rtol=1e-9, atol=1e-12)


def test_local_reparameterization_variance_is_the_variance_of_sampled_weights():
    n = 20_000
    layer = layers.linear(3, 2, posterior_rho_init=float(inverse_softplus(torch.tensor(0.05, dtype=f64))))
    params = layer.init(3, dtype=f64)
    x = torch.tensor([[2.0, -3.0, 0.5], [0.3, 0.2, 4.0]], dtype=f64)
    eps = sample_noise(layer, 4, params, n, estimator="local_reparameterization")
    activations = vmap(layer.apply, in_dims=(None, None, 0))(params, x, eps)  # (n, 2, 2)

    w, b = params["weight"], params["bias"]
    weights = w["mu"] + sigma(w["rho"]) * normal(5, (n, *w["mu"].shape), dtype=f64)
    biases = b["mu"] + sigma(b["rho"]) * normal(6, (n, *b["mu"].shape), dtype=f64)
    sampled = torch.einsum("soi,bi->sbo", weights, x) + biases[:, None, :]

    mean_z = (activations.mean(0) - sampled.mean(0)) / ((activations.var(0) + sampled.var(0)) / n).sqrt()
    assert float(mean_z.abs().max()) < 5, mean_z
    ratio = activations.var(0) / sampled.var(0)
    assert float((ratio - 1).abs().max()) < 0.1, ratio
