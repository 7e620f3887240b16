"""One-step-ahead forecasting with a Bayesian LSTM and prediction intervals.

The counterpart of BLiTZ's stock-price example (window a series, train a
BayesianLSTM with a linear head, plot mean +/- k std bands), on a generated
series so that it runs offline and reproducibly: a linear trend plus two
seasonal waves plus Gaussian noise, drawn from an explicit key.

Each input is a window of ``--window`` past values and the target is the next
value. Both are taken relative to the window's last value (and divided by the
spread of one-step changes in the training part), so the network sees the
shape of the recent past, not the level of the trend; predictions are shifted
back afterwards. The model is ``lstm(1, H) -> last step -> linear(H, 1)``
plus a learned observation-noise scale, trained with a Gaussian likelihood by
:func:`fblitz.train.fit` (``complexity_cost_weight = 1 / N``). The last
``--test-fraction`` of the series is held out; the predictive distribution
combines the spread of the weight draws with the learned noise.

Run it with ``python -m fblitz.examples.timeseries`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

from fblitz import layers, likelihoods, metrics, optim
from fblitz._argtypes import integer, real
from fblitz.examples._cli import announce, example_parser
from fblitz.prediction import gaussian_mixture_mean_std, mean_std_interval, predict
from fblitz.random import Key, normal
from fblitz.train import fit


def make_series(key, length: int, noise: float = 0.1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A (length,) series: trend + waves of period 40 and 9 + N(0, noise^2) noise from ``key``."""
    t = torch.arange(length, dtype=dtype)
    seasonal = torch.sin(2 * math.pi * t / 40) + 0.4 * torch.sin(2 * math.pi * t / 9)
    return 2.0 * t / length + seasonal + noise * normal(key, (length,), dtype=dtype)


def make_windows(series: torch.Tensor, window: int, scale: float):
    """Inputs (N, window, 1), targets (N, 1) relative to each window's last value, / ``scale``.

    Returns ``(inputs, targets, last)``; ``last`` (N, 1) is the level to add back.
    """
    windows = series.unfold(0, window + 1, 1)  # (N, window + 1)
    last = windows[:, window - 1 : window]
    inputs = (windows[:, :window] - last) / scale
    targets = (windows[:, window:] - last) / scale
    return inputs.unsqueeze(-1), targets, last


def build_model(hidden: int) -> layers.Layer:
    """Bayesian LSTM over the window, its last output, a Bayesian linear head, a learned noise scale.

    The LSTM's prior and posterior settings are those of BLiTZ's stock-price
    example (``prior_sigma_1=1``, ``posterior_rho_init=-3``).
    """
    return layers.serial(
        layers.lstm(1, hidden, batch_first=True, prior_sigma_1=1.0, posterior_rho_init=-3.0),
        layers.stateless(lambda out: out[0][:, -1], "last_step"),
        layers.linear(hidden, 1),
        layers.learned_noise(1, init_sigma=0.5),
    )


