"""The UCI regression protocol for a Bayes-by-Backprop MLP.

As in Hernandez-Lobato & Adams (2015) and Gal & Ghahramani (2016): 20 random
90/10 train/test splits (or the split files of ``--splits``), features and
target standardised with statistics of the training part only, a network with
one hidden layer of 50 ReLU units, and a learned homoscedastic Gaussian noise
(``--likelihood gaussian``) or a learned Student-t noise: learned scale, degrees
of freedom learned or fixed with ``--df`` (``--likelihood student_t``).
Reported over splits as mean +/- standard error, in the target's ORIGINAL
units: the test RMSE of the predictive mean, the test log-likelihood of the
predictive mixture (one Gaussian or Student-t component per weight draw, each
with the learned noise) and the coverage of a central 90% interval: for the
Gaussian that of the moment-matched Gaussian predictive (mean and variance of
the mixture); for the Student-t the empirical 5% and 95% quantiles of
``coverage_draws`` seeded draws per component from the mixture itself.

Run it with ``python -m fblitz.experiments.uci --dataset boston`` (``--help``
for options).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import _checks, layers, likelihoods, metrics, optim, priors
from fblitz._argtypes import existing_directory, integer, output_file, real, seed
from fblitz.datasets import load_boston, load_diabetes
from fblitz.errors import FblitzValueError
from fblitz.experiments.splits import Split, count_splits, random_splits, read_splits
from fblitz.experiments.standardize import Standardizer
from fblitz.metrics import gaussian_mixture_mean_std
from fblitz.prediction import predict
from fblitz.random import Key, KeyLike, as_key, permutation
from fblitz.training import fit
from fblitz.variational.estimators import ESTIMATORS

DATASETS = {"boston": load_boston, "diabetes": load_diabetes}
MIN_SIGMA = 1e-6
MIN_DF = 1.0
METRICS = ("rmse", "log_likelihood", "log_likelihood_gaussian", "coverage_90", "noise_sigma", "train_seconds")
STUDENT_T_METRICS = ("rmse", "log_likelihood", "coverage_90", "noise_sigma", "df", "train_seconds")
LIKELIHOODS = ("gaussian", "student_t")


class Config(NamedTuple):
    """Hyperparameters, fixed across splits."""

    epochs: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    n_samples: int = 3
    eval_samples: int = 200
    hidden: int = 50
    prior_sigma: float = 1.0
    rho_init: float = -5.0
    noise_init: float = 0.5
    estimator: str = "reparameterization"
    compile: bool = True
    likelihood: str = "gaussian"
    df: float | None = None
    df_init: float = 10.0
    coverage_draws: int = 50


def metric_names(config: Config) -> tuple[str, ...]:
    """The metrics summarised for ``config``'s likelihood."""
    return STUDENT_T_METRICS if config.likelihood == "student_t" else METRICS


def load_dataset(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) and target (N, 1) of a data set in ``DATASETS``, as float64 tensors."""
    features, target = DATASETS[name]()
    return torch.from_numpy(features), torch.from_numpy(target).reshape(-1, 1)


def build_model(in_features: int, config: Config) -> layers.Layer:
    """``in -> hidden (ReLU) -> 1`` Bayesian MLP with Gaussian priors, then a learned noise scale.

    With ``config.likelihood == "student_t"`` and ``config.df`` None, learned
    degrees of freedom follow (outputs [location, raw scale, raw df]).
    """

    def bayesian(n_in, n_out):
        settings = layers.Bayes(prior=priors.gaussian(config.prior_sigma), rho_init=config.rho_init)
        return layers.linear(n_in, n_out, bayes=settings)

    stack = [
        bayesian(in_features, config.hidden),
        layers.relu,
        bayesian(config.hidden, 1),
        layers.learned_noise(1, init_sigma=config.noise_init),
    ]
    if config.likelihood == "student_t" and config.df is None:
        stack.append(layers.learned_df(1, init_df=config.df_init, min_df=MIN_DF))
    return layers.serial(*stack)


def make_likelihood(config: Config) -> likelihoods.Likelihood:
    """The training likelihood named by ``config.likelihood``."""
    if config.likelihood == "student_t":
        return likelihoods.student_t(config.df, min_sigma=MIN_SIGMA, min_df=MIN_DF)
    return likelihoods.heteroscedastic_gaussian(MIN_SIGMA)


def validation_split(split: Split, key: KeyLike, fraction: float = 0.1) -> Split:
    """Hold out a random ``fraction`` of the TRAINING rows as a test part (for tuning)."""
    order = split.train[permutation(key, len(split.train))]
    n_held = max(1, round(fraction * len(order)))
    return Split(order[n_held:], order[:n_held])


class SplitData(NamedTuple):
    """One split ready for training: float32 standardised inputs, test targets in original units."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    y_scaler: Standardizer


