import json

import pytest
import torch

from fblitz.examples import timeseries


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
