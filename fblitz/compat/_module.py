"""What every compat Bayesian layer shares (internal): Parameters in, fblitz's functional core out.

A compat layer holds each Bayesian tensor ``<name>`` as two ordinary
``nn.Parameter`` s, ``<name>_mu`` and ``<name>_rho`` (BLiTZ's state-dict names),
and nothing else: no sampler submodule holding the same tensors a second time,
so ``.to()``, ``.double()``, ``state_dict()``, ``copy.deepcopy`` and replication
see each tensor once. Its forward pass builds fblitz's params tree from those
Parameters (``{name: {"mu": ..., "rho": ...}}``) and calls a functional layer
of :mod:`fblitz.layers`; the complexity cost ``log q(w) - log p(w)`` at the
sampled weights comes from :mod:`fblitz.distributions`, :mod:`fblitz.radial`
and :mod:`fblitz.priors`.

**Randomness.** Each layer owns a :class:`KeyStream`, a :class:`fblitz.random.Key`
and a draw counter; draw ``i`` uses ``key.fold_in(i)``. The key
is the ``seed=`` keyword when given (then the global torch RNG is never
used); without it, ONE 64-bit seed is drawn from the global torch RNG when the
layer is built, at the moment BLiTZ draws its initial weights from it, so
``torch.manual_seed(s)`` before building a model still makes a run
reproducible. Forward passes never touch the global RNG. ``reseed_(seed)``
restarts a layer's stream.

**Sampling contexts.** :func:`sampling` makes the layers of a model take their
noise (and optionally their params tree) from a dict instead of drawing it,
and collect their ``(log q, log p)`` there instead of storing them on the
module. That is how ``sample_elbo`` runs ``model(x)`` once under
``torch.func.vmap`` for S weight draws (see :mod:`fblitz.compat._sampling`).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import NamedTuple

import torch
from torch import nn

from fblitz.distributions import posterior_log_prob, reparameterize
from fblitz.errors import FblitzTypeError
from fblitz.layers import sample_noise
from fblitz.radial import radial_log_prob
from fblitz.random import Key, as_key
from fblitz.tree import PyTree

_ACTIVE = threading.local()


class Draw(NamedTuple):
    """What a sampling context hands one layer: its noise, and optionally a params tree to use."""

    eps: PyTree | None
    params: PyTree | None = None


class SamplingContext:
    """The draws given to the layers, and the ``(log q, log p)`` each layer reports back."""

    def __init__(self, draws: dict):
        self.draws = draws
        self.log_terms: dict = {}


@contextlib.contextmanager
def sampling(draws: dict):
    """Run forward passes with ``draws`` (``{layer: Draw}``); yields the :class:`SamplingContext`."""
    context, previous = SamplingContext(draws), getattr(_ACTIVE, "context", None)
    _ACTIVE.context = context
    try:
        yield context
    finally:
        _ACTIVE.context = previous


def active_draw(module: nn.Module) -> tuple[SamplingContext | None, Draw | None]:
    """The active sampling context and ``module``'s draw in it ((None, None) outside :func:`sampling`)."""
    context = getattr(_ACTIVE, "context", None)
    if context is None:
        return None, None
    return context, context.draws.get(module)


def global_seed() -> int:
    """One 63-bit seed drawn from the global torch RNG (the default when no ``seed`` is given)."""
    return int(torch.empty((), dtype=torch.int64).random_())


class KeyStream:
    """A key and a draw counter: draw ``i`` uses ``key.fold_in(i)``.

    A separate object so that the shallow replicas ``nn.DataParallel`` makes
    of a module at every call share (and advance) their original's stream,
    while ``copy.deepcopy`` gives an independent copy that replays it.
    """

    def __init__(self, key: Key):
        self.key, self.draws = key, 0

    def next_key(self) -> Key:
        key = self.key.fold_in(self.draws)
        self.draws += 1
        return key


class BayesianModule(nn.Module):
    """Base class of the Bayesian layers (BLiTZ's ``BayesianModule``).

    :func:`fblitz.compat.losses.kl_divergence_from_nn` sums
    ``log_variational_posterior - log_prior`` over every instance in a model,
    and ``freeze_``/``unfreeze_`` set ``freeze`` on each, so a custom layer can
    subclass it and set those attributes in its forward pass.
    """

    log_prior = 0
    log_variational_posterior = 0
    freeze = False

    def __getstate__(self):
        # A forward pass leaves log_prior/log_variational_posterior as non-leaf tensors of its
        # autograd graph, which copy.deepcopy refuses ("graph leaves" error). A copy or a pickle
        # keeps their values, detached from that graph, so both work at any time.
        state = super().__getstate__().copy()
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                state[name] = value.detach()
        return state


