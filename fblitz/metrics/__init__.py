"""Evaluation metrics: regression accuracy, calibration, classification and uncertainty.

Every function checks its tensors' shapes and kinds and raises
:class:`~fblitz.errors.FblitzValueError` / :class:`~fblitz.errors.FblitzTypeError`
naming the argument; nothing is broadcast.

* :mod:`fblitz.metrics.regression` -- RMSE, Gaussian and Gaussian-mixture
  log-likelihoods, interval accuracy and width;
* :mod:`fblitz.metrics.student_t` -- the Student-t mixture predictive's
  log-likelihood and seeded samples;
* :mod:`fblitz.metrics.summaries` -- predictive mean and std, mean +/- k std
  and quantile intervals of predictive samples;
* :mod:`fblitz.metrics.coverage` -- interval coverage (PICP) at any level and
  the regression calibration curve;
* :mod:`fblitz.metrics.classification` -- accuracy, Brier score, NLL;
* :mod:`fblitz.metrics.reliability` -- expected calibration error with
  equal-width or equal-mass bins and the reliability-diagram data;
* :mod:`fblitz.metrics.uncertainty` -- predictive entropy, expected
  (aleatoric) entropy and mutual information (epistemic).
"""

from fblitz.metrics.classification import accuracy, brier_score, classification_nll
from fblitz.metrics.coverage import CalibrationCurve, calibration_curve, interval_coverage
from fblitz.metrics.regression import (
    IntervalAccuracy,
    gaussian_mixture_log_likelihood,
    gaussian_nll,
    interval_accuracy,
    mean_interval_width,
    rmse,
)
from fblitz.metrics.reliability import BINNINGS, CalibrationError, ReliabilityBins, expected_calibration_error
from fblitz.metrics.student_t import student_t_mixture_log_likelihood, student_t_mixture_samples
from fblitz.metrics.summaries import (
    gaussian_mixture_mean_std,
    mean_std_interval,
    predictive_mean_std,
    quantile_interval,
)
from fblitz.metrics.uncertainty import (
    UncertaintyDecomposition,
    expected_entropy,
    mutual_information,
    predictive_entropy,
    uncertainty_decomposition,
)

__all__ = [
    "BINNINGS",
    "CalibrationCurve",
    "CalibrationError",
    "IntervalAccuracy",
    "ReliabilityBins",
    "UncertaintyDecomposition",
    "accuracy",
    "brier_score",
    "calibration_curve",
    "classification_nll",
    "expected_calibration_error",
    "expected_entropy",
    "gaussian_mixture_log_likelihood",
    "gaussian_mixture_mean_std",
    "gaussian_nll",
    "interval_accuracy",
    "interval_coverage",
    "mean_interval_width",
    "mean_std_interval",
    "mutual_information",
    "predictive_entropy",
    "predictive_mean_std",
    "quantile_interval",
    "rmse",
    "student_t_mixture_log_likelihood",
    "student_t_mixture_samples",
    "uncertainty_decomposition",
]