def forecast(model, params, x, *, key, n_samples: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean and std (N, 1) of the next value relative to each window's last, in the series' units."""
    with torch.no_grad():
        mean, std = gaussian_mixture_mean_std(predict(model, params, x, key=key, n_samples=n_samples))
    return mean * scale, std * scale


def evaluate(model, params, x, y, *, key, n_samples: int, std_multiplier: float, scale: float) -> dict:
    """RMSE, Gaussian NLL, interval coverage and width, in the series' units."""
    mean, std = forecast(model, params, x, key=key, n_samples=n_samples, scale=scale)
    y = y * scale
    lower, upper = mean_std_interval(mean, std, k=std_multiplier)
    return {
        "rmse": metrics.rmse(mean, y),
        "nll": metrics.gaussian_nll(mean, std.clamp_min(1e-6), y),
        "coverage": metrics.interval_accuracy(y, lower, upper).inside,
        "mean_interval_width": metrics.mean_interval_width(lower, upper),
        "naive_rmse": metrics.rmse(torch.zeros_like(y), y),  # "tomorrow = today"
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = example_parser(
        __doc__, epochs=40, samples=2, eval_samples=100, batch_size=64, lr=0.01,
        eval_samples_help="predictions drawn per test point",
        plot="the held-out forecast: predictive mean, +/-1 and 2 std bands, the observed values and the recent past",
    )  # fmt: skip
    parser.add_argument("--length", type=integer(3), default=3000, help="points in the generated series")
    parser.add_argument("--noise", type=real(0.0), default=0.1, help="standard deviation of the series' noise")
    parser.add_argument("--window", type=integer(1), default=16, help="past values per input window")
    parser.add_argument(
        "--test-fraction",
        type=real(0.0, 1.0, open_minimum=True, open_maximum=True),
        default=0.2,
        help="held-out tail of the series",
    )
    parser.add_argument("--hidden", type=integer(1), default=16, help="LSTM hidden size")
    parser.add_argument(
        "--std-multiplier", type=real(0.0, open_minimum=True), default=2.0, help="interval = mean +/- k * std"
    )
    parser.add_argument("--report-every", type=integer(0), default=10, help="epochs between progress reports (0: none)")
    args = parser.parse_args(argv)
    split = int(round(args.length * (1 - args.test_fraction)))
    if split - args.window < 1 or args.length - split < 1:
        parser.error(
            f"argument --window: {args.window} past values leave no training or no held-out window in a series of "
            f"--length {args.length} with --test-fraction {args.test_fraction:g}"
        )
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    k_data, k_init, k_fit, k_eval = Key(args.seed).split(4)
    series = make_series(k_data, args.length, args.noise)
    split = int(round(args.length * (1 - args.test_fraction)))
    scale = float(series[:split].diff().std())
    x, y, last = make_windows(series, args.window, scale)
    n_train = split - args.window  # windows whose target lies before the held-out tail
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    model = build_model(args.hidden)
    announce(args, f"Bayesian LSTM forecaster: {len(x_train)} training windows, training {args.epochs} epochs")
    params = model.init(k_init)

    def score(p, key):
        return evaluate(
            model, p, x_test, y_test, key=key, n_samples=args.eval_samples,
            std_multiplier=args.std_multiplier, scale=scale,
        )  # fmt: skip

    def report(info):
        if args.report_every and (info.epoch + 1) % args.report_every == 0 and not args.json:
            s = score(info.params, k_eval.fold_in(info.epoch))
            print(
                f"epoch {info.epoch + 1:4d}  loss {info.loss:.4f}  test RMSE {s['rmse']:.3f}  "
                f"NLL {s['nll']:.3f}  coverage {s['coverage']:.3f}",
                flush=True,
            )

    start = time.perf_counter()
    result = fit(
        model, params, x_train, y_train, likelihood=likelihoods.heteroscedastic_gaussian(),
        optimizer=optim.adam(args.lr), key=k_fit, epochs=args.epochs, batch_size=args.batch_size,
        n_samples=args.samples, complexity_cost_weight=1.0 / len(x_train), compile=args.compile,
        progress=not args.quiet, callback=report,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    scores = score(result.params, k_eval)
    losses = result.history["loss"]
    scores.update(
        train_seconds=seconds,
        epochs=args.epochs,
        train_windows=len(x_train),
        test_windows=len(x_test),
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
    )
    if args.plot:
        plot_forecast(model, result.params, series, x_test, last[n_train:], args, start=split, key=k_eval, scale=scale)
    if args.json:
        print(json.dumps(scores))
    else:
        k = f"+/-{args.std_multiplier:g} std"
        print(f"Bayesian LSTM forecaster, {len(x_train)} train / {len(x_test)} held-out windows, {args.epochs} epochs")
        print(f"  RMSE                {scores['rmse']:.3f}   (naive last-value forecast {scores['naive_rmse']:.3f})")
        print(f"  Gaussian NLL        {scores['nll']:.3f}")
        print(f"  coverage ({k})  {scores['coverage']:.3f}")
        print(f"  mean interval width {scores['mean_interval_width']:.3f}")
        print(f"  training time       {seconds:.1f} s")
        if args.plot:
            print(f"  plot saved to       {args.plot}")
    return scores


def plot_forecast(
    model, params, series, x_test, last, args, *, start: int, key, scale: float, past: int = 80, shown: int = 200
) -> None:
    """Save the first ``shown`` one-step-ahead forecasts of the held-out tail with their bands (``--plot``).

    ``start`` is the time of the first held-out target; ``last`` (N, 1) the level of each test window.
    """
    from fblitz.plots import forecast_band

    x_test, last = x_test[:shown], last[:shown]
    mean, std = forecast(model, params, x_test, key=key, n_samples=args.eval_samples, scale=scale)
    time = torch.arange(start, start + len(x_test), dtype=series.dtype)
    history = torch.arange(max(0, start - past), start)
    forecast_band(
        time, mean + last, std, actual=series[start : start + len(x_test)], history_time=history.to(series.dtype),
        history=series[history], path=args.plot,
        title=f"Bayesian LSTM: one-step-ahead forecasts, first {len(x_test)} held-out points",
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
