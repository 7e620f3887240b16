"""Hostile command lines: every invalid value is an argparse usage error (exit 2, one line naming the option)."""

import os
import subprocess
import sys

import pytest

from benchmarks import run as benchmarks_run
from fblitz.errors import FblitzValueError
from fblitz.examples import boston, boston_ddp, digits, mnist1d, timeseries, toy_regression
from fblitz.experiments import splits as splits_module
from fblitz.experiments import uci, uci_benchmark
from tests.hostile._expect import refuses, usage_error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# options every example shares (fblitz/examples/_cli.py), tried on each example
SHARED = {
    "epochs-zero": (["--epochs", "0"], "--epochs", ">= 1"),
    "epochs-float": (["--epochs", "1.5"], "--epochs", "'1.5'"),
    "epochs-huge-float": (["--epochs", "1e20"], "--epochs", "integer"),
    "samples-negative": (["--samples", "-3"], "--samples", ">= 1"),
    "eval-samples-one": (["--eval-samples", "1"], "--eval-samples", ">= 2"),
    "batch-size-zero": (["--batch-size", "0"], "--batch-size", ">= 1"),
    "lr-zero": (["--lr", "0"], "--lr", "> 0"),
    "lr-nan": (["--lr", "nan"], "--lr", "finite"),
    "lr-inf": (["--lr", "inf"], "--lr", "finite"),
    "lr-word": (["--lr", "fast"], "--lr", "'fast'"),
    "seed-negative": (["--seed", "-1"], "--seed", ">= 0"),
    "seed-beyond-64-bits": (["--seed", str(2**64)], "--seed", "<= 18446744073709551615"),
    "threads-zero": (["--threads", "0"], "--threads", ">= 1"),
}
EXAMPLES = {
    "boston": boston.main,
    "digits": digits.main,
    "mnist1d": mnist1d.main,
    "timeseries": timeseries.main,
    "toy_regression": toy_regression.main,
    "boston_ddp": boston_ddp.main,
}


@pytest.mark.parametrize("example", EXAMPLES.values(), ids=EXAMPLES.keys())
@pytest.mark.parametrize("case", SHARED.values(), ids=SHARED.keys())
def test_refuses_shared_option(capsys, example, case):
    argv, option, expected = case
    usage_error(example, argv, capsys, f"argument {option}", expected)


SPECIFIC = {
    "digits-train-rows": (digits.main, ["--train-rows", "0"], "--train-rows", ">= 1"),
    "digits-plot-dir": (digits.main, ["--plot", "/nonexistent-dir/r.png"], "--plot", "does not exist"),
    "digits-prior": (digits.main, ["--prior", "flat"], "--prior", "invalid choice"),
    "mnist1d-num-samples": (mnist1d.main, ["--num-samples", "5"], "--num-samples", ">= 10"),
    "mnist1d-width": (mnist1d.main, ["--width", "0"], "--width", ">= 1"),
    "mnist1d-rho-init": (mnist1d.main, ["--rho-init=-inf"], "--rho-init", "finite"),
    "mnist1d-model": (mnist1d.main, ["--model", "rnn"], "--model", "invalid choice"),
    "timeseries-length": (timeseries.main, ["--length", "2"], "--length", ">= 3"),
    "timeseries-noise": (timeseries.main, ["--noise", "-0.1"], "--noise", ">= 0"),
    "timeseries-window": (timeseries.main, ["--window", "0"], "--window", ">= 1"),
    "timeseries-window-too-long": (timeseries.main, ["--window", "2400"], "--window", "no training"),
    "timeseries-test-fraction-zero": (timeseries.main, ["--test-fraction", "0"], "--test-fraction", "> 0"),
    "timeseries-test-fraction-one": (timeseries.main, ["--test-fraction", "1"], "--test-fraction", "< 1"),
    "timeseries-hidden": (timeseries.main, ["--hidden", "0"], "--hidden", ">= 1"),
    "timeseries-std-multiplier": (timeseries.main, ["--std-multiplier", "0"], "--std-multiplier", "> 0"),
    "timeseries-report-every": (timeseries.main, ["--report-every", "-1"], "--report-every", ">= 0"),
    "toy-points": (toy_regression.main, ["--points", "1"], "--points", ">= 2"),
    "toy-prior-sigma": (toy_regression.main, ["--prior-sigma", "0"], "--prior-sigma", "> 0"),
    "toy-plot-is-directory": (toy_regression.main, ["--plot", "/tmp"], "--plot", "file path"),
    "boston-std-multiplier": (boston.main, ["--std-multiplier", "0"], "--std-multiplier", "> 0"),
    "boston-report-every": (boston.main, ["--report-every", "-1"], "--report-every", ">= 0"),
    "boston-kl-scale": (boston.main, ["--kl-scale", "-1"], "--kl-scale", ">= 0"),
    "boston-spread-keys": (boston.main, ["--spread-keys", "-2"], "--spread-keys", ">= 0"),
    "boston-likelihood": (boston.main, ["--likelihood", "student"], "--likelihood", "invalid choice"),
    "boston-activation": (boston.main, ["--activation", "tanh"], "--activation", "invalid choice"),
    "ddp-timeout": (boston_ddp.main, ["--timeout", "0"], "--timeout", "> 0"),
    "ddp-checkpoint-every": (boston_ddp.main, ["--checkpoint-every", "0"], "--checkpoint-every", ">= 1"),
    "ddp-checkpoint-dir": (boston_ddp.main, ["--checkpoint", "/nonexistent-dir/c.ckpt"], "--checkpoint", "exist"),
    "ddp-mode": (boston_ddp.main, ["--mode", "model"], "--mode", "invalid choice"),
}


