"""Training and evaluation shared by the classification examples (digits, MNIST-1D).

:func:`train_and_report` trains a model with a categorical likelihood, scores
its Monte Carlo predictive with :func:`evaluate`, optionally saves a
reliability diagram, and prints or returns the scores.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from fblitz import layers, likelihoods, metrics, optim
from fblitz.prediction import predict
from fblitz.random import Key, uniform
from fblitz.train import fit


def class_probabilities(model, params, x, *, key, n_samples: int) -> torch.Tensor:
    """Softmax probabilities of ``n_samples`` weight draws: (S, N, 10)."""
    return torch.softmax(predict(model, params, x, key=key, n_samples=n_samples), dim=-1)


def evaluate(model, params, x, y, *, key, n_samples: int, ood_inputs: torch.Tensor | None = None) -> dict:
    """Accuracy, NLL, ECE and uncertainty of the Monte Carlo predictive on (x, y).

    ``ood_inputs`` are the out-of-distribution inputs whose entropy and mutual
    information are reported; by default uniform noise of ``x``'s shape.
    ``reliability_bins`` holds the ECE's bins (for a reliability diagram).
    """
    k_test, k_ood, k_noise = key.split(3)
    samples = class_probabilities(model, params, x, key=k_test, n_samples=n_samples)
    probs = samples.mean(dim=0)
    in_dist = metrics.uncertainty_decomposition(samples)
    if ood_inputs is None:
        ood_inputs = uniform(k_noise, x.shape, dtype=x.dtype)
    ood = metrics.uncertainty_decomposition(
        class_probabilities(model, params, ood_inputs, key=k_ood, n_samples=n_samples)
    )
    calibration = metrics.expected_calibration_error(probs, y, n_bins=15)
    return {
        "accuracy": metrics.accuracy(probs, y),
        "nll": metrics.classification_nll(probs, y),
        "ece": calibration.ece,
        "reliability_bins": calibration.bins,
        "brier": metrics.brier_score(probs, y),
        "entropy_test": float(in_dist.total.mean()),
        "mutual_information_test": float(in_dist.epistemic.mean()),
        "entropy_ood": float(ood.total.mean()),
        "mutual_information_ood": float(ood.epistemic.mean()),
    }


def train_and_report(
    model: layers.Layer,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    args: argparse.Namespace,
    *,
    key: Key,
    title: str,
    ood_label: str,
    ood_inputs: torch.Tensor | None = None,
) -> dict:
    """Fit with Adam and ``complexity_cost_weight = 1 / N``, evaluate, plot and print.

    ``args`` holds the options of :func:`fblitz.examples._cli.example_parser`
    (with ``--plot``). Returns the scores of :func:`evaluate` without the bins,
    plus the training time and the first and last epoch losses.
    """
    k_init, k_fit, k_eval = key.split(3)
    start = time.perf_counter()
    result = fit(
        model, model.init(k_init), x_train, y_train, likelihood=likelihoods.categorical(),
        optimizer=optim.adam(args.lr), key=k_fit, epochs=args.epochs, batch_size=args.batch_size,
        n_samples=args.samples, complexity_cost_weight=1.0 / len(x_train), compile=args.compile,
        progress=not args.quiet,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    scores = evaluate(
        model, result.params, x_test, y_test, key=k_eval, n_samples=args.eval_samples, ood_inputs=ood_inputs
    )
    bins = scores.pop("reliability_bins")
    if args.plot:
        from fblitz.plots import reliability_diagram

        plot_title = f"{title.split(',')[0]}: ECE {scores['ece']:.3f}, accuracy {scores['accuracy']:.3f}"
        reliability_diagram(bins, title=plot_title, path=args.plot)
    history = result.history["loss"]
    scores.update(
        train_seconds=seconds,
        epochs=args.epochs,
        first_loss=history[0] if history else None,
        final_loss=history[-1] if history else None,
    )
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"{title}, {args.epochs} epochs")
        print(f"  accuracy            {scores['accuracy']:.4f}")
        print(f"  NLL                 {scores['nll']:.4f}")
        print(f"  ECE (15 bins)       {scores['ece']:.4f}")
        print(f"  Brier score         {scores['brier']:.4f}")
        print(f"  entropy             test {scores['entropy_test']:.3f}   {ood_label} {scores['entropy_ood']:.3f}")
        print(
            f"  mutual information  test {scores['mutual_information_test']:.3f}   "
            f"{ood_label} {scores['mutual_information_ood']:.3f}"
        )
        print(f"  training time       {seconds:.1f} s")
        if args.plot:
            print(f"  reliability diagram saved to {args.plot}")
    return scores
