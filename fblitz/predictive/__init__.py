"""Predictive distributions: the weight draws and the likelihood's observation noise together.

* :func:`predictive_distribution` -- draw weights and build the predictive in one call;
* :func:`from_draws` -- the same from network outputs drawn elsewhere (e.g. a
  compiled :func:`fblitz.make_predictor`);
* the objects they return: :class:`GaussianMixture` and :class:`StudentTMixture`
  for regression (mean, epistemic / aleatoric / total variance, exact or seeded
  intervals, log-likelihood, coverage, calibration curve, samples),
  :class:`CategoricalMixture` and :class:`BernoulliMixture` for classification
  (probabilities, entropy, mutual information, log-likelihood).
"""

from fblitz.predictive.base import from_draws, predictive_distribution
from fblitz.predictive.categorical import BernoulliMixture, CategoricalMixture
from fblitz.predictive.continuous import ContinuousMixture, GaussianMixture, StudentTMixture

__all__ = [
    "BernoulliMixture",
    "CategoricalMixture",
    "ContinuousMixture",
    "GaussianMixture",
    "StudentTMixture",
    "from_draws",
    "predictive_distribution",
]
