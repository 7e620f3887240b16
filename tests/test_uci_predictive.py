"""The UCI runner's scores of the library's predictive: PIT, coverage, log-likelihood, recalibration factor."""

import math

import pytest
import torch
import torch.nn.functional as F

from fblitz import metrics
from fblitz.errors import FblitzValueError
from fblitz.experiments import uci_model
from fblitz.experiments import uci_predictive as up
from fblitz.prediction import predict
from fblitz.predictive import GaussianMixture, StudentTMixture
from fblitz.random import Key, generator
from tests.helpers import randn


def mixture(locs: torch.Tensor, scales: torch.Tensor, dfs: torch.Tensor | None = None):
    """The library's predictive with these components (the locations stand in for the draws)."""
    if dfs is None:
        return GaussianMixture(locs, locs, scales)
    return StudentTMixture(locs, locs, scales, dfs, key=Key(99))


def test_the_runner_reads_the_predictive_in_original_units():
    # predictive_on: the library's mixture of the training likelihood, moved by the target's standardiser
    config = uci_model.Config(likelihood="student_t", eval_samples=7, compile=False)
    features, target = randn(0, 30, 2, dtype=torch.float64), 10.0 + 3.0 * randn(1, 30, 1, dtype=torch.float64)
    rows = torch.arange(30)
    trained = uci_model.train(features, target, rows, config._replace(epochs=1), key=2, kl_weight=1.0)
    predictive = uci_model.predictive_on(trained, features, rows[:5], config, key=3)
    x = trained.x_scaler.transform(features[:5]).float()
    outputs = predict(trained.model, trained.params, x, key=3, n_samples=7).double()
    y_scaler = trained.y_scaler
    assert isinstance(predictive, StudentTMixture) and predictive.locs.dtype == torch.float64
    assert torch.allclose(predictive.locs, y_scaler.mean + y_scaler.scale * outputs[..., :1])
    assert torch.allclose(predictive.scales, y_scaler.scale * (F.softplus(outputs[..., 1:2]) + up.MIN_SIGMA))
    assert torch.allclose(predictive.dfs, F.softplus(outputs[..., 2:]) + up.MIN_DF)
    config = config._replace(likelihood="gaussian")
    trained = uci_model.train(features, target, rows, config._replace(epochs=1), key=2, kl_weight=1.0)
    gaussian = uci_model.predictive_on(trained, features, rows[:5], config, key=3)
    outputs = predict(trained.model, trained.params, x, key=3, n_samples=7).double()
    assert isinstance(gaussian, GaussianMixture) and outputs.shape[-1] == 2
    assert torch.allclose(gaussian.scales, y_scaler.scale * (F.softplus(outputs[..., 1:2]) + up.MIN_SIGMA))


def test_gaussian_pit_coverage_matches_the_interval_of_one_component():
    mean, std = randn(1, 1, 400, 1, dtype=torch.float64), randn(17, 1, 400, 1, dtype=torch.float64).abs() + 0.5
    y = randn(2, 400, 1, dtype=torch.float64)
    values = up.pit(mixture(mean, std, None), y, key=0)
    for level in (0.5, 0.8, 0.9, 0.95):
        expected = metrics.interval_coverage(y, mean=mean[0], std=std[0], level=level)
        assert up.coverage(values, level) == expected


def mixture_draws(key: int, predictive, count: int) -> torch.Tensor:
    """Draws from the mixture by picking a component per draw: an independent sampler."""
    gen = generator(Key(key))
    n_components, n = predictive.locs.shape[:2]
    pick = torch.randint(n_components, (count, n), generator=gen)
    rows = torch.arange(n).expand(count, n)
    z = torch.randn(count, n, generator=gen, dtype=torch.float64)
    if isinstance(predictive, StudentTMixture):
        df = predictive.dfs[pick, rows, 0]
        z = z / torch.sqrt(2.0 * torch._standard_gamma(0.5 * df, generator=gen) / df)
    return (predictive.locs[pick, rows, 0] + predictive.scales[pick, rows, 0] * z).unsqueeze(-1)


