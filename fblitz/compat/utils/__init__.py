"""BLiTZ's ``blitz.utils``: the ``variational_estimator`` decorator, minibatch weights, layer wrappers."""

from fblitz.compat.utils.layer_wrappers import Flipout, Radial
from fblitz.compat.utils.minibatch_weighting import minibatch_weight
from fblitz.compat.utils.variational_estimator import variational_estimator

__all__ = ["Flipout", "Radial", "minibatch_weight", "variational_estimator"]
