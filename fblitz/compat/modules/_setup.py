"""BLiTZ's prior/posterior constructor arguments, stored and turned into fblitz arguments (internal)."""

from __future__ import annotations

from fblitz.compat._module import GaussianModule
from fblitz.compat.modules.weight_sampler import PriorWeightDistribution
from fblitz.compat.settings import blitz_settings

# what BLiTZ saves for a bias it does not use (bias=False): ignored when loading
UNUSED_BIAS_KEYS = ("bias_mu", "bias_rho", "bias_sampler.mu", "bias_sampler.rho", "bias_sampler.eps_w")


def blitz_arguments(
    module: GaussianModule,
    names: tuple[str, ...],
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
