"""The UCI runner's model and training: one Bayes-by-Backprop MLP per split.

A ``D -> hidden (ReLU) -> K`` mean-field Gaussian MLP with ``N(0, prior_sigma^2)``
weight priors, trained with :func:`fblitz.training.fit` (Adam, KL weight
``kl_weight / N_train`` for a ``kl_weight`` of ``config.kl_weights``) on features
and target standardised with statistics of the training rows only. The
observation noise is Gaussian or Student-t, with a
scale that is one learned constant (``noise="homoscedastic"``) or a second
output of the network (``"heteroscedastic"``); a Student-t's degrees of
freedom are fixed (``df``) or one learned constant.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fblitz import layers, likelihoods, optim, priors
from fblitz.experiments.splits import Split
from fblitz.experiments.standardize import Standardizer
from fblitz.experiments.uci_predictive import MIN_DF, MIN_SIGMA
from fblitz.prediction import predict
from fblitz.predictive import ContinuousMixture, from_draws
from fblitz.random import KeyLike, as_key, permutation
from fblitz.training import KLSchedule, fit
from fblitz.variational.distributions import inverse_softplus

LIKELIHOODS = ("gaussian", "student_t")
NOISES = ("homoscedastic", "heteroscedastic")


class Config(NamedTuple):
    """Hyperparameters, fixed across splits (the defaults are the recommended recipe)."""

    epochs: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    n_samples: int = 3
    eval_samples: int = 200
    hidden: int = 50
    prior_sigma: float = 1.0
    rho_init: float = -5.0
    noise_init: float = 0.5
    estimator: str = "reparameterization"
    compile: bool = True
    likelihood: str = "student_t"
    noise: str = "homoscedastic"
    df: float | None = None
    df_init: float = 10.0
    kl_weights: tuple[float, ...] = (1.0, 0.1)
    coverage_draws: int = 50
    recalibrate: bool = True
    refit: bool = True


def build_model(in_features: int, config: Config) -> layers.Layer:
    """The Bayesian MLP; outputs ``[location, raw scale]`` and, for a learned df, ``raw df``."""

    settings = layers.Bayes(prior=priors.gaussian(config.prior_sigma), rho_init=config.rho_init)

    def bayesian(n_in, n_out):
        return layers.linear(n_in, n_out, bayes=settings)

    stack = [bayesian(in_features, config.hidden), layers.relu]
    if config.noise == "heteroscedastic":
        # the raw scale starts near inverse_softplus(noise_init) rather than near 0
        offset = float(inverse_softplus(torch.tensor(config.noise_init, dtype=torch.float64)))
        stack += [bayesian(config.hidden, 2), layers.stateless(lambda out: out + out.new_tensor([0.0, offset]))]
    else:
        stack += [bayesian(config.hidden, 1), layers.learned_noise(1, init_sigma=config.noise_init)]
    if config.likelihood == "student_t" and config.df is None:
        stack.append(layers.learned_df(1, init_df=config.df_init, min_df=MIN_DF))
    return layers.serial(*stack)


def make_likelihood(config: Config) -> likelihoods.Likelihood:
    """The training likelihood named by ``config.likelihood``."""
    if config.likelihood == "student_t":
        return likelihoods.student_t(config.df, min_sigma=MIN_SIGMA, min_df=MIN_DF)
    return likelihoods.heteroscedastic_gaussian(MIN_SIGMA)


def validation_split(split: Split, key: KeyLike, fraction: float = 0.1) -> Split:
    """Hold out a random ``fraction`` of the TRAINING rows as a test part (for tuning or recalibration)."""
    order = split.train[permutation(key, len(split.train))]
    n_held = max(1, round(fraction * len(order)))
    return Split(order[n_held:], order[:n_held])


class SplitData(NamedTuple):
    """One split ready for training: float32 standardised inputs, test targets in original units."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    y_scaler: Standardizer


def prepare_split(features: torch.Tensor, target: torch.Tensor, split: Split) -> SplitData:
    """Standardise features and target with statistics of the TRAINING rows only."""
    x_scaler = Standardizer.fit(features[split.train])
    y_scaler = Standardizer.fit(target[split.train])
    as_input = lambda t: t.to(torch.float32)  # noqa: E731
    return SplitData(
        as_input(x_scaler.transform(features[split.train])),
        as_input(y_scaler.transform(target[split.train])),
        as_input(x_scaler.transform(features[split.test])),
        target[split.test],
        y_scaler,
    )


class Trained(NamedTuple):
    """A model trained on some rows, with the standardisers fitted on those rows."""

    model: layers.Layer
    params: dict
    x_scaler: Standardizer
    y_scaler: Standardizer
    train_seconds: float


def train(
    features: torch.Tensor,
    target: torch.Tensor,
    rows: torch.Tensor,
    config: Config,
    key: KeyLike,
    *,
    kl_weight: float,
    progress: bool = False,
) -> Trained:
    """Standardise on ``rows`` and train the model of ``config`` on them, KL weighted ``kl_weight / len(rows)``.

    ``kl_weight`` 1 is the ELBO; below 1 a tempered posterior (weights fit the data more closely).
    ``progress`` shows :func:`fblitz.training.fit`'s progress display on stderr.
    """
    k_init, k_fit = as_key(key).split(2)
    x_scaler, y_scaler = Standardizer.fit(features[rows]), Standardizer.fit(target[rows])
    x_train = x_scaler.transform(features[rows]).to(torch.float32)
    y_train = y_scaler.transform(target[rows]).to(torch.float32)
    model = build_model(features.shape[1], config)
    result = fit(
        model,
        model.init(k_init),
        x_train,
        y_train,
        likelihood=make_likelihood(config),
        optimizer=optim.adam(config.lr),
        key=k_fit,
        epochs=config.epochs,
        batch_size=config.batch_size,
        n_samples=config.n_samples,
        kl=KLSchedule(complexity_cost_weight=kl_weight / len(x_train)),
        estimator=config.estimator,
        compile=config.compile,
        progress=progress,
    )
    return Trained(model, result.params, x_scaler, y_scaler, result.history["seconds"])


def predictive_on(
    trained: Trained, features: torch.Tensor, rows: torch.Tensor, config: Config, key: KeyLike
) -> ContinuousMixture:
    """The predictive of ``config.eval_samples`` weight draws on ``rows``, in original units (float64).

    A :class:`~fblitz.predictive.GaussianMixture` or
    :class:`~fblitz.predictive.StudentTMixture` over the draws, with the noise
    of the training likelihood, moved back to the target's units.
    """
    x = trained.x_scaler.transform(features[rows]).to(torch.float32)
    with torch.no_grad():
        outputs = predict(trained.model, trained.params, x, key=key, n_samples=config.eval_samples)
    # the key of a Student-t's quantiles (the runner reads its coverage off its own seeded draws)
    predictive = from_draws(outputs.double(), make_likelihood(config), key=as_key(key).fold_in(1))
    return predictive.affine(trained.y_scaler.mean, trained.y_scaler.scale)
