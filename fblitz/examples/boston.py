"""Boston-housing regression with confidence intervals (BLiTZ's worked example).

The settings are BLiTZ's example: features and target standardised, a 75/25
split with ``random_state=42``, a 13 -> 512 (ReLU) -> 1 Bayesian regressor
trained with MSE, Adam (lr 0.01), batch 16, 3 weight samples per step, 1000
epochs, ``complexity_cost_weight = 1 / len(X_train)``. ``--activation none``
is the 2020 article's variant, with no activation between the two layers.

Evaluation (the same at every progress line and in the final summary): the
predictive distribution of ``--eval-samples`` weight draws, each with the
observation noise of the training likelihood -- for MSE the Gaussian of
variance 1/2 whose negative log-likelihood the MSE is (up to a constant), or
a learned noise scale with ``--likelihood gaussian``. It reports the RMSE of the
predictive mean, its NLL, the coverage of its central 50/90/95% intervals,
and the article's "CI acc": the share of test targets within mean +/- 3 std
of the weight draws alone. Context computed in the same run: the
training-mean predictor, a ridge regression and a deterministic twin (same
network and training, no weight noise), and how much the metrics move when the
final params are evaluated with other keys.

Run it with ``python -m fblitz.examples.boston`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from fblitz import layers, likelihoods, metrics, optim
from fblitz._argtypes import integer, real
from fblitz.datasets import load_boston
from fblitz.examples._boston_report import baselines, key_spread, print_summary
from fblitz.examples._cli import announce, example_parser
from fblitz.prediction import mean_std_interval, predictive_mean_std
from fblitz.predictive import predictive_distribution
from fblitz.random import Key
from fblitz.train import fit

LIKELIHOODS = ("mse", "gaussian")
MSE_NOISE_SIGMA = 0.5**0.5  # MSE = the NLL of Gaussian noise with variance 1/2, up to a constant
COVERAGE_LEVELS = (0.5, 0.9, 0.95)


def load_data(dtype: torch.dtype = torch.float32):
    """Standardised features/target and the article's 75/25 split.

    Returns ``(x_train, y_train, x_test, y_test, target_std)``; targets have
    shape (N, 1) and ``target_std`` converts standardised errors to $1000s.
    """
    features, target = load_boston()
    features, _ = standardise(features)
    target, target_std = standardise(target.reshape(-1, 1))
    test, train = split_75_25(len(features))
    as_tensor = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
    return (
        as_tensor(features[train]),
        as_tensor(target[train]),
        as_tensor(features[test]),
        as_tensor(target[test]),
        float(target_std[0]),
    )


def standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values - mean) / std`` per column, and the std: sklearn's ``StandardScaler`` (population std,
    1 for a constant column), without importing scikit-learn (seconds at start-up)."""
    std = values.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return (values - values.mean(axis=0)) / std, std


def split_75_25(rows: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """``(test, train)`` row indices of sklearn's ``train_test_split(test_size=0.25, random_state=seed)``:
    one ``RandomState(seed)`` permutation, the first ceil(rows / 4) rows for the test set."""
    order = np.random.RandomState(seed).permutation(rows)
    n_test = math.ceil(0.25 * rows)
    return order[:n_test], order[n_test:]


def build_model(activation: str = "relu", likelihood: str = "mse") -> layers.Layer:
    """BLiTZ's regressor: BayesianLinear(13, 512) -> ReLU -> BayesianLinear(512, 1).

    ``activation="none"`` drops the ReLU (the 2020 article's code);
    ``likelihood="gaussian"`` appends a learned noise scale (outputs [mean, raw scale]).
    """
    stack = [layers.linear(13, 512)] + ([layers.relu] if activation == "relu" else []) + [layers.linear(512, 1)]
    if likelihood == "gaussian":
        stack.append(layers.learned_noise(1))
    return layers.serial(*stack)


def training_likelihood(name: str) -> likelihoods.Likelihood:
    """BLiTZ's ``nn.MSELoss()``, or the Gaussian likelihood with the learned scale."""
    if name == "gaussian":
        return likelihoods.heteroscedastic_gaussian()
    return likelihoods.criterion(F.mse_loss, "mse")


def predictive_likelihood(name: str) -> likelihoods.Likelihood:
    """The observation distribution behind :func:`training_likelihood`."""
    if name == "gaussian":
        return likelihoods.heteroscedastic_gaussian()
    return likelihoods.gaussian(MSE_NOISE_SIGMA)


def evaluate(
    model, params, x, y, *, key, n_samples: int, std_multiplier: float, likelihood: str, target_std: float
) -> dict:
    """Predictive metrics with the noise included, and the article's CI metrics of the weight draws."""
    with torch.no_grad():
        pred = predictive_distribution(
            model, params, x, likelihood=predictive_likelihood(likelihood), key=key, n_samples=n_samples
        )
    mean, std = predictive_mean_std(pred.locs)  # the article's interval: the weight draws alone
    lower, upper = mean_std_interval(mean, std, k=std_multiplier)
    accuracy = metrics.interval_accuracy(y, lower, upper)
    scores = {
        "rmse": metrics.rmse(pred.mean, y),
        "rmse_dollars_k": metrics.rmse(pred.mean, y) * target_std,
        "nll": pred.nll(y),
        **{f"coverage_{round(100 * level)}": pred.coverage(y, level) for level in COVERAGE_LEVELS},
        "coverage_90_weights_only": metrics.interval_coverage(y, samples=pred.locs, level=0.9),
        "ci_acc": accuracy.inside,
        "ci_upper_acc": accuracy.below_upper,
        "ci_lower_acc": accuracy.above_lower,
        "mean_interval_width": metrics.mean_interval_width(lower, upper),
        "noise_sigma": float(pred.aleatoric_variance.sqrt().mean()),
    }
    return scores


def build_parser(doc: str = __doc__) -> argparse.ArgumentParser:
    """The example's command-line options (shared with :mod:`fblitz.examples.boston_ddp`)."""
    parser = example_parser(
        doc, epochs=1000, samples=3, eval_samples=500, batch_size=16, lr=0.01, compile_default=True,
        threads_help="torch intra-op threads (1 is fastest for this small network)",
        eval_samples_help="weight draws of the predictive (the article drew 25; more draws, steadier numbers)",
    )  # fmt: skip
    parser.add_argument(
        "--std-multiplier", type=real(0.0, open_minimum=True), default=3.0, help="CI acc interval = mean +/- k * std"
    )
    parser.add_argument(
        "--report-every", type=integer(0), default=100, help="epochs between progress reports (0: none)"
    )
    parser.add_argument(
        "--activation", choices=("relu", "none"), default="relu", help="between the layers (none: the 2020 article)"
    )
    parser.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        default="mse",
        help="mse: BLiTZ's MSELoss (Gaussian noise of variance 1/2); gaussian: Gaussian noise with a learned scale",
    )
    parser.add_argument(
        "--kl-scale",
        type=real(0.0),
        default=1.0,
        help="complexity_cost_weight = KL_SCALE / len(X_train) (1: the ELBO; < 1 tempers the KL term)",
    )
    parser.add_argument(
        "--spread-keys", type=integer(0), default=10, help="other evaluation keys for the key-to-key spread"
    )
    parser.add_argument(
        "--baselines", action=argparse.BooleanOptionalAction, default=True, help="train the comparison models"
    )
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def evaluation(args: argparse.Namespace, model, x_test, y_test, *, key, target_std: float):
    """``params -> scores``: the one evaluation used by the progress lines and the summary."""

    def run(params, eval_key=key):
        return evaluate(
            model, params, x_test, y_test, key=eval_key, n_samples=args.eval_samples,
            std_multiplier=args.std_multiplier, likelihood=args.likelihood, target_std=target_std,
        )  # fmt: skip

    return run


