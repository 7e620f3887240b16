"""The layer behind :func:`fblitz.bridge.bayesify` (internal): params, state, one functional call."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.func import functional_call

from fblitz import _checks
from fblitz._checks import _describe
from fblitz.bridge import _shims
from fblitz.bridge._select import lookup, nest
from fblitz.errors import FblitzError, FblitzTypeError, FblitzValueError
from fblitz.moped import moped
from fblitz.posterior import GaussianInit, sample
from fblitz.priors import Prior
from fblitz.random import as_key
from fblitz.tree import PyTree, is_gaussian


@dataclasses.dataclass(frozen=True)
class Param:
    """One trainable parameter: its name, its value in the module, and how it is initialised."""

    name: str
    value: torch.Tensor
    bayesian: bool
    posterior: GaussianInit | None
    prior: Prior | None


@dataclasses.dataclass(frozen=True, eq=False)
class Bridge:
    """What a bridged layer knows about its module; its bound methods are the layer's functions."""

    params: tuple[Param, ...]
    template: nn.Module  # the module with stand-ins, in eval mode: only ever called functionally
    original: nn.Module  # an untouched deep copy, for to_module
    constants: dict  # frozen parameters and buffers that are not running statistics
    stats: tuple[str, ...]  # paths of the batch norms that keep running statistics
    init_mode: str
    moped_delta: float | None

    def init(self, key, *, dtype=None, device=None) -> dict:
        """Fresh params: module weights (or BLiTZ-like draws) for the means; dtype/device default to the module's."""
        dtype, device = _checks.init_options(dtype, device)
        keys = as_key(key).split(len(self.params))
        flat = {}
        for param, k in zip(self.params, keys):
            value = param.value.to(dtype=dtype or param.value.dtype, device=device or param.value.device)
            if not param.bayesian:
                flat[param.name] = value.clone()
                continue
            node = param.posterior.node(k, tuple(value.shape), dtype=value.dtype, device=value.device)
            flat[param.name] = {"mu": value.clone(), "rho": node["rho"]} if self.init_mode == "module" else node
        params = nest(flat)
        if self.moped_delta is not None:
            weights = {p.name: p.value for p in self.params if p.bayesian}
            params = moped(params, weights, self.moped_delta)
        return params

    def apply(self, params: PyTree, x, eps: PyTree | None = None):
        """One forward pass; batch norm uses the batch's statistics (as fblitz's own batch norm)."""
        return self._call(params, {}, x, eps, _shims.CallMode(None, {}))

    def state_init(self, *, dtype=None, device=None) -> dict:
        """The module's running statistics (copies), floating ones cast to ``dtype``."""
        dtype, device = _checks.init_options(dtype, device)
        flat = {}
        for path in self.stats:
            module = self.template.get_submodule(path)
            for name in _shims.STATE_NAMES:
                t = getattr(module, name)
                flat[f"{path}.{name}"] = t.to(
                    dtype=dtype if t.is_floating_point() and dtype else t.dtype, device=device or t.device
                ).clone()
        return nest(flat)

    def state_apply(self, params: PyTree, state: PyTree, x, eps: PyTree | None, train: bool):
        """``(y, new_state)``: batch statistics and updated running statistics, or the stored ones."""
        flat = {
            f"{path}.{name}": lookup(state, f"{path}.{name}", "state")
            for path in self.stats
            for name in _shims.STATE_NAMES
        }
        mode = _shims.CallMode(bool(train), {})
        y = self._call(params, flat, x, eps, mode)
        if not mode.updates:
            return y, state
        new_state = {**state}
        for path, stats in mode.updates.items():
            *parents, last = path.split(".")
            node = new_state
            for part in parents:
                node[part] = node = {**node[part]}
            node[last] = stats
        return y, new_state

    def tensors(self, params: PyTree, eps: PyTree | None) -> dict:
        """Dotted name -> the tensor of this draw (``mu + sigma * eps``, the mean, or the point estimate)."""
        if not isinstance(params, dict):
            raise FblitzTypeError(f"params must be the bridge's nested dict, got {type(params).__name__}")
        if eps is not None and not isinstance(eps, dict):
            raise FblitzTypeError(f"eps must be None or a dict keyed like params, got {type(eps).__name__}")
        out = {}
        for param in self.params:
            node = lookup(params, param.name, "params")
            if param.bayesian:
                if not is_gaussian(node):
                    got = _describe(node)
                    raise FblitzValueError(f"params at '{param.name}' must be a {{'mu', 'rho'}} node, got {got}")
                out[param.name] = sample(node, None if eps is None else lookup(eps, param.name, "eps"))
            elif not isinstance(node, torch.Tensor):
                got = _describe(node)
                raise FblitzValueError(f"params at '{param.name}' must be a tensor (a point estimate), got {got}")
            else:
                out[param.name] = node
        return out

    def _call(self, params, state_tensors, x, eps, mode):
        tensors = self.tensors(params, eps)
        like = next(iter(tensors.values()))
        if isinstance(x, torch.Tensor) and x.is_floating_point() and (x.dtype, x.device) != (like.dtype, like.device):
            raise FblitzTypeError(
                f"x must have the params' dtype {like.dtype} on {like.device}, got {x.dtype} on {x.device}"
            )
        constants = self.constants
        if (like.dtype, like.device) != (self.params[0].value.dtype, self.params[0].value.device):
            constants = {name: _like(t, like) for name, t in constants.items()}
        try:
            with _shims.calling(mode):
                return functional_call(self.template, {**constants, **state_tensors, **tensors}, (x,))
        except FblitzError:
            raise
        except (TypeError, IndexError, KeyError, AttributeError, RuntimeError) as error:
            raise FblitzValueError(
                f"the module ({type(self.original).__name__}) cannot run on x with these params: "
                f"{type(error).__name__}: {error}"
            ) from error


def _like(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` on ``like``'s device, floating tensors also in its dtype (no copy when they match)."""
    return t.to(dtype=like.dtype if t.is_floating_point() else t.dtype, device=like.device)
