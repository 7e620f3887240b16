"""Recalibrating a regression predictive's noise: ``with_noise_factor`` against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from fblitz import likelihoods
from fblitz.errors import FblitzValueError
from fblitz.predictive import GaussianMixture, StudentTMixture, from_draws
from tests.helpers import randn


def gaussian_draws(seed: int) -> torch.Tensor:
    """(S=6, B=40, 2) outputs: location and raw scale (softplus(raw) is the noise scale)."""
    return randn(seed, 6, 40, 2, dtype=torch.float64)


def test_the_gaussian_noise_scales_and_the_draws_stay():
    predictive = from_draws(gaussian_draws(0), likelihoods.heteroscedastic_gaussian(0.0))
    wider = predictive.with_noise_factor(2.5)
    assert isinstance(wider, GaussianMixture) and wider.draws is predictive.draws
    assert torch.equal(wider.locs, predictive.locs) and torch.allclose(wider.scales, 2.5 * predictive.scales)
    assert torch.equal(wider.mean, predictive.mean)
    assert torch.allclose(wider.epistemic_variance, predictive.epistemic_variance)
    assert torch.allclose(wider.aleatoric_variance, 6.25 * predictive.aleatoric_variance)
    # the log density, by hand: log (1/S) sum_s N(y; loc_s, (2.5 scale_s)^2)
    y = randn(1, 40, 1, dtype=torch.float64)
    locs, scales = predictive.locs, 2.5 * predictive.scales
    densities = torch.exp(-0.5 * ((y - locs) / scales) ** 2) / (scales * math.sqrt(2 * math.pi))
    assert torch.allclose(wider.log_prob(y), densities.mean(dim=0).log().squeeze(-1))


def test_one_wide_component_widens_its_interval_about_the_location():
    # a single draw: the interval is loc +/- z * scale, so it widens by exactly the factor
    draws = randn(2, 1, 30, 2, dtype=torch.float64)
    predictive = from_draws(draws, likelihoods.heteroscedastic_gaussian(0.0))
    lower, upper = predictive.interval(0.9)
    wide_lower, wide_upper = predictive.with_noise_factor(3.0).interval(0.9)
    loc = predictive.locs[0]
    assert torch.allclose(wide_upper - loc, 3.0 * (upper - loc), atol=1e-9)
    assert torch.allclose(loc - wide_lower, 3.0 * (loc - lower), atol=1e-9)


def test_the_student_t_keeps_its_degrees_of_freedom_and_key():
    draws = torch.cat([gaussian_draws(3), randn(4, 6, 40, 1, dtype=torch.float64)], dim=-1)
    predictive = from_draws(draws, likelihoods.student_t(), key=5)
    narrower = predictive.with_noise_factor(0.5)
    assert isinstance(narrower, StudentTMixture) and torch.equal(narrower.dfs, predictive.dfs)
    assert torch.allclose(narrower.scales, 0.5 * predictive.scales)
    # the same key: the samples are the old ones pulled towards their component's location by half
    old, new = predictive.sample(7, 3), narrower.sample(7, 3)
    locs = predictive.locs.repeat(3, 1, 1)
    assert torch.allclose(new - locs, 0.5 * (old - locs))


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan"), float("inf")])
def test_a_factor_that_is_not_positive_and_finite_is_refused(factor):
    predictive = from_draws(gaussian_draws(6), likelihoods.heteroscedastic_gaussian())
    with pytest.raises(FblitzValueError, match="factor must be"):
        predictive.with_noise_factor(factor)
