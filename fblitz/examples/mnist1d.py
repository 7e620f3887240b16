"""A Bayesian MLP on MNIST-1D: accuracy, NLL, calibration and out-of-distribution entropy.

MNIST-1D (Greydanus 2020) is generated offline by the ``mnist1d`` package
(``make_dataset`` with its default arguments: 4000 training and 1000 test
sequences of length 40, ten classes; nothing is downloaded or written). The
model is the MLP baseline of the MNIST-1D paper made Bayesian (40 -> 100 ->
100 -> 10, ReLU), every weight with Blundell et al.'s scale-mixture prior (as
in the digits example) and posterior rho initialised at -5; categorical
likelihood, Adam, ``complexity_cost_weight = 1 / N``.
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
from fblitz.datasets import load_mnist1d
from fblitz.examples._classification import train_and_report
from fblitz.examples._cli import example_parser
from fblitz.examples.digits import PRIORS
from fblitz.random import Key, as_key, permutation

HIDDEN = 100


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


def build_model(prior: str = "mixture", length: int = 40, hidden: int = HIDDEN, rho_init: float = -5.0) -> layers.Layer:
    """flatten -> Bayesian ``length -> hidden -> hidden -> 10`` ReLU MLP (logits)."""
    kw = dict(PRIORS[prior], posterior_rho_init=rho_init)
    return layers.serial(
        layers.flatten(), layers.linear(length, hidden, **kw), layers.relu, layers.linear(hidden, hidden, **kw),
        layers.relu, layers.linear(hidden, 10, **kw),
    )  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = example_parser(
        __doc__, epochs=30, samples=1, eval_samples=50, batch_size=64, lr=0.003, compile_default=True,
        plot="the reliability diagram",
    )  # fmt: skip
    parser.add_argument(
        "--num-samples", type=int, default=None, help="generate this many sequences (80/20 split; default 5000)"
    )
    parser.add_argument("--prior", choices=sorted(PRIORS), default="mixture", help="prior on every weight")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="units per hidden layer")
    parser.add_argument("--rho-init", type=float, default=-5.0, help="initial posterior rho")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    x_train, y_train, x_test, y_test = load_data(args.num_samples)
    key = Key(args.seed)
    model = build_model(args.prior, x_train.shape[-1], args.hidden, args.rho_init)
    return train_and_report(
        model, x_train, y_train, x_test, y_test, args, key=key,
        title=f"MNIST-1D, Bayesian MLP, {len(x_train)} train / {len(x_test)} test sequences",
        ood_label="shuffled sequences", ood_inputs=shuffled_positions(key.fold_in(1), x_test),
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