class GaussianModule(BayesianModule):
    """A :class:`BayesianModule` whose Gaussian tensors are ``<name>_mu`` / ``<name>_rho`` Parameters.

    Subclasses set ``self._layer`` (an fblitz layer), call :meth:`_register`
    with its initial params tree and may override :meth:`_run`,
    :meth:`draw_noise` and :meth:`variational_params` (recurrent layers keep
    BLiTZ's layout and translate it).
    """

    _estimator = "reparameterization"  # set by the Flipout wrapper
    _posterior = "gaussian"  # set by the Radial wrapper
    _ignored_keys: tuple[str, ...] = ()  # BLiTZ state-dict entries without a counterpart here

    def __init__(self, freeze: bool, seed: int | Key | None):
        super().__init__()
        if not isinstance(freeze, bool):
            raise FblitzTypeError(f"freeze must be a bool, got {freeze!r}")
        self.freeze = freeze
        self.log_prior = 0
        self.log_variational_posterior = 0
        self.reseed_(seed)
        self._names: tuple[str, ...] = ()

    # -- randomness -------------------------------------------------------------------
    def reseed_(self, seed: int | Key | None = None) -> GaussianModule:
        """Restart this layer's noise stream from ``seed`` (None: a seed from the global torch RNG)."""
        self._stream = KeyStream(as_key(global_seed() if seed is None else seed, "seed"))
        return self

    def next_key(self) -> Key:
        """The key of the next draw (the stream advances by one)."""
        return self._stream.next_key()

    # -- the fblitz layer ---------------------------------------------------------------
    def _set_layer(self, constructor, *args, **kwargs) -> None:
        """Build ``self._layer`` from an fblitz layer constructor, remembering how (for pickling)."""
        self._layer_recipe = functools.partial(constructor, *args, **kwargs)
        self._layer = self._layer_recipe()

    # what copies and pickles drop, back to the class default: the last draw's log terms are tensors inside
    # an autograd graph, which deepcopy refuses (subclasses list more in their own ``_transient``)
    _transient: tuple[str, ...] = ("log_prior", "log_variational_posterior")

    def __getstate__(self):
        # an fblitz layer holds closures, which pickle cannot store; it is rebuilt on loading
        state = super().__getstate__()
        state.pop("_layer", None)
        for cls in type(self).__mro__:
            for name in vars(cls).get("_transient", ()):
                state.pop(name, None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._layer = self._layer_recipe()

    # -- parameters -------------------------------------------------------------------
    def _register(self, tree: dict, active: tuple[str, ...] | None = None) -> None:
        """Hold each node of ``tree`` as ``<name>_mu`` / ``<name>_rho``; ``active`` ones are Bayesian."""
        for name, node in tree.items():
            for part in ("mu", "rho"):
                setattr(self, f"{name}_{part}", nn.Parameter(node[part].detach().clone()))
        self._stored = tuple(tree)
        self._names = tuple(tree) if active is None else active

    def variational_params(self) -> dict:
        """fblitz's params tree of this layer, ``{name: {"mu": Parameter, "rho": Parameter}}``."""
        return {name: {"mu": getattr(self, f"{name}_mu"), "rho": getattr(self, f"{name}_rho")} for name in self._names}

    def priors(self) -> dict:
        """``{name: fblitz prior}``, read from the ``<name>_prior_dist`` submodules."""
        return {name: getattr(self, f"{name}_prior_dist").prior for name in self._names}

    # -- the functional core ------------------------------------------------------------
    def draw_noise(self, n_samples: int | None = None) -> PyTree:
        """This layer's noise tree for ``n_samples`` draws (leading axis) or one (None)."""
        return sample_noise(self._layer, self.next_key(), self.variational_params(), n_samples)

    def _run(self, params: dict, x, eps, *args, **kwargs):
        return self._layer.forward(params, x, eps)

    def log_terms(self, params: dict, eps: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log q(w), log p(w))`` summed over the layer's tensors at ``w = mu + sigma * eps``."""
        log_q, log_p = [], []
        priors = self.priors()
        for name in self._names:
            node, noise = params[name], eps[name]
            w = reparameterize(node["mu"], node["rho"], noise)
            if self._posterior == "radial":
                log_q.append(radial_log_prob(noise, node["rho"]))
            else:
                log_q.append(posterior_log_prob(noise, node["rho"]).sum())
            log_p.append(priors[name].log_prob(w).sum())
        return torch.stack(log_q).sum(), torch.stack(log_p).sum()

    def forward(self, x, *args, **kwargs):
        if self.freeze:
            _, draw = active_draw(self)
            params = self.variational_params() if draw is None or draw.params is None else draw.params
            return self._run(params, x, None, *args, **kwargs)
        return self._sampling_forward(x, *args, **kwargs)

    def _sampling_forward(self, x, *args, **kwargs):
        """A forward pass at a weight draw (whatever ``freeze`` says); records ``(log q, log p)``."""
        context, draw = active_draw(self)
        params = self.variational_params() if draw is None or draw.params is None else draw.params
        eps = self.draw_noise() if draw is None else draw.eps
        out = self._run(params, x, eps, *args, **kwargs)
        log_q, log_p = self.log_terms(params, eps)
        if draw is None:
            self.log_variational_posterior, self.log_prior = log_q, log_p
        else:
            context.log_terms[self] = (log_q, log_p)
        return out

    def forward_frozen(self, x, *args, **kwargs):
        """The forward pass with the posterior means (whatever ``freeze`` says)."""
        return self._run(self.variational_params(), x, None, *args, **kwargs)

    # -- BLiTZ state dicts ----------------------------------------------------------------
    def _blitz_placeholders(self, like: torch.Tensor) -> dict:
        """Tensors BLiTZ's layer saves and this one has not (an unused bias); ``like`` gives dtype and device.

        Used by :func:`fblitz.compat.blitz_state_dict`.
        """
        return {}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # BLiTZ stores every tensor twice (``weight_mu`` and ``weight_sampler.mu``). After
        # ``.to()``/``.double()`` the two copies part and only the sampler's is trained, so
        # the sampler's copy wins when present.
        for name in self._stored:
            for part in ("mu", "rho"):
                sampler_key = f"{prefix}{name}_sampler.{part}"
                if sampler_key in state_dict:
                    state_dict[f"{prefix}{name}_{part}"] = state_dict.pop(sampler_key)
            state_dict.pop(f"{prefix}{name}_sampler.eps_w", None)
        for extra in self._ignored_keys:
            state_dict.pop(prefix + extra, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
