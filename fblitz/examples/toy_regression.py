"""The 1-D toy regression of Blundell et al. (2015): uncertainty that grows away from the data.

Training inputs are drawn uniformly on [0, 0.5] and the targets follow the
paper's curve ``y = x + 0.3 sin(2 pi (x + e)) + 0.3 sin(4 pi (x + e)) + e``
with ``e ~ N(0, 0.02^2)``, all from an explicit key. A ``1 -> H -> H -> 1``
ReLU network with Bayesian weights (Gaussian priors) and a learned
homoscedastic noise scale is trained by :func:`fblitz.train.fit`
(``complexity_cost_weight = 1 / N``). The predictive on a grid over
[-0.2, 1.2] adds the spread of the weight draws to the learned noise: narrow
where the data are, widening outside them (the paper's Figure 5). The example
reports the mean predictive std inside and outside the data's range and the
RMSE on fresh points from the training range; ``--plot PATH`` saves the
picture.

Run it with ``python -m fblitz.examples.toy_regression --plot toy.png``
(``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

from fblitz import layers, likelihoods, metrics, optim, priors
from fblitz._argtypes import integer, real
from fblitz.examples._cli import announce, example_parser
from fblitz.predictive import GaussianMixture, predictive_distribution
from fblitz.random import Key, as_key, normal, uniform
from fblitz.train import fit

DATA_RANGE = (0.0, 0.5)
GRID_RANGE = (-0.2, 1.2)


def curve(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The paper's function of the inputs and the noise ``e`` (same shapes)."""
    shifted = x + noise
    return x + 0.3 * torch.sin(2 * math.pi * shifted) + 0.3 * torch.sin(4 * math.pi * shifted) + noise


def make_data(key, n: int, noise: float = 0.02, dtype: torch.dtype = torch.float32):
    """``(x, y)`` of shape (n, 1): ``x ~ U(0, 0.5)``, ``y = curve(x, e)``, ``e ~ N(0, noise^2)``."""
    k_x, k_e = as_key(key).split(2)
    low, high = DATA_RANGE
    x = low + (high - low) * uniform(k_x, (n, 1), dtype=dtype)
    return x, curve(x, noise * normal(k_e, (n, 1), dtype=dtype))


def build_model(hidden: int, prior_sigma: float, rho_init: float) -> layers.Layer:
    """``1 -> hidden -> hidden -> 1`` Bayesian ReLU MLP with ``N(0, prior_sigma^2)`` priors, then a learned noise."""

    def bayesian(n_in, n_out):
        return layers.linear(n_in, n_out, prior=priors.gaussian(prior_sigma), posterior_rho_init=rho_init)

    return layers.serial(
        bayesian(1, hidden), layers.relu, bayesian(hidden, hidden), layers.relu, bayesian(hidden, 1),
        layers.learned_noise(1, init_sigma=0.1),
    )  # fmt: skip


def predictive(model, params, x: torch.Tensor, *, key, n_samples: int) -> GaussianMixture:
    """The predictive distribution at ``x`` (N, 1): the weight draws' spread plus the learned noise."""
    with torch.no_grad():
        return predictive_distribution(
            model, params, x, likelihood=likelihoods.heteroscedastic_gaussian(), key=key, n_samples=n_samples
        )


def parse_args(argv=None) -> argparse.Namespace:
    parser = example_parser(
        __doc__, epochs=1000, samples=4, eval_samples=200, batch_size=32, lr=0.01, compile_default=True,
        plot="the data, the predictive mean and its +/-1 and 2 std bands",
    )  # fmt: skip
    parser.add_argument("--points", type=integer(2), default=128, help="training points")
    parser.add_argument("--hidden", type=integer(1), default=64, help="units per hidden layer")
    parser.add_argument(
        "--prior-sigma", type=real(0.0, open_minimum=True), default=1.0, help="N(0, s^2) prior on every weight"
    )
    parser.add_argument("--rho-init", type=real(), default=-5.0, help="initial posterior rho")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    k_data, k_test, k_init, k_fit, k_eval = Key(args.seed).split(5)
    x_train, y_train = make_data(k_data, args.points)
    model = build_model(args.hidden, args.prior_sigma, args.rho_init)
    announce(args, f"1-D toy regression: {len(x_train)} points, training {args.epochs} epochs")
    start = time.perf_counter()
    result = fit(
        model, model.init(k_init), x_train, y_train, likelihood=likelihoods.heteroscedastic_gaussian(),
        optimizer=optim.adam(args.lr), key=k_fit, epochs=args.epochs, batch_size=args.batch_size,
        n_samples=args.samples, complexity_cost_weight=1.0 / len(x_train), compile=args.compile,
        progress=not args.quiet,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    grid = torch.linspace(*GRID_RANGE, 281).unsqueeze(1)
    band = predictive(model, result.params, grid, key=k_eval, n_samples=args.eval_samples)
    mean, std = band.mean, band.std
    inside = (grid >= DATA_RANGE[0]) & (grid <= DATA_RANGE[1])
    x_test, y_test = make_data(k_test, 200)
    test = predictive(model, result.params, x_test, key=k_eval.fold_in(1), n_samples=args.eval_samples)
    losses = result.history["loss"]
    scores = {
        "std_inside": float(std[inside].mean()),
        "std_outside": float(std[~inside].mean()),
        "std_at_1.2": float(std[-1]),
        "test_rmse": metrics.rmse(test.mean, y_test),
        "test_coverage_90": test.coverage(y_test, 0.9),
        "test_nll": test.nll(y_test),
        "noise_sigma": float(torch.nn.functional.softplus(result.params["5"]["noise_rho"])),
        "train_seconds": seconds,
        "epochs": args.epochs,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
    }
    if args.plot:
        from fblitz.plots import regression_band

        regression_band(
            grid, mean, std, x_train=x_train, y_train=y_train, truth=curve(grid, torch.zeros_like(grid)),
            title="Bayes by Backprop, 1-D toy regression (Blundell et al. 2015)", path=args.plot,
        )  # fmt: skip
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"1-D toy regression, {len(x_train)} points on [0, 0.5], {args.epochs} epochs")
        print(f"  predictive std   inside the data {scores['std_inside']:.3f}   outside {scores['std_outside']:.3f}")
        print(f"  test RMSE        {scores['test_rmse']:.4f}   (noise sigma learned {scores['noise_sigma']:.4f})")
        print(f"  90% coverage     {scores['test_coverage_90']:.3f}")
        print(f"  training time    {seconds:.1f} s")
        if args.plot:
            print(f"  plot saved to    {args.plot}")
    return scores


if __name__ == "__main__":
    main(sys.argv[1:])
