import json

import pytest
import torch

from fblitz import layers
from fblitz.examples import digits
from fblitz.examples._classification import evaluate
from fblitz.random import Key, uniform

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
    # and the probabilities beat the uniform predictor's NLL log(10) = 2.30 and Brier 0.9 (measured 1.85, 0.78)
    assert scores["nll"] < 2.1 and scores["brier"] < 0.85
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


def test_evaluate_scores_a_known_predictive_exactly():
    # a model whose every draw predicts the same probabilities p (weights 0, sigma ~ 1e-13, bias log p):
    # each score then has a closed form, and the entropy and mutual information are those of p
    p = torch.softmax(torch.tensor([2.0, 1.0, 0.5] + [0.0] * 7, dtype=torch.float64), dim=0)
    model = layers.serial(layers.flatten(), layers.linear(64, 10))
    weight, bias = torch.zeros(10, 64, dtype=torch.float64), p.log()
    params = {
        "0": {},
        "1": {name: {"mu": t, "rho": torch.full_like(t, -30.0)} for name, t in (("weight", weight), ("bias", bias))},
    }
    x = uniform(0, (40, 1, 8, 8), dtype=torch.float64)
    y = torch.arange(40) % 4  # classes 0..3, ten times each
    scores = evaluate(model, params, x, y, key=Key(1), n_samples=3)
    onehot = torch.nn.functional.one_hot(y, 10).double()
    entropy = float(-(p * p.log()).sum())
    assert scores["accuracy"] == pytest.approx(0.25)  # the argmax is class 0
    assert scores["nll"] == pytest.approx(float(-p.log()[y].mean()), rel=1e-9)
    assert scores["brier"] == pytest.approx(float((p - onehot).square().sum(dim=1).mean()), rel=1e-9)
    assert scores["ece"] == pytest.approx(abs(float(p.max()) - 0.25), rel=1e-9)  # one bin, confidence max p
    assert scores["entropy_test"] == pytest.approx(entropy, rel=1e-9)
    assert scores["entropy_ood"] == pytest.approx(entropy, rel=1e-9)
    assert abs(scores["mutual_information_test"]) < 1e-9 and abs(scores["mutual_information_ood"]) < 1e-9
    assert int(scores["reliability_bins"].count.max()) == 40  # every row in the bin of confidence max p
