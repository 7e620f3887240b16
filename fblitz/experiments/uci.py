"""The UCI regression protocol for a Bayes-by-Backprop MLP, on any regression table.

As in Hernandez-Lobato & Adams (2015) and Gal & Ghahramani (2016): 20 random
90/10 train/test splits (or the split files of ``--splits``), features and
target standardised with statistics of the training part only, one network with
one hidden layer of 50 ReLU units per split (:mod:`fblitz.experiments.uci_model`),
reported over splits as mean +/- standard error in the target's ORIGINAL units:
the test RMSE of the predictive mean, the test log-likelihood of the predictive
mixture (one noise distribution per weight draw) and the observed coverage of
its central 50/80/90/95% intervals (:mod:`fblitz.experiments.uci_predictive`).

The data: a built-in data set (``--dataset boston``), a benchmark directory
(``data.txt``, ``index_features.txt``, ``index_target.txt``) or one CSV or
whitespace table with ``--target-column`` (``--data PATH``; see
:mod:`fblitz.experiments.tables`). Nothing is downloaded.

Run it with ``python -m fblitz.experiments.uci --data DIR_OR_FILE`` (``--help``
for options).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

from fblitz import _checks, metrics
from fblitz._argtypes import existing_directory, integer, output_file, real, seed
from fblitz.datasets import load_boston, load_diabetes
from fblitz.errors import FblitzValueError
from fblitz.experiments.splits import count_splits, random_splits, read_splits
from fblitz.experiments.tables import load_table
from fblitz.experiments.uci_model import (
    LIKELIHOODS,
    NOISES,
    Config,
    build_model,
    make_likelihood,
    prepare_split,
    validation_split,
)
from fblitz.experiments.uci_predictive import MIN_DF, REPORTED_LEVELS
from fblitz.experiments.uci_split import run_split
from fblitz.random import Key
from fblitz.variational.estimators import ESTIMATORS

__all__ = [
    "Config",
    "build_model",
    "config_from_args",
    "load_dataset",
    "main",
    "make_likelihood",
    "metric_names",
    "prepare_split",
    "run_split",
    "summarize",
    "validation_split",
]

DATASETS = {"boston": load_boston, "diabetes": load_diabetes}
COVERAGES = tuple(f"coverage_{round(100 * level)}" for level in REPORTED_LEVELS)


def metric_names(config: Config) -> tuple[str, ...]:
    """The per-split metrics summarised for ``config``."""
    names = ("rmse", "log_likelihood", *COVERAGES, "noise_scale")
    names += ("df",) if config.likelihood == "student_t" else ()
    names += ("noise_factor",) if config.recalibrate else ()
    names += ("kl_weight",) if len(config.kl_weights) > 1 else ()
    return (*names, "train_seconds")


def load_dataset(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) and target (N, 1) of a built-in data set in ``DATASETS``, as float64 tensors."""
    features, target = DATASETS[name]()
    return torch.from_numpy(features), torch.from_numpy(target).reshape(-1, 1)


def summarize(results: list[dict], names: tuple[str, ...]) -> dict:
    """Mean and standard error (std with ddof 1 over sqrt(n); 0 for one split) of each metric."""
    summary = {}
    for name in names:
        values = torch.tensor([r[name] for r in results], dtype=torch.float64)
        stderr = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else 0.0
        summary[name] = {"mean": float(values.mean()), "stderr": stderr}
    return summary


def mean_calibration_curve(curves: list[metrics.CalibrationCurve]) -> metrics.CalibrationCurve:
    """The observed coverage at each nominal level, averaged over splits (all at the same levels)."""
    return metrics.CalibrationCurve(curves[0].nominal, torch.stack([c.observed for c in curves]).mean(dim=0))


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=sorted(DATASETS), help="built-in data set (default: boston)")
    source.add_argument("--data", metavar="DIR_OR_FILE", help="benchmark directory or CSV/whitespace table")
    parser.add_argument("--target-column", help="--data table: target column, 0-based index or header name")
    parser.add_argument(
        "--feature-columns", help="--data table: comma-separated feature columns (default: all but the target)"
    )
    parser.add_argument(
        "--splits", type=existing_directory, help="directory of index_train_K.txt/index_test_K.txt (0-based rows)"
    )
    parser.add_argument("--n-splits", type=integer(1), default=20, help="random splits (or the first n of --splits)")
    parser.add_argument(
        "--first-split", type=integer(0), default=0, help="start at this split (to share a run between processes)"
    )
    parser.add_argument(
        "--validation",
        action="store_true",
        help="tuning mode: evaluate on 10%% of each TRAINING part; test rows are never used",
    )