@pytest.mark.parametrize("case", SPECIFIC.values(), ids=SPECIFIC.keys())
def test_refuses_example_option(capsys, case):
    main, argv, option, expected = case
    usage_error(main, argv, capsys, f"argument {option}", expected)


def _write_split(directory, k, train, test):
    (directory / f"index_train_{k}.txt").write_text("\n".join(str(i) for i in train))
    (directory / f"index_test_{k}.txt").write_text("\n".join(str(i) for i in test))


UCI = {
    "n-splits-zero": (["--n-splits", "0"], "--n-splits", ">= 1"),
    "first-split-negative": (["--first-split", "-1"], "--first-split", ">= 0"),
    "epochs-zero": (["--epochs", "0"], "--epochs", ">= 1"),
    "eval-samples-one": (["--eval-samples", "1"], "--eval-samples", ">= 2"),
    "lr-negative": (["--lr", "-0.1"], "--lr", "> 0"),
    "prior-sigma-zero": (["--prior-sigma", "0"], "--prior-sigma", "> 0"),
    "noise-init-nan": (["--noise-init", "nan"], "--noise-init", "finite"),
    "df-zero": (["--df", "0"], "--df", "> 0"),
    "df-init-one": (["--df-init", "1"], "--df-init", "> 1"),
    "coverage-draws-zero": (["--coverage-draws", "0"], "--coverage-draws", ">= 1"),
    "estimator-unknown": (["--estimator", "lrt"], "--estimator", "invalid choice"),
    "dataset-unknown": (["--dataset", "iris"], "--dataset", "invalid choice"),
    "splits-missing": (["--splits", "/nonexistent-dir"], "--splits", "existing directory"),
    "plot-dir-missing": (["--plot", "/nonexistent-dir/c.png"], "--plot", "does not exist"),
    "kl-weight-nan": (["--kl-weight", "1,nan"], "--kl-weight", ">= 0"),
    "kl-weight-empty": (["--kl-weight", ""], "--kl-weight", ">= 0"),
    "target-column-without-data": (["--target-column", "y"], "--target-column", "need --data"),
}


def test_refuses_more_splits_than_on_disk(capsys, tmp_path):
    _write_split(tmp_path, 0, range(400), range(400, 506))
    line = usage_error(uci.main, ["--splits", str(tmp_path), "--n-splits", "5"], capsys, "argument --n-splits", "1")
    assert "needs 5 splits" in line and "holds 1" in line
    usage_error(
        uci.main, ["--splits", str(tmp_path), "--n-splits", "1", "--first-split", "1"], capsys, "needs 2 splits"
    )


