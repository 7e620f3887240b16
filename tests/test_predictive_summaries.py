"""Predictive summaries against hand-computed values: the mean is over all draws, not one.

A predictive mean that returned one draw, or a spread that forgot the
epistemic (between-draw) or the aleatoric (noise) part, differs from these
numbers by far more than rounding.
"""

import math

import torch
import torch.nn.functional as F

from fblitz.predict import gaussian_mixture_mean_std, mfvi_forward, predict, predictive_mean_std
from tests.helpers import mlp, randn

f64 = torch.float64


def test_mean_and_std_over_the_draws():
    samples = torch.tensor([[1.0, -2.0], [2.0, 0.0], [3.0, 2.0], [10.0, 4.0]], dtype=f64)  # (S=4, B=2)
    mean, std = predictive_mean_std(samples)
    torch.testing.assert_close(mean, torch.tensor([4.0, 1.0], dtype=f64), rtol=0, atol=0)
    # unbiased: sum of squared deviations / (S - 1) = (9 + 4 + 1 + 36) / 3 and (9 + 1 + 1 + 9) / 3
    torch.testing.assert_close(std, torch.tensor([math.sqrt(50 / 3), math.sqrt(20 / 3)], dtype=f64))
    _, population = predictive_mean_std(samples, unbiased=False)
    torch.testing.assert_close(population, torch.tensor([math.sqrt(50 / 4), math.sqrt(20 / 4)], dtype=f64))


def test_mfvi_forward_summarises_every_draw_of_the_model():
    model = mlp(3, 5, 2, posterior_rho_init=-1.0)
    params = model.init(0, dtype=f64)
    x = randn(1, 4, 3, dtype=f64)
    draws = predict(model, params, x, key=2, n_samples=6)
    assert all(not torch.equal(draws[0], draws[i]) for i in range(1, 6))
    mean, std = mfvi_forward(model, params, x, key=2, sample_nbr=6)
    torch.testing.assert_close(mean, sum(draws[i] for i in range(6)) / 6, rtol=1e-12, atol=1e-12)
    deviations = sum((draws[i] - mean).square() for i in range(6))
    torch.testing.assert_close(std, (deviations / 5).sqrt(), rtol=1e-12, atol=1e-12)


def test_gaussian_mixture_adds_the_spread_of_the_means_to_the_mean_noise_variance():
    means = torch.tensor([[0.0], [2.0], [4.0]], dtype=f64)  # (S=3, B=1, D=1)
    noise = torch.tensor([[0.5], [1.0], [2.0]], dtype=f64)
    raw = noise + torch.log(-torch.expm1(-noise))  # softplus(raw) = noise
    samples = torch.cat([means, raw], dim=-1).unsqueeze(1)  # (3, 1, 2)
    mean, std = gaussian_mixture_mean_std(samples, min_sigma=0.0)
    assert torch.allclose(F.softplus(raw), noise, rtol=1e-12)
    # law of total variance: Var = E[noise^2] + Var[means] = (0.25 + 1 + 4) / 3 + 8 / 3
    torch.testing.assert_close(mean, torch.tensor([[2.0]], dtype=f64), rtol=0, atol=1e-15)
    torch.testing.assert_close(std, torch.tensor([[math.sqrt(5.25 / 3 + 8 / 3)]], dtype=f64), rtol=1e-12, atol=0)