def _add_model_arguments(parser: argparse.ArgumentParser, defaults: Config) -> None:
    add = parser.add_argument
    positive = real(0.0, open_minimum=True)
    add("--epochs", type=integer(1), default=defaults.epochs, help="passes over each training part")
    add("--samples", type=integer(1), default=defaults.n_samples, help="weight samples per training step")
    spread = integer(2, why="a spread over weight draws needs two")
    add("--eval-samples", type=spread, default=defaults.eval_samples, help="weight draws at test time")
    add("--batch-size", type=integer(1), default=defaults.batch_size, help="rows per training step")
    add("--lr", type=positive, default=defaults.lr, help="Adam learning rate")
    add("--hidden", type=integer(1), default=defaults.hidden, help="hidden ReLU units")
    add("--prior-sigma", type=positive, default=defaults.prior_sigma, help="N(0, s^2) weight prior")
    add("--rho-init", type=real(), default=defaults.rho_init, help="initial posterior rho")
    add("--noise-init", type=positive, default=defaults.noise_init, help="initial noise scale (standardised units)")
    add(
        "--kl-weight",
        type=kl_weights,
        default=defaults.kl_weights,
        help="KL multiplier (1: the ELBO; < 1: tempered); several, comma-separated: chosen per split on held-out rows",
    )
    add("--estimator", choices=ESTIMATORS, default=defaults.estimator, help="gradient estimator of the weight noise")
    add("--likelihood", choices=LIKELIHOODS, default=defaults.likelihood, help="observation noise family")
    add("--noise", choices=NOISES, default=defaults.noise, help="one learned noise scale, or one per input")
    add("--df", type=positive, default=None, help="fixed Student-t degrees of freedom (default: learned, > 1)")
    more_than_one = real(MIN_DF, open_minimum=True)
    add("--df-init", type=more_than_one, default=defaults.df_init, help="initial learned degrees of freedom")
    switch = lambda name, default, text: add(name, action=argparse.BooleanOptionalAction, default=default, help=text)  # noqa: E731
    switch("--recalibrate", defaults.recalibrate, "fit a noise-scale factor on 10%% held out of each training part")
    switch("--refit", defaults.refit, "retrain the chosen setting on the whole training part (else use its 90%% model)")
    add("--coverage-draws", type=integer(1), default=defaults.coverage_draws, help="Student-t: draws per weight sample")
    switch("--compile", defaults.compile, "compile the training step with torch.compile")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    _add_data_arguments(parser)
    _add_model_arguments(parser, Config())
    parser.add_argument("--seed", type=seed, default=0, help="seed of the split list and of every key")
    parser.add_argument("--threads", type=integer(1), default=1, help="torch intra-op threads")
    parser.add_argument("--json", action="store_true", help="print one JSON summary object")
    parser.add_argument("--quiet", action="store_true", help="no training progress display on stderr")
    parser.add_argument(
        "--plot",
        metavar="PATH",
        type=output_file,
        help="save a PNG of observed vs nominal coverage, averaged over splits (matplotlib)",
    )
    args = parser.parse_args(argv)
    if args.data is None and (args.target_column is not None or args.feature_columns is not None):
        parser.error("argument --target-column/--feature-columns: need --data (a table file)")
    check_split_range(parser, args)
    return args


