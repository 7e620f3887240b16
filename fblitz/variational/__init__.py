"""The variational math: the posterior q, its noise, and the KL to the prior.

* :mod:`~fblitz.variational.distributions` -- softplus and its inverse, Gaussian
  and Student-t log densities, the Gaussian KL;
* :mod:`~fblitz.variational.posterior` -- Gaussian nodes ``{"mu", "rho"}``:
  their initialisation and reparameterized samples;
* :mod:`~fblitz.variational.radial` -- the radial posterior;
* :mod:`~fblitz.variational.estimators` -- reparameterization, local
  reparameterization and Flipout;
* :mod:`~fblitz.variational.seeded` and :mod:`~fblitz.variational.per_example`
  -- counter-based noise from int64 seeds, and per-example noise drawn before
  the transforms;
* :mod:`~fblitz.variational.kl` -- KL(q || p), closed form or Monte Carlo;
* :mod:`~fblitz.variational.moments` -- moment propagation through layers;
* :mod:`~fblitz.variational.moped` -- MOPED initialisation from deterministic
  weights;
* :mod:`~fblitz.variational.sharpening` -- posterior sharpening.

The layers (:mod:`fblitz.layers`) are built on these; the priors are in
:mod:`fblitz.priors`. Nothing is imported here: import the module you need.
"""