def make_reporter(args: argparse.Namespace, model, x_test, y_test, *, key, target_std: float):
    """The ``fit`` callback printing test metrics every ``--report-every`` epochs."""
    run = evaluation(args, model, x_test, y_test, key=key, target_std=target_std)

    def report(info):
        if args.report_every and (info.epoch + 1) % args.report_every == 0 and not args.json:
            s = run(info.params)
            print(
                f"epoch {info.epoch + 1:5d}  loss {info.loss:.4f}  RMSE {s['rmse']:.3f}  NLL {s['nll']:.3f}  "
                f"cover90 {s['coverage_90']:.3f}  CI acc {s['ci_acc']:.3f}  CI upper acc {s['ci_upper_acc']:.3f}  "
                f"CI lower acc {s['ci_lower_acc']:.3f}",
                flush=True,
            )

    return report


def fit_settings(args: argparse.Namespace, train_rows: int) -> dict:
    """BLiTZ's training settings as keyword arguments of :func:`fblitz.train.fit`."""
    return dict(
        likelihood=training_likelihood(args.likelihood),
        optimizer=optim.adam(args.lr),
        epochs=args.epochs,
        batch_size=args.batch_size,
        n_samples=args.samples,
        complexity_cost_weight=args.kl_scale / train_rows,
        compile=args.compile,
        progress=not args.quiet,
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    announce(args, f"Boston housing: loading the data, then training {args.epochs} epochs")
    x_train, y_train, x_test, y_test, target_std = load_data()
    model = build_model(args.activation, args.likelihood)
    k_init, k_fit, k_eval = Key(args.seed).split(3)
    params = model.init(k_init)
    report = make_reporter(args, model, x_test, y_test, key=k_eval, target_std=target_std)
    start = time.perf_counter()
    result = fit(model, params, x_train, y_train, key=k_fit, callback=report, **fit_settings(args, len(x_train)))
    seconds = time.perf_counter() - start
    context = {}
    if args.baselines:
        announce(args, "training the baselines: ridge regression and the deterministic twin")
        context = baselines(model, params, x_train, y_train, x_test, y_test, key=k_fit, settings=fit_settings(args, 1))
    return summarize(
        args, model, result, x_test, y_test, key=k_eval, target_std=target_std, seconds=seconds,
        train_rows=len(x_train), context=context,
    )  # fmt: skip


def summarize(
    args, model, result, x_test, y_test, *, key, target_std: float, seconds: float, train_rows: int, context=None
) -> dict:
    """Final test metrics of a :class:`~fblitz.train.FitResult` (and their key-to-key spread), printed; returns them.

    The evaluation is the progress lines' (same key, same draws): the last
    progress line and this summary agree.
    """
    run = evaluation(args, model, x_test, y_test, key=key, target_std=target_std)
    scores = run(result.params)
    scores.update(
        key_spread=key_spread(run, result.params, key, args.spread_keys),
        baselines=context or {},
        train_seconds=seconds,
        epochs=args.epochs,
        activation=args.activation,
        likelihood=args.likelihood,
        kl_scale=args.kl_scale,
        eval_samples=args.eval_samples,
        final_loss=result.history["loss"][-1] if result.history["loss"] else None,
        first_loss=result.history["loss"][0] if result.history["loss"] else None,
    )
    if args.json:
        print(json.dumps(scores))
    else:
        print_summary(scores, args, train_rows=train_rows, test_rows=len(x_test))
    return scores


if __name__ == "__main__":
    main(sys.argv[1:])
