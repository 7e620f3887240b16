import json

import pytest
import torch

from fblitz.examples import digits

pytest.importorskip("sklearn")


def test_data_split_and_scaling():
    x_train, y_train, x_test, y_test = digits.load_data()
    assert x_train.shape == (1347, 1, 8, 8) and x_test.shape == (450, 1, 8, 8)
    assert y_train.dtype == torch.int64 and set(y_train.unique().tolist()) == set(range(10))
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0


def test_short_run_learns_and_reports(capsys):
    scores = digits.main(
        ["--epochs", "3", "--train-rows", "320", "--eval-samples", "4", "--samples", "1", "--threads", "2", "--json"]
    )
    assert json.loads(capsys.readouterr().out) == pytest.approx(scores)
    assert scores["final_loss"] < scores["first_loss"]
    assert scores["accuracy"] > 0.3  # chance is 0.1; three short epochs on 320 images already do better
    for key in ("nll", "ece", "brier", "entropy_test", "entropy_ood", "mutual_information_test"):
        assert scores[key] >= 0
    assert 0 <= scores["ece"] <= 1


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        digits.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--epochs", "--samples", "--seed", "--threads", "--json"):
        assert option in out
