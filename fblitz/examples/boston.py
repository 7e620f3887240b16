"""Boston-housing regression with confidence intervals (BLiTZ's worked example).

The settings are the article's: features and target standardised, a 75/25
split with ``random_state=42``, a 13 -> 512 -> 1 Bayesian regressor trained
with MSE, Adam (lr 0.01), batch 16, 3 weight samples per step, 1000 epochs,
``complexity_cost_weight = 1 / len(X_train)``; evaluation draws 25 predictions
per test point and uses mean +/- 3 std as the interval ("CI acc").

Run it with ``python -m fblitz.examples.boston`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from fblitz import layers, likelihoods, metrics, optim
from fblitz.datasets import load_boston
from fblitz.examples._cli import example_parser
from fblitz.predict import mean_std_interval, predict, predictive_mean_std
from fblitz.random import Key
from fblitz.train import fit


def load_data(dtype: torch.dtype = torch.float32):
    """Standardised features/target and the article's 75/25 split.

    Returns ``(x_train, y_train, x_test, y_test, target_std)``; targets have
    shape (N, 1) and ``target_std`` converts standardised errors to $1000s.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    features, target = load_boston()
    features = StandardScaler().fit_transform(features)
    target_scaler = StandardScaler()
    target = target_scaler.fit_transform(target.reshape(-1, 1))
    x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.25, random_state=42)
    as_tensor = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
    return (
        as_tensor(x_train),
        as_tensor(y_train),
        as_tensor(x_test),
        as_tensor(y_test),
        float(target_scaler.scale_[0]),
    )


def build_model() -> layers.Layer:
    """The article's regressor: BayesianLinear(13, 512) -> BayesianLinear(512, 1).

    Like the article's forward pass, the two layers are applied in sequence
    with no activation between them.
    """
    return layers.serial(layers.linear(13, 512), layers.linear(512, 1))


def evaluate(model, params, x, y, *, key, n_samples: int, std_multiplier: float, target_std: float) -> dict:
    """The article's CI metrics plus RMSE, NLL and interval width."""
    mean, std = predictive_mean_std(predict(model, params, x, key=key, n_samples=n_samples))
    lower, upper = mean_std_interval(mean, std, k=std_multiplier)
    accuracy = metrics.interval_accuracy(y, lower, upper)
    return {
        "rmse": metrics.rmse(mean, y),
        "rmse_dollars_k": metrics.rmse(mean, y) * target_std,
        "nll": metrics.gaussian_nll(mean, std.clamp_min(1e-6), y),
        "ci_acc": accuracy.inside,
        "ci_upper_acc": accuracy.below_upper,
        "ci_lower_acc": accuracy.above_lower,
        "mean_interval_width": metrics.mean_interval_width(lower, upper),
    }


def build_parser(doc: str = __doc__) -> argparse.ArgumentParser:
    """The example's command-line options (shared with :mod:`fblitz.examples.boston_ddp`)."""
    parser = example_parser(
        doc, epochs=1000, samples=3, eval_samples=25, batch_size=16, lr=0.01, compile_default=True,
        threads_help="torch intra-op threads (1 is fastest for this small network)",
        eval_samples_help="predictions drawn per test point",
    )  # fmt: skip
    parser.add_argument("--std-multiplier", type=float, default=3.0, help="interval = mean +/- k * std")
    parser.add_argument("--report-every", type=int, default=100, help="epochs between progress reports (0: none)")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def make_reporter(args: argparse.Namespace, model, x_test, y_test, *, key, target_std: float):
    """The ``fit`` callback printing test metrics every ``--report-every`` epochs."""

    def report(info):
        if args.report_every and (info.epoch + 1) % args.report_every == 0 and not args.json:
            scores = evaluate(
                model,
                info.params,
                x_test,
                y_test,
                key=key.fold_in(info.epoch),
                n_samples=args.eval_samples,
                std_multiplier=args.std_multiplier,
                target_std=target_std,
            )
            print(
                f"epoch {info.epoch + 1:5d}  loss {info.loss:.4f}  CI acc {scores['ci_acc']:.3f}  "
                f"CI upper acc {scores['ci_upper_acc']:.3f}  CI lower acc {scores['ci_lower_acc']:.3f}  "
                f"RMSE {scores['rmse']:.3f}",
                flush=True,
            )

    return report


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    x_train, y_train, x_test, y_test, target_std = load_data()
    model = build_model()
    k_init, k_fit, k_eval = Key(args.seed).split(3)
    params = model.init(k_init)
    report = make_reporter(args, model, x_test, y_test, key=k_eval, target_std=target_std)
    start = time.perf_counter()
    result = fit(model, params, x_train, y_train, key=k_fit, callback=report, **fit_settings(args, len(x_train)))
    seconds = time.perf_counter() - start
    return summarize(
        args, model, result, x_test, y_test, key=k_eval, target_std=target_std, seconds=seconds, train_rows=len(x_train)
    )


def fit_settings(args: argparse.Namespace, train_rows: int) -> dict:
    """The article's training settings as keyword arguments of :func:`fblitz.train.fit`."""
    return dict(
        likelihood=likelihoods.criterion(F.mse_loss, "mse"),
        optimizer=optim.adam(args.lr),
        epochs=args.epochs,
        batch_size=args.batch_size,
        n_samples=args.samples,
        complexity_cost_weight=1.0 / train_rows,
        compile=args.compile,
        progress=False,
    )


def summarize(args, model, result, x_test, y_test, *, key, target_std: float, seconds: float, train_rows: int) -> dict:
    """Final test metrics of a :class:`~fblitz.train.FitResult`, printed as text or JSON; returns them."""
    scores = evaluate(
        model,
        result.params,
        x_test,
        y_test,
        key=key,
        n_samples=args.eval_samples,
        std_multiplier=args.std_multiplier,
        target_std=target_std,
    )
    scores.update(
        train_seconds=seconds,
        epochs=args.epochs,
        final_loss=result.history["loss"][-1] if result.history["loss"] else None,
        first_loss=result.history["loss"][0] if result.history["loss"] else None,
    )
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"Boston housing, {train_rows} train / {len(x_test)} test rows, {args.epochs} epochs")
        print(f"  RMSE                {scores['rmse']:.3f} (standardised)  {scores['rmse_dollars_k']:.2f} ($1000s)")
        print(f"  Gaussian NLL        {scores['nll']:.3f} (standardised)")
        print(
            f"  CI acc (+/-{args.std_multiplier:g} std)  {scores['ci_acc']:.3f}   upper {scores['ci_upper_acc']:.3f}"
            f"   lower {scores['ci_lower_acc']:.3f}"
        )
        print(f"  mean interval width {scores['mean_interval_width']:.3f} (standardised)")
        print(f"  training time       {seconds:.1f} s")
    return scores


if __name__ == "__main__":
    main(sys.argv[1:])
