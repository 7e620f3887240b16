"""One value for the Bayesian settings of the weight layers: :class:`Bayes`.

Every layer with Gaussian weights (``linear``, the convolutions, ``embedding``,
``lstm``/``gru``/``rnn``, the models built on them and
:func:`fblitz.bridge.bayesify`) takes its prior, posterior initialisation,
posterior family, estimator and ``freeze`` from one immutable, validated
:class:`Bayes` passed as ``bayes=``. Build it once and give it to every layer
of a model::

    settings = Bayes(prior=priors.gaussian(1.0), rho_init=-5.0)
    model = serial(linear(13, 64, bayes=settings), relu, linear(64, 1, bayes=settings))

``None`` (the default of ``prior`` and ``rho_init``) means each layer's own
BLiTZ default, so one value fits layers whose BLiTZ defaults differ
(rho starts at -7 in ``linear``/``conv1d``, at -6 in the other layers).
BLiTZ's keyword spelling (``prior_sigma_1``, ``posterior_rho_init``, ...) is
kept by :mod:`fblitz.compat` only; :func:`fblitz.compat.blitz_settings`
translates it into a :class:`Bayes`.

Example:
    >>> settings = Bayes(rho_init=-5.0)
    >>> settings.replace(estimator="flipout").estimator, settings.rho_init
    ('flipout', -5.0)
"""

from __future__ import annotations

import dataclasses
import functools

from fblitz import _checks
from fblitz.errors import FblitzTypeError
from fblitz.priors import Prior, check_prior
from fblitz.variational.estimators import ESTIMATORS, check_estimator
from fblitz.variational.radial import check_posterior

# BLiTZ's keyword -> what to write instead (in the message of a core layer that is given one)
BLITZ_KEYWORDS = {
    "prior_sigma_1": "prior=fblitz.priors.scale_mixture(pi, sigma1, sigma2)",
    "prior_sigma_2": "prior=fblitz.priors.scale_mixture(pi, sigma1, sigma2)",
    "prior_pi": "prior=fblitz.priors.scale_mixture(pi, sigma1, sigma2)",
    "prior_dist": "prior=...",
    "posterior_mu_init": "mu_init=...",
    "posterior_mu_std": "mu_std=...",
    "posterior_rho_init": "rho_init=...",
    "posterior_rho_std": "rho_std=...",
    "prior": "prior=...",
    "freeze": "freeze=...",
    "estimator": "estimator=...",
    "posterior": "posterior=...",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Bayes:
    """The Bayesian settings of a weight layer (immutable; every field is validated).

    Attributes:
        prior: the prior of every weight tensor (:mod:`fblitz.priors`); None:
            BLiTZ's default, N(0, 0.1^2) as its scale mixture with ``pi=1``.
        mu_init, mu_std: means start at N(mu_init, mu_std^2).
        rho_init, rho_std: rho starts at N(rho_init, rho_std^2) (sigma =
            softplus(rho)); ``rho_init=None``: the layer's BLiTZ default (-7
            for ``linear`` and ``conv1d``, -6 for the others).
        posterior: ``"gaussian"`` or ``"radial"`` (:mod:`fblitz.variational.radial`).
        estimator: the layer's default estimator, ``"reparameterization"``,
            ``"local_reparameterization"`` or ``"flipout"``
            (:mod:`fblitz.variational.estimators`); a layer raises for one it lacks.
        freeze: always use the means (no weight noise).

    Raises:
        FblitzTypeError, FblitzValueError: naming the field, for a bad value.

    Example:
        >>> from fblitz import priors
        >>> settings = Bayes(prior=priors.gaussian(1.0), mu_std=0.05)
        >>> settings.replace(freeze=True).freeze, settings.freeze
        (True, False)
    """

    prior: Prior | None = None
    mu_init: float = 0.0
    mu_std: float = 0.1
    rho_init: float | None = None
    rho_std: float = 0.1
    posterior: str = "gaussian"
    estimator: str = "reparameterization"
    freeze: bool = False

    def __post_init__(self):
        checked = {
            "prior": None if self.prior is None else check_prior("prior", self.prior),
            "mu_init": _checks.real_number("mu_init", self.mu_init),
            "mu_std": _checks.non_negative("mu_std", self.mu_std),
            "rho_init": None if self.rho_init is None else _checks.real_number("rho_init", self.rho_init),
            "rho_std": _checks.non_negative("rho_std", self.rho_std),
            "estimator": check_estimator("estimator", self.estimator, ESTIMATORS),
            "freeze": _checks.boolean("freeze", self.freeze),
        }
        checked["posterior"] = check_posterior("posterior", self.posterior, checked["estimator"])
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes) -> Bayes:
        """A new :class:`Bayes` with ``changes`` (field names) applied and validated."""
        unknown = sorted(set(changes) - {field.name for field in dataclasses.fields(self)})
        if unknown:
            raise FblitzTypeError(_unknown_message("Bayes.replace", unknown))
        return dataclasses.replace(self, **changes)


def _unknown_message(where: str, names: list[str]) -> str:
    fields = ", ".join(field.name for field in dataclasses.fields(Bayes))
    hints = "; ".join(f"{name} -> {BLITZ_KEYWORDS[name]}" for name in names if name in BLITZ_KEYWORDS)
    message = f"{where} got unexpected keyword argument(s) {names}; the Bayesian settings are bayes=Bayes({fields})"
    if hints:
        message += (
            f" ({hints}). BLiTZ's keywords are spelled as BLiTZ's only in fblitz.compat: "
            "fblitz.compat.blitz_settings(...) turns them into a Bayes, fblitz.compat.modules has BLiTZ's layers"
        )
    return message


def check_bayes(bayes: object) -> Bayes:
    """``bayes`` if it is a :class:`Bayes`, ``Bayes()`` for None; else a clear error."""
    if bayes is None:
        return Bayes()
    if not isinstance(bayes, Bayes):
        raise FblitzTypeError(f"bayes must be a fblitz.layers.Bayes (or None for the defaults), got {bayes!r}")
    return bayes


def takes_bayes(constructor):
    """Wrap a layer constructor: BLiTZ's keywords (``posterior_rho_init``, ...) get a message pointing to ``bayes``."""

    @functools.wraps(constructor)
    def wrapper(*args, **kwargs):
        blitz = sorted(name for name in kwargs if name in BLITZ_KEYWORDS)
        if blitz:
            raise FblitzTypeError(_unknown_message(f"{constructor.__name__}()", blitz))
        return constructor(*args, **kwargs)

    return wrapper


__all__ = ["BLITZ_KEYWORDS", "Bayes", "check_bayes", "takes_bayes"]
