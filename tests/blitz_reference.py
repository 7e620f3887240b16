"""Run a BLiTZ layer on fblitz params and replay its noise in fblitz (tests only).

BLiTZ holds each mu/rho twice (``weight_mu`` and ``weight_sampler.mu``, which
``.double()`` unties) and its forward pass uses the sampler's copies, so both
are loaded. BLiTZ draws noise from the global RNG: every call here runs inside
``torch.random.fork_rng()``.
"""

from __future__ import annotations

import torch

from fblitz.tree import tree_map


def build(cls, *args, **kwargs):
    """A float64 BLiTZ module, initialised without touching the global RNG."""
    with torch.random.fork_rng():
        return cls(*args, **kwargs).double()


def load(module, params):
    """Copy each ``params[name]`` Gaussian node into ``module``'s two mu/rho copies."""
    with torch.no_grad():
        for name, node in params.items():
            sampler = getattr(module, f"{name}_sampler")
            for part in ("mu", "rho"):
                getattr(module, f"{name}_{part}").copy_(node[part])
                getattr(sampler, part).copy_(node[part])


def record_draws(monkeypatch) -> dict:
    """Patch BLiTZ's sampler to record its noise: ``{id(sampler): [eps of each draw, in order]}``.

    The patch lasts as long as ``monkeypatch`` (the test, or a ``monkeypatch.context()``).
    """
    from blitz.modules.weight_sampler import TrainableRandomDistribution as trd

    original, draws = trd.sample, {}

    def sample(self):
        w = original(self)
        draws.setdefault(id(self), []).append(self.eps_w.detach().clone())
        return w

    monkeypatch.setattr(trd, "sample", sample)
    return draws


def forward_with_noise(monkeypatch, module, x, names, seed=0):
    """BLiTZ's output on ``x`` (tensors, detached) and the noise it drew, as ``{name: eps}``."""
    with monkeypatch.context() as scoped:
        draws = record_draws(scoped)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            y = module(x)
    return tree_map(torch.Tensor.detach, y), {name: draws[id(getattr(module, f"{name}_sampler"))][-1] for name in names}


def frozen_forward(module, params, x):
    """BLiTZ's frozen (posterior-mean) output with ``params`` loaded."""
    load(module, params)
    module.freeze = True
    try:
        return module(x).detach()
    finally:
        module.freeze = False
