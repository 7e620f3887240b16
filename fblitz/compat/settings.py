"""BLiTZ's keyword spelling of the Bayesian settings, translated into a :class:`fblitz.layers.Bayes`.

The core layers take one settings value (``bayes=Bayes(...)``); BLiTZ spells
the same settings as keyword arguments of every layer. :func:`blitz_settings`
is the one place that reads BLiTZ's spelling: the compat modules build their
fblitz layers with it, and ported code can too.

Example:
    >>> from fblitz import layers
    >>> settings = blitz_settings(prior_pi=0.5, prior_sigma_1=1.0, prior_sigma_2=0.0025, posterior_rho_init=-5.0)
    >>> settings.rho_init, settings.prior
    (-5.0, ScaleMixturePrior(pi=0.5, sigma1=1.0, sigma2=0.0025))
    >>> layer = layers.linear(3, 2, bayes=settings)
"""

from __future__ import annotations

from fblitz import _checks
from fblitz.layers.settings import Bayes
from fblitz.priors import Prior, blitz_default, check_prior


def blitz_settings(
    prior_sigma_1: float = 0.1,
    prior_sigma_2: float = 0.4,
    prior_pi: float = 1.0,
    posterior_mu_init: float = 0.0,
    posterior_rho_init: float | None = None,
    freeze: bool = False,
    prior: Prior | None = None,
    *,
    posterior_mu_std: float = 0.1,
    posterior_rho_std: float = 0.1,
    estimator: str = "reparameterization",
    posterior: str = "gaussian",
) -> Bayes:
    """The :class:`~fblitz.layers.Bayes` that BLiTZ's layer arguments describe.

    Args:
        prior_sigma_1, prior_sigma_2, prior_pi: BLiTZ's scale-mixture prior
            ``pi * N(0, sigma_1^2) + (1 - pi) * N(0, sigma_2^2)``, used unless
            ``prior`` is given. The defaults (``BayesianLinear``'s; its other
            layers have ``prior_sigma_2=0.002``, the same prior with ``pi=1``)
            give N(0, 0.1^2).
        posterior_mu_init, posterior_mu_std: means start at N(mu_init, mu_std^2).
        posterior_rho_init, posterior_rho_std: rho starts at N(rho_init,
            rho_std^2); ``posterior_rho_init=None`` keeps each layer's BLiTZ
            default (-7 for linear and conv1d, -6 for the others).
        freeze: always use the means.
        prior: an fblitz prior (:mod:`fblitz.priors`) instead of the mixture.
        estimator, posterior: as in :class:`~fblitz.layers.Bayes`.

    Raises:
        FblitzTypeError, FblitzValueError: naming BLiTZ's argument.
    """
    if prior is None:
        prior = blitz_default(prior_sigma_1, prior_sigma_2, prior_pi)
    return Bayes(
        prior=check_prior("prior", prior),
        mu_init=_checks.real_number("posterior_mu_init", posterior_mu_init),
        mu_std=_checks.non_negative("posterior_mu_std", posterior_mu_std),
        rho_init=None if posterior_rho_init is None else _checks.real_number("posterior_rho_init", posterior_rho_init),
        rho_std=_checks.non_negative("posterior_rho_std", posterior_rho_std),
        posterior=posterior,
        estimator=estimator,
        freeze=_checks.boolean("freeze", freeze),
    )
