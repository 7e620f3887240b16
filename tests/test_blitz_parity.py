"""fblitz against BLiTZ itself (``blitz-bayesian-pytorch``), on the same weights and noise.

Skipped when BLiTZ is not installed. BLiTZ draws its noise from the global RNG
inside each forward pass; the draws are recorded and replayed in fblitz, and
the global RNG is restored afterwards.
"""

import pytest
import torch
import torch.nn as nn

from fblitz import likelihoods, priors
from fblitz.layers import Bayes
from fblitz.objectives import negative_elbo
from fblitz.variational.kl import kl_divergence
from tests import blitz_reference
from tests.helpers import mlp, randn

blitz_modules = pytest.importorskip("blitz.modules")
blitz_sampler = pytest.importorskip("blitz.modules.weight_sampler")
blitz_utils = pytest.importorskip("blitz.utils")


def build_pair(prior_pi):
    ours = mlp(3, 5, 2, bayes=Bayes(prior=priors.scale_mixture(pi=prior_pi, sigma1=0.1, sigma2=0.4), rho_init=-3.0))
    params = ours.init(0, dtype=torch.float64)

    @blitz_utils.variational_estimator
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = blitz_modules.BayesianLinear(3, 5, prior_pi=prior_pi)
            self.second = blitz_modules.BayesianLinear(5, 2, prior_pi=prior_pi)

        def forward(self, x):
            return self.second(torch.relu(self.first(x)))

    with torch.random.fork_rng():  # BLiTZ initialises from the global RNG
        theirs = Net().double()
    # BLiTZ holds each mu/rho twice (``weight_mu`` and ``weight_sampler.mu``);
    # ``.double()`` unties the two, and forward uses the sampler's copies.
    with torch.no_grad():
        for layer, key in ((theirs.first, "0"), (theirs.second, "2")):
            for name in ("weight", "bias"):
                for owner in (layer, getattr(layer, f"{name}_sampler")):
                    prefix = f"{name}_" if owner is layer else ""
                    getattr(owner, f"{prefix}mu").copy_(params[key][name]["mu"])
                    getattr(owner, f"{prefix}rho").copy_(params[key][name]["rho"])
    return ours, params, theirs


def record_noise(monkeypatch, net):
    """Record BLiTZ's eps draws: {(layer, name): [eps per forward]}."""
    draws = blitz_reference.record_draws(monkeypatch)

    def eps_tree():
        tree = {"1": {}}
        for layer, key in ((net.first, "0"), (net.second, "2")):
            tree[key] = {
                "weight": torch.stack(draws[id(layer.weight_sampler)]),
                "bias": torch.stack(draws[id(layer.bias_sampler)]),
            }
        return tree

    return eps_tree


# BLiTZ adds 1e-6 to the prior density before the log; for weights within a few
# prior sigmas of zero that shifts the KL by well under 1e-5 of its value.
RTOL = 1e-5


@pytest.mark.parametrize("prior_pi", [1.0, 0.5])
def test_kl_equals_blitz_on_the_same_noise(monkeypatch, prior_pi):
    ours, params, theirs = build_pair(prior_pi)
    eps_tree = record_noise(monkeypatch, theirs)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs(randn(0, 4, 3, dtype=torch.float64))
        blitz_kl = theirs.nn_kl_divergence()
    eps = {k: ({n: e[0] for n, e in v.items()} if v else {}) for k, v in eps_tree().items()}
    our_kl = kl_divergence(params, ours.priors, eps, mode="monte_carlo")
    assert torch.allclose(our_kl, blitz_kl.detach(), rtol=RTOL)


@pytest.mark.parametrize("prior_pi", [1.0, 0.5])
def test_sample_elbo_equals_blitz_on_the_same_noise(monkeypatch, prior_pi):
    ours, params, theirs = build_pair(prior_pi)
    eps_tree = record_noise(monkeypatch, theirs)
    x, y = randn(1, 8, 3, dtype=torch.float64), randn(2, 8, 2, dtype=torch.float64)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        blitz_loss = theirs.sample_elbo(
            inputs=x, labels=y, criterion=nn.MSELoss(), sample_nbr=4, complexity_cost_weight=1 / 8
        )
    terms = negative_elbo(
        ours,
        params,
        eps_tree(),
        x,
        y,
        likelihood=likelihoods.criterion(nn.MSELoss()),
        complexity_cost_weight=1 / 8,
        kl_mode="monte_carlo",
    )
    assert torch.allclose(terms.loss, blitz_loss.detach(), rtol=RTOL)


def test_frozen_prediction_equals_blitz_frozen():
    ours, params, theirs = build_pair(1.0)
    theirs.freeze_()
    x = randn(3, 6, 3, dtype=torch.float64)
    assert torch.allclose(ours.apply(params, x, None), theirs(x).detach(), rtol=1e-12)
