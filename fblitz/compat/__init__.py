"""Drop-in BLiTZ API on fblitz's functional core: change ``blitz`` to ``fblitz.compat`` in imports.

Mirrors ``blitz.modules`` (with ``weight_sampler`` and
``base_bayesian_module``), ``blitz.utils``, ``blitz.losses`` and
``blitz.models.b_vgg``. The layers are ``nn.Module`` s holding mu and rho as
ordinary Parameters (each once) that call :mod:`fblitz.layers`;
``sample_elbo`` evaluates its samples with ``torch.func.vmap``. See
:mod:`fblitz.compat._module` for how randomness works (one key per layer,
seeded by ``seed=`` or once from the global RNG at construction).
State dicts move both ways: compat layers load BLiTZ's, and
:func:`blitz_state_dict` gives BLiTZ's layout for BLiTZ to load.
"""

from fblitz.compat import losses, modules, utils
from fblitz.compat.state_dict import blitz_state_dict

__all__ = ["blitz_state_dict", "losses", "modules", "utils"]
