"""BLiTZ's rho gradient with sample_nbr > 1 is wrong; fblitz.compat's is right (see docs/guides/porting.md).

With a KL-only loss on a 200 x 200 BayesianLinear (BLiTZ's default N(0, 0.1^2)
prior, rho ~ N(-7, 0.1^2)), the mean of d loss / d rho over the weights is,
per weight, d KL / d rho = (sigma / sigma_p^2 - 1 / sigma) * sigmoid(rho) in
closed form: about -0.9995. The Monte Carlo KL estimate log q(w) - log p(w)
at w = mu + sigma * eps has that expectation whatever the number of samples.
BLiTZ's ``sample_elbo`` with 3 samples gives about -1/3: its sampler refills
its noise buffer ``eps_w`` in place at every draw, and autograd, which saved
that buffer for ``sigma * eps_w``, differentiates every sample with the
*last* draw's noise. In log q the path terms of the earlier samples then no
longer cancel (-eps_k eps_last + eps_k^2 in place of 0, +1 / sigma on average),
so only the last sample's -1 / sigma survives the average of 3.
"""

import pytest
import torch

from fblitz.distributions import sigma
from tests.helpers import randn

SIZE, SAMPLES = 200, 3


def _mean_rho_gradient(modules, utils, seed=0):
    @utils.variational_estimator
    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = modules.BayesianLinear(SIZE, SIZE)

        def forward(self, x):
            return self.linear(x)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Layer()
        x = randn(1, 4, SIZE)
        loss = model.sample_elbo(x, torch.zeros(4, SIZE), lambda out, y: (out * 0).sum(), SAMPLES, 1.0)
        loss.backward()
    # BLiTZ's forward pass uses its sampler's copy of rho (a second Parameter on the same storage)
    sampler = getattr(model.linear, "weight_sampler", None)
    rho = model.linear.weight_rho if sampler is None else sampler.rho
    closed_form = (sigma(rho) / 0.1**2 - 1 / sigma(rho)) * torch.sigmoid(rho)
    return float(rho.grad.mean()), float(closed_form.mean().detach())


def test_compat_rho_gradient_is_the_closed_form():
    from fblitz.compat import modules, utils

    got, exact = _mean_rho_gradient(modules, utils)
    assert exact == pytest.approx(-0.9995, abs=2e-4)
    # the path derivative of log q is exactly -1 / sigma; the prior's part averages out over 40000 weights
    assert got == pytest.approx(exact, abs=2e-3)


def test_blitz_rho_gradient_is_a_third_of_it_with_three_samples():
    modules = pytest.importorskip("blitz.modules")
    utils = pytest.importorskip("blitz.utils")
    got, exact = _mean_rho_gradient(modules, utils)
    # per weight (1/3) * (-3 + sum_{k<3} (eps_k^2 - eps_k eps_3)) in units of sigmoid(rho) / sigma: mean -1/3,
    # variance below 1 per weight, so a standard error below 0.005 over 40000 weights; 0.03 is 6 of them
    assert got == pytest.approx(exact / SAMPLES, abs=0.03)
    assert abs(got - exact) > 0.6
