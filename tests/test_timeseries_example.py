import json
import math

import pytest
import torch

from fblitz.examples import timeseries
from fblitz.random import Key
from fblitz.tree import map_gaussian


def test_series_is_reproducible_from_its_key():
    a, b = timeseries.make_series(3, 100), timeseries.make_series(3, 100)
    assert a.shape == (100,) and torch.equal(a, b)
    assert not torch.equal(a, timeseries.make_series(4, 100))


def test_windows_are_relative_to_the_last_value():
    series = torch.arange(10.0) ** 2
    inputs, targets, last = timeseries.make_windows(series, 3, scale=2.0)
    assert inputs.shape == (7, 3, 1) and targets.shape == (7, 1) and last.shape == (7, 1)
    torch.testing.assert_close(inputs[:, -1, 0], torch.zeros(7))
    torch.testing.assert_close(targets * 2.0 + last, series[3:].unsqueeze(1))
    torch.testing.assert_close(inputs[:, 0, 0] * 2.0 + last[:, 0], series[:7])


def test_short_run_reports_metrics_and_the_loss_decreases(capsys):
    argv = ["--length", "300", "--window", "8", "--hidden", "4", "--epochs", "3", "--eval-samples", "10"]
    scores = timeseries.main(argv + ["--json", "--report-every", "0"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == pytest.approx(scores)
    assert scores["final_loss"] < scores["first_loss"]
    assert scores["train_windows"] == 232 and scores["test_windows"] == 60
    # the naive forecast's error, from the series itself: the one-step changes of the last 60 targets
    series = timeseries.make_series(Key(0).split(4)[0], 300)
    assert scores["naive_rmse"] == pytest.approx(float(series.diff()[-60:].square().mean().sqrt()), rel=1e-5)
    assert scores["rmse"] < 1.05 * scores["naive_rmse"]  # three epochs already match "tomorrow = today"
    for key in ("rmse", "nll", "coverage", "mean_interval_width", "naive_rmse", "train_seconds"):
        assert key in scores
    assert 0 <= scores["coverage"] <= 1 and scores["mean_interval_width"] > 0


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        timeseries.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--epochs", "--samples", "--seed", "--threads", "--window", "--json"):
        assert option in out


def test_evaluate_scores_a_known_predictive_in_series_units():
    # weights with sigma ~ 1e-13 and a zero head: every draw forecasts "no change" with noise sigma 0.5,
    # so each score has a closed form in the series' units (scale 3: the windows were divided by it)
    model = timeseries.build_model(3)
    params = map_gaussian(
        lambda node: {"mu": torch.zeros_like(node["mu"]), "rho": torch.full_like(node["mu"], -30.0)},
        model.init(0, dtype=torch.float64),
        otherwise=lambda leaf: leaf,  # the learned noise scale, 0.5
    )
    x = torch.linspace(-1, 1, 5 * 4 * 1, dtype=torch.float64).reshape(5, 4, 1)
    y = torch.tensor([[-2.0], [-0.5], [0.2], [0.9], [1.5]], dtype=torch.float64)
    scores = timeseries.evaluate(model, params, x, y, key=Key(1), n_samples=4, std_multiplier=2.0, scale=3.0)
    std, targets = 3.0 * (0.5 + 1e-6), 3.0 * y  # learned noise plus the mixture's floor 1e-6
    assert scores["rmse"] == pytest.approx(float(targets.square().mean().sqrt()), rel=1e-9)
    assert scores["naive_rmse"] == pytest.approx(scores["rmse"], rel=1e-9)
    assert scores["coverage"] == pytest.approx(3 / 5)  # |3 y| <= 2 * 1.5 for -0.5, 0.2, 0.9
    assert scores["mean_interval_width"] == pytest.approx(4 * std, rel=1e-9)
    nll = 0.5 * math.log(2 * math.pi * std**2) + targets.square().mean() / (2 * std**2)
    assert scores["nll"] == pytest.approx(float(nll), rel=1e-9)
