"""The predictive distribution of a Bayesian network: one call, weight draws and observation noise together.

With S weight draws w_s the posterior predictive of a target y is the equally
weighted mixture ``p(y | x) = (1/S) sum_s p(y | f(w_s, x))``, each component
being the likelihood's observation distribution (a Gaussian or Student-t with
the network's or a learned noise scale, a categorical, a Bernoulli). Its
spread has two parts: the disagreement between the draws (epistemic) and the
observation noise within each draw (aleatoric). Intervals taken from the
network outputs alone (:func:`fblitz.prediction.predict`) hold only the first
part, which is why they under-cover.

Example:
    >>> import torch
    >>> from fblitz import layers, likelihoods
    >>> model = layers.serial(layers.linear(3, 8), layers.relu, layers.linear(8, 1), layers.learned_noise(1))
    >>> params = model.init(0)
    >>> pred = predictive_distribution(model, params, torch.ones(5, 3),
    ...                                likelihood=likelihoods.heteroscedastic_gaussian(), key=1, n_samples=50)
    >>> pred.mean.shape, pred.interval(0.9)[0].shape, pred.log_prob(torch.zeros(5, 1)).shape
    (torch.Size([5, 1]), torch.Size([5, 1]), torch.Size([5]))
    >>> bool((pred.variance >= pred.aleatoric_variance).all())
    True
"""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers.base import Layer
from fblitz.likelihoods import Likelihood, as_likelihood
from fblitz.prediction import predict
from fblitz.predictive.categorical import BernoulliMixture, CategoricalMixture
from fblitz.predictive.continuous import GaussianMixture, StudentTMixture
from fblitz.random import KeyLike, as_key
from fblitz.tree import PyTree

NO_NOISE_MODEL = (
    "likelihood {name} has no noise model, so a predictive interval would hold the spread of the weight draws "
    "only and under-cover. Train with a likelihood that models the noise (layers.learned_noise + "
    "likelihoods.heteroscedastic_gaussian(), likelihoods.student_t(), likelihoods.categorical(), ...). "
    "A model trained with the mean squared error was trained with the Gaussian likelihood of variance 1/2 "
    "(the two losses differ by a constant): pass likelihoods.gaussian(sigma=0.5 ** 0.5) for it. For the "
    "spread of the weight draws alone, use fblitz.prediction.predict and predictive_mean_std"
)


def check_draws(draws: object) -> torch.Tensor:
    """``draws`` if it is a floating (S, B, ...) tensor of network outputs with S >= 1."""
    _checks.tensor("draws", draws, floating=True)
    if draws.dim() < 2 or draws.shape[0] < 1:
        raise FblitzValueError(
            f"draws must have shape (S, B, ...): S weight draws of the outputs for B inputs, got {tuple(draws.shape)}"
        )
    return _checks.finite_result("the network outputs (draws)", draws)


def from_draws(draws: torch.Tensor, likelihood: Likelihood, *, key: KeyLike | None = None):
    """The predictive distribution of network outputs ``draws`` (S, B, ...) under ``likelihood``.

    For draws made elsewhere, e.g. by a compiled :func:`fblitz.make_predictor`.

    Args:
        draws: (S, B, ...) the network outputs of S weight draws.
        likelihood: the likelihood the network was trained with; it sets the
            observation distribution (see :class:`fblitz.likelihoods.NoiseModel`).
        key: only for the Student-t, whose intervals come from seeded samples.

    Returns:
        A :class:`~fblitz.predictive.GaussianMixture`,
        :class:`~fblitz.predictive.StudentTMixture`,
        :class:`~fblitz.predictive.CategoricalMixture` or
        :class:`~fblitz.predictive.BernoulliMixture`.

    Raises:
        FblitzValueError: the likelihood has no noise model (a bare criterion
            such as the mean squared error); the message says what to use.
    """
    likelihood = as_likelihood(likelihood)
    if likelihood.noise_model is None:
        raise FblitzValueError(NO_NOISE_MODEL.format(name=likelihood.name))
    draws = check_draws(draws)
    family, parameters = likelihood.noise_model
    if family == "categorical":
        if draws.dim() != 3:
            raise FblitzValueError(f"categorical draws must be logits of shape (S, B, C), got {tuple(draws.shape)}")
        return CategoricalMixture(draws)
    if family == "bernoulli":
        return BernoulliMixture(draws)
    parts = parameters(draws)
    if family == "gaussian":
        return GaussianMixture(draws, *parts)
    if family == "student_t":
        if key is None:
            raise FblitzTypeError("key must be given for a Student-t predictive: its intervals come from seeded draws")
        return StudentTMixture(draws, *parts, key=as_key(key))
    raise FblitzValueError(f"likelihood {likelihood.name} has an unknown noise family {family!r}")


def predictive_distribution(
    model: Layer,
    params: PyTree,
    inputs: torch.Tensor,
    *,
    likelihood,
    key: KeyLike,
    n_samples: int = 100,
    state: PyTree | None = None,
    estimator: str | None = None,
    batch_size: int | None = None,
    sample_batch_size: int | None = None,
):
    """The posterior predictive at ``inputs``: ``n_samples`` weight draws, each with the likelihood's noise.

    Args:
        model, params: the model and its trained variational parameters.
        inputs: (B, ...) the inputs.
        likelihood: the likelihood the model was trained with (a
            :mod:`fblitz.likelihoods` likelihood with a noise model).
        key: random key or seed; the weight draws come from one half of it,
            the Student-t interval samples from the other.
        n_samples: S, the weight draws (more draws, steadier intervals and
            log-likelihoods; 100 is plenty for most regressions).
        state, estimator, batch_size, sample_batch_size: as for
            :func:`fblitz.prediction.predict`.

    Returns:
        A predictive object (see :func:`from_draws`): ``mean``,
        ``epistemic_variance``, ``aleatoric_variance``, ``variance``, ``std``,
        ``interval(level)``, ``log_prob(targets)``, ``coverage(targets, level)``,
        ``calibration_curve(targets)``, ``sample(key, n)`` and ``draws`` for
        regression; ``probs``, ``entropy``, ``mutual_information``, ... for
        classification.
    """
    likelihood = as_likelihood(likelihood)
    if likelihood.noise_model is None:  # before drawing anything
        raise FblitzValueError(NO_NOISE_MODEL.format(name=likelihood.name))
    k_weights, k_noise = as_key(key).split(2)
    draws = predict(
        model,
        params,
        inputs,
        key=k_weights,
        n_samples=_checks.integer("n_samples", n_samples, minimum=1),
        state=state,
        estimator=estimator,
        batch_size=batch_size,
        sample_batch_size=sample_batch_size,
    )
    return from_draws(draws, likelihood, key=k_noise)
