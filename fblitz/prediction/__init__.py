"""Prediction: the network's outputs under S weight draws, and closed-form moments.

* :mod:`fblitz.prediction.sampling` -- :func:`predict` (S draws evaluated in
  parallel, in groups of rows x draws), :func:`predict_with_eps` for given
  noise, :func:`predict_mean_weights` (the posterior means);
* :mod:`fblitz.prediction.predictor` -- :func:`make_predictor`, the same
  prediction built once (optionally compiled) for many calls;
* :mod:`fblitz.prediction.moments` -- :func:`predictive_moments`, the mean and
  variance of each output in closed form, without draws.

The draws are summarised by :mod:`fblitz.metrics` (mean and std, intervals)
and turned into a predictive distribution with the observation noise by
:mod:`fblitz.predictive`.
"""

from fblitz.prediction.moments import predictive_moments
from fblitz.prediction.predictor import make_predictor
from fblitz.prediction.sampling import (
    ROWS_X_DRAWS_PER_CALL,
    evaluation_forward,
    predict,
    predict_mean_weights,
    predict_with_eps,
)

__all__ = [
    "ROWS_X_DRAWS_PER_CALL",
    "evaluation_forward",
    "make_predictor",
    "predict",
    "predict_mean_weights",
    "predict_with_eps",
    "predictive_moments",
]
