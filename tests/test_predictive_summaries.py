"""Predictive summaries against hand-computed values: the mean is over all draws, not one.

A predictive mean that returned one draw, or a spread that forgot the
epistemic (between-draw) or the aleatoric (noise) part, differs from these
numbers by far more than rounding.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from fblitz.errors import FblitzValueError, NonFiniteError
from fblitz.prediction import gaussian_mixture_mean_std, mfvi_forward, predict, predictive_mean_std
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


def test_gaussian_mixture_per_row_and_output_with_a_noise_floor():
    # S = 2 draws, B = 2 rows, D = 3 outputs; the floor min_sigma is added to every noise scale
    means = torch.tensor([[[0.0, 1.0, 2.0], [4.0, 4.0, 4.0]], [[2.0, 1.0, -2.0], [4.0, 6.0, 8.0]]], dtype=f64)
    noise = torch.tensor([[[0.5, 0.1, 0.2], [0.3, 0.4, 0.5]], [[0.1, 0.3, 0.6], [0.7, 0.2, 0.5]]], dtype=f64)
    samples = torch.cat([means, noise + torch.log(-torch.expm1(-noise))], dim=-1)  # (2, 2, 6)
    mean, std = gaussian_mixture_mean_std(samples, min_sigma=0.1)
    torch.testing.assert_close(mean, means.mean(0), rtol=1e-12, atol=1e-12)
    between = means.var(0, unbiased=False)  # e.g. row 0, output 2: draws 2 and -2, variance 4
    torch.testing.assert_close(std, (between + (noise + 0.1).square().mean(0)).sqrt(), rtol=1e-12, atol=1e-12)
    # no batch axis: (S, 2D) is one row
    one_mean, one_std = gaussian_mixture_mean_std(samples[:, 0], min_sigma=0.1)
    torch.testing.assert_close(one_std, std[0], rtol=1e-12, atol=1e-12)
    with pytest.raises(FblitzValueError, match=r"\(S, \.\.\., 2 \* D\)"):
        gaussian_mixture_mean_std(samples[..., :5])
    with pytest.raises(FblitzValueError, match=r"\(S, \.\.\., 2 \* D\)"):
        gaussian_mixture_mean_std(samples[0, 0])


def test_mean_and_std_of_two_draws_of_scalars_and_overflow_named():
    mean, std = predictive_mean_std(torch.tensor([1.0, 3.0], dtype=f64))  # (S,) with S = 2
    assert float(mean) == 2.0 and float(std) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    with pytest.raises(NonFiniteError, match="^the predictive mean is not finite"):
        predictive_mean_std(torch.tensor([1e308, 1e308], dtype=f64))
    with pytest.raises(NonFiniteError, match="^the predictive std is not finite"):
        predictive_mean_std(torch.tensor([1e308, -1e308], dtype=f64))  # mean 0, squares overflow
