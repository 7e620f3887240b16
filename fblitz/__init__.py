"""fblitz: functional Bayes by Backprop on ``torch.func``.

Bayesian layers are pure functions over an explicit variational-parameter
pytree; ``torch.func.vmap`` evaluates many weight draws at once and
``torch.func.grad`` drives optax-shaped optimizers.

``__all__`` is what a user calls: every name in it that reads as a verb is a
function (``fblitz.fit``, ``fblitz.predict``, ``fblitz.bayesify``), and the
namespaces a model is built from are modules named by nouns
(``fblitz.layers``, ``fblitz.likelihoods``, ``fblitz.priors``,
``fblitz.optim``, ``fblitz.metrics``, ...). Everything else lives in its
module (``fblitz.prediction``, ``fblitz.train``, ``fblitz.objectives``, ...).

Example:
    >>> import torch
    >>> import fblitz
    >>> from fblitz import layers, likelihoods, optim
    >>> model = layers.serial(layers.linear(1, 8), layers.relu, layers.linear(8, 1))
    >>> x = torch.linspace(-1, 1, 32).unsqueeze(1)
    >>> result = fblitz.fit(model, model.init(0), x, 2 * x, likelihood=likelihoods.gaussian(0.1),
    ...                     optimizer=optim.adam(1e-2), key=1, epochs=2, batch_size=8, progress=False)
    >>> fblitz.predict(model, result.params, x, key=2, n_samples=5).shape
    torch.Size([5, 32, 1])
"""

from fblitz import (
    checkpoint,
    datasets,
    distributed,
    layers,
    likelihoods,
    metrics,
    models,
    optim,
    predictive,
    priors,
)
from fblitz.bridge import bayesify, to_module
from fblitz.checkpoint import load_checkpoint, save_checkpoint
from fblitz.errors import FblitzError, FblitzTypeError, FblitzValueError, NonFiniteError
from fblitz.flat import from_flat_dict, to_flat_dict
from fblitz.kl import kl_divergence
from fblitz.layers import Layer, sample_noise
from fblitz.objectives import ElboTerms, negative_elbo, sample_elbo
from fblitz.prediction import mfvi_forward, predict, predict_mean_weights, predictive_mean_std
from fblitz.predictive import from_draws, predictive_distribution
from fblitz.predictor import make_predictor
from fblitz.random import Key, sample_eps, split
from fblitz.train import FitResult, fit, kl_weights, make_train_step

__version__ = "0.1.0"

__all__ = [
    # the namespaces a model is built and judged from
    "checkpoint",
    "datasets",
    "distributed",
    "layers",
    "likelihoods",
    "metrics",
    "models",
    "optim",
    "predictive",
    "priors",
    # training
    "ElboTerms",
    "FitResult",
    "fit",
    "kl_divergence",
    "kl_weights",
    "make_train_step",
    "negative_elbo",
    "sample_elbo",
    # prediction
    "from_draws",
    "make_predictor",
    "mfvi_forward",
    "predict",
    "predict_mean_weights",
    "predictive_distribution",
    "predictive_mean_std",
    # keys, noise and models
    "Key",
    "Layer",
    "bayesify",
    "sample_eps",
    "sample_noise",
    "split",
    "to_module",
    # saving
    "from_flat_dict",
    "load_checkpoint",
    "save_checkpoint",
    "to_flat_dict",
    # errors
    "FblitzError",
    "FblitzTypeError",
    "FblitzValueError",
    "NonFiniteError",
]
