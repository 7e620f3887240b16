"""fblitz: functional Bayes by Backprop on ``torch.func``.

Bayesian layers are pure functions over an explicit variational-parameter
pytree; ``torch.func.vmap`` evaluates many weight draws at once and
``torch.func.grad`` drives optax-shaped optimizers.
"""

from fblitz import (
    bridge,
    datasets,
    distributed,
    distributions,
    errors,
    estimators,
    flat,
    interop,
    kl,
    layers,
    likelihoods,
    metrics,
    models,
    moped,
    objectives,
    optim,
    posterior,
    predict,
    predictive,
    predictor,
    priors,
    radial,
    random,
    seeded,
    sharpening,
    train,
    tree,
)
from fblitz.bridge import bayesify, to_module
from fblitz.errors import FblitzError, FblitzTypeError, FblitzValueError, NonFiniteError
from fblitz.flat import from_flat_dict, to_flat_dict
from fblitz.kl import kl_divergence
from fblitz.layers import Layer, linear, relu, sample_noise, serial
from fblitz.objectives import ElboTerms, elbo_samples, negative_elbo, sample_elbo
from fblitz.predict import mfvi_forward, predict_mean_weights, predictive_mean_std
from fblitz.predictive import predictive_distribution
from fblitz.predictor import make_predictor
from fblitz.random import Key, sample_eps, split
from fblitz.train import fit, kl_weights, make_train_step, minibatch_weights

__version__ = "0.1.0"

__all__ = [
    "ElboTerms",
    "FblitzError",
    "FblitzTypeError",
    "FblitzValueError",
    "Key",
    "Layer",
    "NonFiniteError",
    "bayesify",
    "bridge",
    "datasets",
    "distributed",
    "distributions",
    "elbo_samples",
    "errors",
    "estimators",
    "fit",
    "flat",
    "from_flat_dict",
    "interop",
    "kl",
    "kl_divergence",
    "kl_weights",
    "layers",
    "likelihoods",
    "linear",
    "make_predictor",
    "make_train_step",
    "metrics",
    "mfvi_forward",
    "minibatch_weights",
    "models",
    "moped",
    "negative_elbo",
    "objectives",
    "optim",
    "posterior",
    "predict",
    "predict_mean_weights",
    "predictive",
    "predictive_distribution",
    "predictive_mean_std",
    "predictor",
    "priors",
    "radial",
    "random",
    "relu",
    "sample_elbo",
    "sample_eps",
    "sample_noise",
    "seeded",
    "serial",
    "sharpening",
    "split",
    "to_flat_dict",
    "to_module",
    "train",
    "tree",
]