@pytest.mark.parametrize("student_t", [False, True])
def test_targets_drawn_from_the_mixture_are_covered_at_the_nominal_rate(student_t):
    # 4000 targets from 20 components each: the PIT is uniform, so each coverage is its level
    # within 4 binomial standard errors (at most 4 * 0.5 / sqrt(4000) = 0.032)
    locs = randn(3, 20, 4000, 1, dtype=torch.float64)
    scales = 0.2 + torch.rand(20, 4000, 1, dtype=torch.float64, generator=generator(Key(4)))
    dfs = torch.full_like(locs, 3.0) if student_t else None
    predictive = mixture(locs, scales, dfs)
    y = mixture_draws(5, predictive, 1)[0]
    values = up.pit(predictive, y, key=6, draws=20)
    for level in (0.1, 0.5, 0.8, 0.9, 0.95):
        assert up.coverage(values, level) == pytest.approx(level, abs=4 * math.sqrt(level * (1 - level) / 4000))
    # and a predictive twice too wide over-covers at every level
    wide = up.pit(predictive.with_noise_factor(2.0), y, key=6, draws=20)
    assert all(up.coverage(wide, level) > level + 0.05 for level in (0.5, 0.8, 0.9))


def test_student_t_pit_estimates_the_exact_mixture_cdf():
    stats = pytest.importorskip("scipy.stats")
    locs, scales = randn(7, 10, 30, 1, dtype=torch.float64), torch.full((10, 30, 1), 0.7, dtype=torch.float64)
    dfs = 1.5 + 5 * torch.rand(10, 30, 1, dtype=torch.float64, generator=generator(Key(8)))
    y = randn(9, 30, 1, dtype=torch.float64)
    exact = stats.t.cdf(((y - locs) / scales).numpy(), dfs.numpy()).mean(axis=0)
    predictive = mixture(locs, scales, dfs)
    estimate = up.pit(predictive, y, key=10, draws=1000)
    # 10,000 draws per target: the estimate's standard error is at most 0.005
    assert abs(estimate.numpy() - exact).max() < 0.02
    assert torch.equal(estimate, up.pit(predictive, y, key=10, draws=1000))  # same key, same draws


def test_log_likelihood_uses_the_family_of_the_components():
    locs, scales = randn(11, 4, 6, 1, dtype=torch.float64), torch.full((4, 6, 1), 1.3, dtype=torch.float64)
    y = randn(12, 6, 1, dtype=torch.float64)
    gaussian = up.log_likelihood(mixture(locs, scales, None), y)
    assert gaussian == metrics.gaussian_mixture_log_likelihood(locs, scales, y)
    heavy = up.log_likelihood(mixture(locs, scales, torch.full_like(locs, 1e8)), y)
    assert heavy == pytest.approx(gaussian, abs=1e-6)


def test_noise_factor_is_the_maximum_likelihood_scale():
    # one N(0, 1) component per target, targets N(0, 2^2): the likelihood's maximiser is sqrt(mean(y^2))
    y = 2.0 * randn(13, 5000, 1, dtype=torch.float64)
    predictive = mixture(torch.zeros(1, 5000, 1, dtype=torch.float64), torch.ones(1, 5000, 1).double(), None)
    factor = up.fit_noise_factor(predictive, y)
    assert factor == pytest.approx(float(y.square().mean().sqrt()), rel=1e-4)
    assert up.log_likelihood(predictive.with_noise_factor(factor), y) > up.log_likelihood(predictive, y)
    with pytest.raises(FblitzValueError, match="bounds must be increasing"):
        up.fit_noise_factor(predictive, y, bounds=(2.0, 1.0))
    with pytest.raises(FblitzValueError, match="factor must be > 0"):
        predictive.with_noise_factor(0.0)


def test_score_reports_every_level_and_the_curve():
    locs, scales = randn(14, 8, 50, 1, dtype=torch.float64), torch.ones(8, 50, 1, dtype=torch.float64)
    y = randn(15, 50, 1, dtype=torch.float64)
    result = up.score(mixture(locs, scales, torch.full_like(locs, 5.0)), y, key=16, draws=10)
    assert {"rmse", "log_likelihood", "coverage_50", "coverage_80", "coverage_90", "coverage_95", "df"} <= set(result)
    curve = result["calibration"]
    assert curve.observed[9] == result["coverage_50"] and curve.observed[17] == result["coverage_90"]
    assert result["rmse"] == metrics.rmse(locs.mean(0), y) and result["df"] == 5.0
    with pytest.raises(FblitzValueError, match="level must lie strictly between 0 and 1"):
        up.coverage(torch.zeros(3, 1), 1.0)
