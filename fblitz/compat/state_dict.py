"""State dicts for BLiTZ: what a compat model saves, in the layout BLiTZ's own modules load.

A compat layer holds each tensor once (``weight_mu``, ``weight_rho``, ...; see
:mod:`fblitz.compat._module`), so its ``state_dict()`` has one entry per
tensor. BLiTZ's layers hold a second copy in a ``weight_sampler`` submodule
and load strictly, so they need ``weight_sampler.mu``/``.rho``/``.eps_w``
(and placeholders for an absent bias) as well. :func:`blitz_state_dict` adds
those entries to a copy of the model's state dict; the model itself, and its
``state_dict()``, stay single-copy (two entries for one tensor in the model's
own state dict could be edited apart, and which one would win on loading?).

The other direction needs nothing: compat layers load BLiTZ's state dicts
directly (``model.load_state_dict(blitz_model.state_dict())``).

Example:
    >>> from fblitz.compat.modules import BayesianLinear
    >>> sorted(blitz_state_dict(BayesianLinear(3, 2, seed=0)))  # doctest: +NORMALIZE_WHITESPACE
    ['bias_mu', 'bias_rho', 'bias_sampler.eps_w', 'bias_sampler.mu', 'bias_sampler.rho',
     'weight_mu', 'weight_rho', 'weight_sampler.eps_w', 'weight_sampler.mu', 'weight_sampler.rho']
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from fblitz.compat._module import GaussianModule
from fblitz.errors import FblitzTypeError


def blitz_state_dict(model: nn.Module) -> OrderedDict:
    """``model.state_dict()`` plus the entries BLiTZ's modules expect, for ``blitz_model.load_state_dict``.

    Args:
        model: a compat layer, or any ``nn.Module`` containing compat layers
            (other submodules' entries are passed through unchanged).

    Returns:
        A new ordered dict. BLiTZ's second copies are the same tensors as
        the first (``torch.save`` stores them once); its noise buffers
        ``*_sampler.eps_w`` are zeros (BLiTZ refills them at every draw).
        With the same architecture, BLiTZ then computes what the compat
        model computes: the same frozen outputs (tested against BLiTZ).
    """
    if not isinstance(model, nn.Module):
        raise FblitzTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    state = model.state_dict()
    out = OrderedDict(state)
    for path, module in model.named_modules():
        if isinstance(module, GaussianModule):
            out.update(_blitz_entries(module, f"{path}." if path else "", state))
    return out


def _blitz_entries(layer: GaussianModule, prefix: str, state: dict) -> dict:
    """What BLiTZ's counterpart of ``layer`` saves beyond ``state`` (keys with ``prefix``).

    For each tensor ``<name>``: ``<name>_sampler.mu`` and ``.rho`` (the same
    tensors as ``<name>_mu``/``<name>_rho``: BLiTZ's second copy) and
    ``<name>_sampler.eps_w`` (its noise buffer, zeros); plus what BLiTZ keeps
    for an absent bias.
    """
    entries = {}
    for name in layer._stored:
        mu = state[f"{prefix}{name}_mu"]
        entries[f"{prefix}{name}_sampler.mu"] = mu
        entries[f"{prefix}{name}_sampler.rho"] = state[f"{prefix}{name}_rho"]
        entries[f"{prefix}{name}_sampler.eps_w"] = torch.zeros_like(mu)
    like = state[f"{prefix}{layer._stored[0]}_mu"]
    entries.update({prefix + key: value for key, value in layer._blitz_placeholders(like).items()})
    return entries