def prepare_split(features: torch.Tensor, target: torch.Tensor, split: Split) -> SplitData:
    """Standardise features and target with statistics of the TRAINING rows only."""
    x_scaler = Standardizer.fit(features[split.train])
    y_scaler = Standardizer.fit(target[split.train])
    as_input = lambda t: t.to(torch.float32)  # noqa: E731
    return SplitData(
        as_input(x_scaler.transform(features[split.train])),
        as_input(y_scaler.transform(target[split.train])),
        as_input(x_scaler.transform(features[split.test])),
        target[split.test],
        y_scaler,
    )


def run_split(
    features: torch.Tensor, target: torch.Tensor, split: Split, config: Config, key: KeyLike, *, progress: bool = False
) -> dict:
    """Train on ``split.train``, evaluate on ``split.test``; metrics in original units.

    ``progress`` shows :func:`fblitz.training.fit`'s progress display on stderr.
    """
    k_init, k_fit, k_pred = as_key(key).split(3)
    x_train, y_train, x_test, y_test, y_scaler = prepare_split(features, target, split)
    model = build_model(features.shape[1], config)
    # the KL weight is fit's default, 1 / len(x_train)
    result = fit(
        model, model.init(k_init), x_train, y_train, likelihood=make_likelihood(config),
        optimizer=optim.adam(config.lr), key=k_fit, epochs=config.epochs, batch_size=config.batch_size,
        n_samples=config.n_samples, estimator=config.estimator, compile=config.compile, progress=progress,
    )  # fmt: skip
    with torch.no_grad():
        samples = predict(model, result.params, x_test, key=k_pred, n_samples=config.eval_samples).double()
    if config.likelihood == "student_t":
        return _student_t_metrics(samples, y_test, y_scaler, config, k_pred.fold_in(1)) | {
            "train_seconds": result.history["seconds"]
        }
    means, raw = samples.chunk(2, dim=-1)
    means = y_scaler.inverse(means)
    sigmas = (F.softplus(raw) + MIN_SIGMA) * y_scaler.scale
    mean, std = gaussian_mixture_mean_std(samples, MIN_SIGMA)
    mean, std = y_scaler.inverse(mean), std * y_scaler.scale
    return {
        "rmse": metrics.rmse(mean, y_test),
        "log_likelihood": metrics.gaussian_mixture_log_likelihood(means, sigmas, y_test),
        "log_likelihood_gaussian": -metrics.gaussian_nll(mean, std, y_test),
        "coverage_90": metrics.interval_coverage(y_test, mean=mean, std=std, level=0.9),
        "calibration": metrics.calibration_curve(y_test, mean=mean, std=std),
        "noise_sigma": float(sigmas[0].mean()),
        "train_seconds": result.history["seconds"],
    }


def _student_t_metrics(samples, y_test, y_scaler: Standardizer, config: Config, key: Key) -> dict:
    """Metrics of the Student-t mixture predictive from (S, N, 2 or 3) network outputs, original units."""
    locs, raw_scale, *raw_df = samples.chunk(3 if config.df is None else 2, dim=-1)
    locs = y_scaler.inverse(locs)
    scales = (F.softplus(raw_scale) + MIN_SIGMA) * y_scaler.scale
    dfs = F.softplus(raw_df[0]) + MIN_DF if raw_df else torch.full_like(locs, config.df)
    draws = metrics.student_t_mixture_samples(key, locs, scales, dfs, config.coverage_draws)
    # each component's mean is its location (df > 1), so the mixture's mean is their average
    mean = locs.mean(dim=0)
    return {
        "rmse": metrics.rmse(mean, y_test),
        "log_likelihood": metrics.student_t_mixture_log_likelihood(locs, scales, dfs, y_test),
        "coverage_90": metrics.interval_coverage(y_test, samples=draws, level=0.9),
        "calibration": metrics.calibration_curve(y_test, samples=draws),
        "noise_sigma": float(scales[0].mean()),
        "df": float(dfs[0].mean()),
    }


def summarize(results: list[dict], names: tuple[str, ...] = METRICS) -> dict:
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="boston", help="data set")
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
    add_training_options(parser, Config())
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
    check_split_range(parser, args)
    return args