def check_split_range(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error when --splits holds fewer splits than --first-split + --n-splits asks for."""
    if args.splits is None:
        return
    try:
        available = count_splits(args.splits)
    except FblitzValueError as error:
        parser.error(f"argument --splits: {error}")
    wanted = args.first_split + args.n_splits
    if wanted > available:
        parser.error(
            f"argument --n-splits: --first-split {args.first_split} + --n-splits {args.n_splits} needs {wanted} "
            f"splits, but {args.splits} holds {available} (index_train_0.txt .. index_train_{available - 1}.txt)"
        )


def _load(args: argparse.Namespace) -> tuple[str, torch.Tensor, torch.Tensor]:
    if args.data is None:
        name = args.dataset or "boston"
        return (name, *load_dataset(name))
    columns = None if args.feature_columns is None else [c.strip() for c in args.feature_columns.split(",")]
    table = load_table(args.data, target_column=args.target_column, feature_columns=columns)
    return table.name, table.features, table.target


def kl_weights(text: str) -> tuple[float, ...]:
    """The ``--kl-weight`` list: distinct finite numbers >= 0, comma-separated (an argparse type)."""
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers >= 0 separated by commas, got {text!r}") from None
    if not all(math.isfinite(w) and w >= 0 for w in weights):
        raise argparse.ArgumentTypeError(f"must be numbers >= 0 separated by commas, got {text!r}")
    if len(set(weights)) != len(weights):
        raise argparse.ArgumentTypeError(f"lists a value twice: {text!r}")
    return weights


def config_from_args(args: argparse.Namespace) -> Config:
    """The :class:`Config` of parsed arguments, each value checked."""
    return Config(
        epochs=_checks.integer("--epochs", args.epochs, minimum=1),
        batch_size=_checks.integer("--batch-size", args.batch_size, minimum=1),
        lr=_checks.positive("--lr", args.lr),
        n_samples=_checks.integer("--samples", args.samples, minimum=1),
        eval_samples=_checks.integer("--eval-samples", args.eval_samples, minimum=2),
        hidden=_checks.integer("--hidden", args.hidden, minimum=1),
        prior_sigma=_checks.positive("--prior-sigma", args.prior_sigma),
        rho_init=_checks.real_number("--rho-init", args.rho_init),
        noise_init=_checks.positive("--noise-init", args.noise_init),
        estimator=args.estimator,
        compile=args.compile,
        likelihood=args.likelihood,
        noise=args.noise,
        df=None if args.df is None else _checks.positive("--df", args.df),
        df_init=_checks.positive("--df-init", args.df_init),
        kl_weights=args.kl_weight,
        coverage_draws=_checks.integer("--coverage-draws", args.coverage_draws, minimum=1),
        recalibrate=args.recalibrate,
        refit=args.refit,
    )


def _print_split(k: int, r: dict) -> None:
    coverage = " ".join(f"{r[name]:.2f}" for name in COVERAGES)
    extra = f"df {r['df']:.2f}  " if "df" in r else ""
    print(
        f"split {k:2d}  RMSE {r['rmse']:.3f}  LL {r['log_likelihood']:.3f}  cover50/80/90/95 {coverage}  "
        f"noise {r['noise_scale']:.3f}  {extra}{r['train_seconds']:.1f}s",
        flush=True,
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    n_splits = _checks.integer("--n-splits", args.n_splits, minimum=1)
    config = config_from_args(args)
    if not args.quiet:
        source = args.data or args.dataset or "boston"
        print(f"{source}: loading the data, then {args.n_splits} splits of {args.epochs} epochs",
              file=sys.stderr, flush=True)  # fmt: skip
    name, features, target = _load(args)
    first = _checks.integer("--first-split", args.first_split, minimum=0)
    if args.splits is None:
        splits = random_splits(len(features), n_splits=first + n_splits, seed=args.seed)[first:]
    else:
        splits = read_splits(args.splits, len(features))[first : first + n_splits]
    if not splits:
        raise FblitzValueError(f"--first-split {first} leaves no split to run")
    names = metric_names(config)
    key = Key(args.seed)
    start, results = time.perf_counter(), []
    for k, split in enumerate(splits, start=first):
        if args.validation:
            split = validation_split(split, key.fold_in(10_000 + k))
        if not args.quiet:
            print(f"split {k} ({len(results) + 1} of {len(splits)}): training", file=sys.stderr, flush=True)
        results.append(run_split(features, target, split, config, key.fold_in(k), progress=not args.quiet))
        if not args.json:
            _print_split(k, results[-1])
    summary = {
        "dataset": name,
        "data": args.data,
        "n_rows": len(features),
        "n_features": features.shape[1],
        "n_splits": len(results),
        "first_split": first,
        "split_source": args.splits or f"random 90/10, seed {args.seed}",
        "evaluated_on": "validation" if args.validation else "test",
        "config": config._asdict(),
        "seconds": time.perf_counter() - start,
        **summarize(results, names),
        "per_split": [{name: r[name] for name in names} for r in results],
    }
    curve = mean_calibration_curve([r["calibration"] for r in results])
    summary["calibration"] = {"nominal": curve.nominal.tolist(), "observed": curve.observed.tolist()}
    if args.plot:
        from fblitz.plots import coverage_plot

        title = f"{name}: {len(results)} {summary['evaluated_on']} splits"
        coverage_plot({"fblitz BBB (mean over splits)": curve}, title=title, path=args.plot)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{name}: {len(results)} splits, {summary['seconds']:.0f} s ({summary['evaluated_on']} rows)")
        for metric in names:
            print(f"  {metric:24s} {summary[metric]['mean']:8.3f} +/- {summary[metric]['stderr']:.3f}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
