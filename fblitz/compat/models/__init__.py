"""BLiTZ's ``blitz.models``: the Bayesian VGG family in :mod:`fblitz.compat.models.b_vgg`."""

from fblitz.compat.models import b_vgg

__all__ = ["b_vgg"]
