"""BLiTZ's ``blitz.losses``."""

from fblitz.compat.losses.kl_divergence import kl_divergence_from_nn

__all__ = ["kl_divergence_from_nn"]
