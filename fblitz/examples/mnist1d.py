"""A Bayesian 1-D CNN (or MLP) on MNIST-1D: accuracy, NLL, calibration and out-of-distribution entropy.

MNIST-1D (Greydanus 2020) is generated offline by the ``mnist1d`` package
(``make_dataset`` with its default arguments: 4000 training and 1000 test
sequences of length 40, ten classes; nothing is downloaded or written). The
default model is the data set paper's small CNN made Bayesian (three
``conv1d`` layers of 25 channels, stride 2, ReLU, then a linear layer);
``--model mlp`` is its MLP baseline (40 -> 100 -> 100 -> 10). Every weight
has Blundell et al.'s scale-mixture prior (as in the digits example) and a
posterior rho initialised at -5; categorical likelihood, Adam, ``complexity_cost_weight = 1 / N``.
Evaluation averages ``--eval-samples`` weight draws and reports accuracy, NLL,
ECE (15 bins), Brier score, and the predictive entropy and mutual information
on the test sequences and on out-of-distribution inputs: the test sequences
with their 40 positions randomly permuted (same values, no digit shape).

Run it with ``python -m fblitz.examples.mnist1d`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import sys

import torch

from fblitz import layers
from fblitz._argtypes import integer, real
from fblitz.datasets import load_mnist1d
from fblitz.examples._classification import train_and_report
from fblitz.examples._cli import announce, example_parser
from fblitz.examples.digits import PRIORS
from fblitz.random import Key, as_key, permutation

MODELS = ("cnn", "mlp")


def load_data(num_samples: int | None = None, dtype: torch.dtype = torch.float32):
    """``(x_train, y_train, x_test, y_test)``: sequences (N, 1, 40) and int64 labels (N,)."""
    data = load_mnist1d(num_samples)
    sequences = lambda a: torch.tensor(a, dtype=dtype).unsqueeze(1)  # noqa: E731
    labels = torch.from_numpy
    return sequences(data["x"]), labels(data["y"]), sequences(data["x_test"]), labels(data["y_test"])


def shuffled_positions(key, x: torch.Tensor) -> torch.Tensor:
    """Each sequence of ``x`` (N, 1, L) with its L positions permuted independently (OOD inputs)."""
    keys = as_key(key).split(len(x))
    return torch.stack([row[:, permutation(k, row.shape[-1])] for k, row in zip(keys, x)])


def build_model(
    kind: str = "cnn", prior: str = "mixture", length: int = 40, width: int | None = None, rho_init: float = -5.0
) -> layers.Layer:
    """A Bayesian classifier of (N, 1, length) sequences into 10 logits.

    ``"cnn"``: three ``conv1d`` layers of ``width`` (default 25) channels (kernel 5, 3, 3; stride 2;
    ReLU), flatten, linear. ``"mlp"``: flatten, ``length -> width -> width -> 10`` (default width 100).
    """
    kw = dict(PRIORS[prior], posterior_rho_init=rho_init)
    if kind == "mlp":
        width = width or 100
        return layers.serial(
            layers.flatten(), layers.linear(length, width, **kw), layers.relu, layers.linear(width, width, **kw),
            layers.relu, layers.linear(width, 10, **kw),
        )  # fmt: skip
    width, stack, out = width or 25, [], length
    for i, (kernel, padding) in enumerate(((5, 1), (3, 1), (3, 1))):
        stack += [layers.conv1d(1 if i == 0 else width, width, kernel, stride=2, padding=padding, **kw), layers.relu]
        out = (out + 2 * padding - kernel) // 2 + 1
    return layers.serial(*stack, layers.flatten(), layers.linear(width * out, 10, **kw))


def parse_args(argv=None) -> argparse.Namespace:
    parser = example_parser(
        __doc__, epochs=100, samples=1, eval_samples=50, batch_size=64, lr=0.003, compile_default=True,
        plot="the reliability diagram",
    )  # fmt: skip
    parser.add_argument(
        "--num-samples",
        type=integer(10, why="both parts of the 80/20 split need rows"),
        default=None,
        help="generate this many sequences (80/20 split; default 5000)",
    )
    parser.add_argument("--prior", choices=sorted(PRIORS), default="mixture", help="prior on every weight")
    parser.add_argument("--model", choices=MODELS, default="cnn", help="1-D CNN or MLP")
    parser.add_argument(
        "--width", type=integer(1), default=None, help="channels (cnn, default 25) or hidden units (mlp, 100)"
    )
    parser.add_argument("--rho-init", type=real(), default=-5.0, help="initial posterior rho")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    announce(
        args, f"MNIST-1D: generating the data with its package (a few seconds), then training {args.epochs} epochs"
    )
    x_train, y_train, x_test, y_test = load_data(args.num_samples)
    key = Key(args.seed)
    model = build_model(args.model, args.prior, x_train.shape[-1], args.width, args.rho_init)
    return train_and_report(
        model, x_train, y_train, x_test, y_test, args, key=key,
        title=f"MNIST-1D, Bayesian {args.model.upper()}, {len(x_train)} train / {len(x_test)} test sequences",
        ood_label="shuffled sequences", ood_inputs=shuffled_positions(key.fold_in(1), x_test),
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
