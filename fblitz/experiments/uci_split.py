"""One split of the UCI protocol: choose the KL weight and the noise factor on held-out TRAINING rows, then test.

With one KL weight and no recalibration, the model is trained on the training
part and scored on the test part. Otherwise 10% of the training part is held
out (never a test row):

1. for each candidate KL weight of ``config.kl_weights``, a model trained on the
   other 90% predicts the held-out rows; with ``config.recalibrate`` its
   noise-scale factor is fitted there by maximum likelihood;
2. the candidate with the highest held-out log-likelihood (after its factor)
   is kept;
3. with ``config.refit`` it is retrained on the whole training part (else the
   90% model is used), and its factor scales the noise of the test predictive.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fblitz.experiments.splits import Split
from fblitz.experiments.uci_model import Config, Trained, predictive_on, train, validation_split
from fblitz.experiments.uci_predictive import fit_noise_factor, log_likelihood, score
from fblitz.random import KeyLike, as_key


class Candidate(NamedTuple):
    """A KL weight tried on the held-out rows: its log-likelihood there, noise factor and model."""

    kl_weight: float
    held_out_log_likelihood: float
    noise_factor: float
    trained: Trained


def try_candidates(
    features: torch.Tensor, target: torch.Tensor, split: Split, config: Config, keys: tuple, *, progress: bool = False
) -> list[Candidate]:
    """Train one model per KL weight on 90% of ``split.train``; score each on the other 10%."""
    k_held, k_train, k_pred = keys
    inner = validation_split(split, k_held)
    held_targets = target[inner.test]
    candidates = []
    for weight in config.kl_weights:
        trained = train(features, target, inner.train, config, k_train, kl_weight=weight, progress=progress)
        held = predictive_on(trained, features, inner.test, config, k_pred)
        factor = fit_noise_factor(held, held_targets) if config.recalibrate else 1.0
        value = log_likelihood(held.with_noise_factor(factor), held_targets)
        candidates.append(Candidate(weight, value, factor, trained))
    return candidates


def run_split(
    features: torch.Tensor, target: torch.Tensor, split: Split, config: Config, key: KeyLike, *, progress: bool = False
) -> dict:
    """Train on ``split.train`` (choosing and calibrating on held-out training rows), score ``split.test``.

    ``progress`` shows the progress display of each model's training on stderr.

    Returns:
        The scores of :func:`fblitz.experiments.uci_predictive.score` (original
        units) plus ``kl_weight`` (the one kept), ``noise_factor`` and
        ``train_seconds`` (every model of the split).
    """
    k_held, k_train, k_pred, k_score = as_key(key).split(4)
    if len(config.kl_weights) == 1 and not config.recalibrate:
        trained = train(
            features, target, split.train, config, k_train, kl_weight=config.kl_weights[0], progress=progress
        )
        weight, factor, seconds = config.kl_weights[0], 1.0, trained.train_seconds
    else:
        candidates = try_candidates(features, target, split, config, (k_held, k_train, k_pred), progress=progress)
        best = max(candidates, key=lambda c: c.held_out_log_likelihood)
        weight, factor, trained = best.kl_weight, best.noise_factor, best.trained
        seconds = sum(c.trained.train_seconds for c in candidates)
        if config.refit:
            trained = train(features, target, split.train, config, k_train, kl_weight=weight, progress=progress)
            seconds += trained.train_seconds
    predictive = predictive_on(trained, features, split.test, config, k_pred).with_noise_factor(factor)
    result = score(predictive, target[split.test], key=k_score, draws=config.coverage_draws)
    return result | {"kl_weight": weight, "noise_factor": factor, "train_seconds": seconds}