def add_training_options(parser: argparse.ArgumentParser, defaults: Config) -> None:
    """The options of the model and its training (one :class:`Config`), with ``defaults``."""
    positive = real(0.0, open_minimum=True)
    parser.add_argument("--epochs", type=integer(1), default=defaults.epochs, help="passes over each training part")
    parser.add_argument("--samples", type=integer(1), default=defaults.n_samples, help="weight samples per step")
    parser.add_argument(
        "--eval-samples",
        type=integer(2, why="a spread over weight draws needs two"),
        default=defaults.eval_samples,
        help="weight draws at test time",
    )
    parser.add_argument("--batch-size", type=integer(1), default=defaults.batch_size, help="rows per training step")
    parser.add_argument("--lr", type=positive, default=defaults.lr, help="Adam learning rate")
    parser.add_argument("--prior-sigma", type=positive, default=defaults.prior_sigma, help="N(0, s^2) weight prior")
    parser.add_argument("--rho-init", type=real(), default=defaults.rho_init, help="initial posterior rho")
    parser.add_argument(
        "--noise-init", type=positive, default=defaults.noise_init, help="initial noise std (standardised units)"
    )
    parser.add_argument(
        "--estimator", choices=ESTIMATORS, default=defaults.estimator, help="gradient estimator of the weight noise"
    )
    parser.add_argument("--likelihood", choices=LIKELIHOODS, default=defaults.likelihood, help="observation noise")
    parser.add_argument(
        "--df", type=positive, default=None, help="fixed Student-t degrees of freedom (default: learned, > 1)"
    )
    parser.add_argument(
        "--df-init",
        type=real(MIN_DF, open_minimum=True),
        default=defaults.df_init,
        help="initial learned degrees of freedom",
    )
    parser.add_argument(
        "--coverage-draws",
        type=integer(1),
        default=defaults.coverage_draws,
        help="Student-t: draws per weight sample for the quantile intervals",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=defaults.compile,
        help="compile the training step with torch.compile",
    )


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


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    n_splits = _checks.integer("--n-splits", args.n_splits, minimum=1)
    if not args.quiet:
        print(f"{args.dataset}: loading the data, then {args.n_splits} splits of {args.epochs} epochs",
              file=sys.stderr, flush=True)  # fmt: skip
    features, target = load_dataset(args.dataset)
    first = _checks.integer("--first-split", args.first_split, minimum=0)
    if args.splits is None:
        splits = random_splits(len(features), n_splits=first + n_splits, seed=args.seed)[first:]
    else:
        splits = read_splits(args.splits, len(features))[first : first + n_splits]
    if not splits:
        raise FblitzValueError(f"--first-split {first} leaves no split to run")
    config = config_of(args)
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
            r = results[-1]
            print(
                f"split {k:2d}  RMSE {r['rmse']:.3f}  LL {r['log_likelihood']:.3f}  "
                f"cover90 {r['coverage_90']:.3f}  noise {r['noise_sigma']:.3f}  "
                + (f"df {r['df']:.2f}  " if "df" in r else "")
                + f"{r['train_seconds']:.1f}s",
                flush=True,
            )
    return report(args, config, results, names, seconds=time.perf_counter() - start)


def config_of(args: argparse.Namespace) -> Config:
    """The :class:`Config` of the command line's training options."""
    return Config(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        n_samples=args.samples,
        eval_samples=args.eval_samples,
        prior_sigma=args.prior_sigma,
        rho_init=args.rho_init,
        noise_init=args.noise_init,
        estimator=args.estimator,
        compile=args.compile,
        likelihood=args.likelihood,
        df=None if args.df is None else _checks.positive("--df", args.df),
        df_init=args.df_init,
        coverage_draws=_checks.integer("--coverage-draws", args.coverage_draws, minimum=1),
    )


def report(args: argparse.Namespace, config: Config, results: list[dict], names: tuple, *, seconds: float) -> dict:
    """The summary of all splits: printed (or as JSON), plotted with ``--plot``, and returned."""
    summary = {
        "dataset": args.dataset,
        "n_splits": len(results),
        "split_source": args.splits or f"random 90/10, seed {args.seed}",
        "evaluated_on": "validation" if args.validation else "test",
        "config": config._asdict(),
        "seconds": seconds,
        **summarize(results, names),
        "per_split": [{name: r[name] for name in names} for r in results],
    }
    curve = mean_calibration_curve([r["calibration"] for r in results])
    summary["calibration"] = {"nominal": curve.nominal.tolist(), "observed": curve.observed.tolist()}
    if args.plot:
        from fblitz.plots import coverage_plot

        title = f"{args.dataset}: {len(results)} {summary['evaluated_on']} splits"
        coverage_plot({"fblitz BBB (mean over splits)": curve}, title=title, path=args.plot)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.dataset}: {len(results)} splits, {summary['seconds']:.0f} s ({summary['evaluated_on']} rows)")
        for name in names:
            print(f"  {name:24s} {summary[name]['mean']:8.3f} +/- {summary[name]['stderr']:.3f}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
