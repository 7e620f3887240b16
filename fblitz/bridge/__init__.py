"""Any ``torch.nn.Module`` made Bayesian: :func:`bayesify`, and :func:`to_module` back.

See :mod:`fblitz.bridge.convert` for the params layout and the train/eval conventions.
"""

from fblitz.bridge.convert import bayesify, to_module

__all__ = ["bayesify", "to_module"]
