"""BLiTZ's prior/posterior constructor arguments, written once, and their translation (internal).

Every BLiTZ layer takes its own leading arguments, then the same block
``prior_sigma_1, prior_sigma_2, prior_pi, posterior_mu_init,
posterior_rho_init, freeze, prior_dist`` (positional or by keyword; only the
defaults of ``prior_sigma_2`` and ``posterior_rho_init`` differ). A compat
layer states its own arguments with :func:`blitz_signature` and receives all
of them, bound and with defaults filled in, through :func:`takes_blitz_arguments`;
:func:`blitz_arguments` turns the block into the fblitz layer's ``bayes``
(through :func:`fblitz.compat.blitz_settings`, the one translation).
"""

from __future__ import annotations

import functools
import inspect

from fblitz.compat._module import GaussianModule
from fblitz.compat.modules.weight_sampler import PriorWeightDistribution
from fblitz.compat.settings import blitz_settings

# what BLiTZ saves for a bias it does not use (bias=False): ignored when loading
UNUSED_BIAS_KEYS = ("bias_mu", "bias_rho", "bias_sampler.mu", "bias_sampler.rho", "bias_sampler.eps_w")

_P = inspect.Parameter


def blitz_signature(*leading, sigma_2: float, rho_init: float, extra=(), var_keyword: bool = False):
    """``__init__``'s signature: ``self``, ``leading`` (names, or ``(name, default)``), BLiTZ's block, ``extra``,
    then ``**kwargs`` when ``var_keyword`` or else a keyword-only ``seed=None``."""
    block = {"prior_sigma_1": 0.1, "prior_sigma_2": sigma_2, "prior_pi": 1, "posterior_mu_init": 0}
    block |= {"posterior_rho_init": rho_init, "freeze": False, "prior_dist": None}
    named = [item if isinstance(item, tuple) else (item, _P.empty) for item in leading]
    parameters = [_P("self", _P.POSITIONAL_OR_KEYWORD)]
    parameters += [_P(name, _P.POSITIONAL_OR_KEYWORD, default=d) for name, d in (*named, *block.items(), *extra)]
    parameters.append(_P("kwargs", _P.VAR_KEYWORD) if var_keyword else _P("seed", _P.KEYWORD_ONLY, default=None))
    return inspect.Signature(parameters)


def takes_blitz_arguments(signature: inspect.Signature):
    """Give ``__init__(self, **arguments)`` the public ``signature``: it is called with every argument by name."""

    def decorate(init):
        @functools.wraps(init)
        def wrapper(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)  # a TypeError naming the argument, as Python's
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            del arguments["self"]
            return init(self, **arguments.pop("kwargs", {}), **arguments)

        wrapper.__signature__ = signature
        return wrapper

    return decorate


def blitz_arguments(
    module: GaussianModule,
    names: tuple[str, ...],
    *,
    prior_sigma_1,
    prior_sigma_2,
    prior_pi,
    posterior_mu_init,
    posterior_rho_init,
    prior_dist,
) -> dict:
    """Store BLiTZ's arguments on ``module`` as BLiTZ does, add a ``<name>_prior_dist`` per tensor,
    and return the matching fblitz layer's keyword argument ``{"bayes": Bayes(...)}``."""
    module.prior_sigma_1, module.prior_sigma_2, module.prior_pi = prior_sigma_1, prior_sigma_2, prior_pi
    module.posterior_mu_init, module.posterior_rho_init = posterior_mu_init, posterior_rho_init
    module.prior_dist = prior_dist
    for name in names:
        dist = PriorWeightDistribution(prior_pi, prior_sigma_1, prior_sigma_2, dist=prior_dist)
        setattr(module, f"{name}_prior_dist", dist)
    settings = blitz_settings(
        prior=getattr(module, f"{names[0]}_prior_dist").prior,
        posterior_mu_init=posterior_mu_init,
        posterior_rho_init=posterior_rho_init,
        estimator=module._estimator,
        posterior=module._posterior,
    )
    return {"bayes": settings}