def test_refuses_a_splits_directory_without_split_files(capsys, tmp_path):
    usage_error(uci.main, ["--splits", str(tmp_path)], capsys, "argument --splits", "no index_train_K.txt")


def test_refuses_a_split_index_of_1e20_reporting_it_as_written(tmp_path):
    _write_split(tmp_path, 0, [0, 1, 1e20], [3, 4])
    message = refuses(lambda: splits_module.read_splits(tmp_path, 506), FblitzValueError, "index_train_0.txt")
    assert "1e+20" in message and "-9223372036854775808" not in message


@pytest.mark.parametrize("value", ["inf", "nan", "-3", "2.5"])
def test_refuses_other_bad_split_indices(tmp_path, value):
    _write_split(tmp_path, 0, [0, 1, value], [3, 4])
    refuses(lambda: splits_module.read_splits(tmp_path, 506), FblitzValueError, "index_train_0.txt")


def test_correct_as_many_splits_as_on_disk_is_accepted(tmp_path):
    for k in range(3):
        _write_split(tmp_path, k, range(k, 400), range(400, 506))
    args = uci.parse_args(["--splits", str(tmp_path), "--n-splits", "2", "--first-split", "1"])
    assert (args.n_splits, args.first_split) == (2, 1)
    assert len(splits_module.read_splits(tmp_path, 506)[1:3]) == 2


def test_correct_boundary_values_are_accepted():
    args = timeseries.parse_args(["--eval-samples", "2", "--seed", str(2**64 - 1), "--test-fraction", "0.5"])
    assert (args.eval_samples, args.seed, args.test_fraction) == (2, 2**64 - 1, 0.5)
    assert uci.parse_args(["--df-init", "1.5", "--threads", "1"]).df_init == 1.5


BENCHMARKS = {
    "threads-zero": (["--threads", "0"], "--threads", ">= 1"),
    "iters-zero": (["--iters", "0"], "--iters", ">= 1"),
    "warmup-negative": (["--warmup", "-1"], "--warmup", ">= 0"),
    "budget-zero": (["--budget", "0"], "--budget", "> 0"),
    "budget-nan": (["--budget", "nan"], "--budget", "finite"),
    "impls-unknown": (["--impls", "fblitz,loop"], "--impls", "['fblitz']"),
    "cases-match-nothing": (["--cases", "resnet"], "--cases", "matches no case"),
    "json-dir-missing": (["--json", "/nonexistent-dir/r.json"], "--json", "does not exist"),
}


UCI_BENCHMARK = {
    "verify-negative": (["--verify-split", "-1"], "--verify-split", ">= 0"),
    "verify-and-render": (["--verify-split", "1", "--render-only"], "--render-only", "not allowed with"),
    "splits-zero": (["--n-splits", "0"], "--n-splits", ">= 1"),
    "workers-zero": (["--workers", "0"], "--workers", ">= 1"),
}


# program -> its option cases (argv, option, what the message says)
PROGRAM_OPTIONS = {
    "uci": (uci.main, UCI),
    "benchmark": (benchmarks_run.main, BENCHMARKS),
    "uci_benchmark": (uci_benchmark.main, UCI_BENCHMARK),
}
OPTION_CASES = {
    f"{program}-{case}": (main, *cases[case]) for program, (main, cases) in PROGRAM_OPTIONS.items() for case in cases
}


@pytest.mark.parametrize("case", OPTION_CASES.values(), ids=OPTION_CASES.keys())
def test_refuses_program_option(capsys, case):
    main, argv, option, expected = case
    usage_error(main, argv, capsys, f"argument {option}", expected)


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "fblitz.examples.boston", "--epochs", "0"],
        ["-m", "fblitz.experiments.uci", "--n-splits", "x"],
        ["-m", "benchmarks.run", "--threads", "-2"],
    ],
    ids=["boston", "uci", "benchmarks"],
)
def test_refuses_from_the_shell_with_exit_status_2_and_no_traceback(command):
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].split("error: ")[1].startswith(f"argument {command[2]}:")
