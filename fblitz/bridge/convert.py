"""Any ``torch.nn.Module`` as a functional Bayesian :class:`~fblitz.layers.Layer`, and back.

:func:`bayesify` reads a module's parameters once and returns a layer whose
``apply`` runs the module through ``torch.func.functional_call`` with the
tensors of one weight draw, so :func:`fblitz.objectives.sample_elbo`,
:func:`fblitz.train.fit`, :func:`fblitz.prediction.predict`,
:func:`fblitz.kl.kl_divergence` and :func:`fblitz.moped.moped` work on it as on
fblitz's own layers. :func:`to_module` turns trained params back into an
ordinary module for deployment.

**The params tree nests the module's dotted names**: ``"0.weight"`` is
``params["0"]["weight"]``, a ``{"mu", "rho"}`` node when Bayesian and a plain
tensor otherwise (a point estimate trained alongside, with prior None, as in
:func:`fblitz.layers.layer_norm`). That is the layout of
:func:`fblitz.layers.serial` (an ``nn.Sequential`` has the paths of the
matching ``serial``, which adds an empty ``{}`` for each parameter-free
layer), :func:`fblitz.tree.path_name` prints torch's own names, and MOPED's
lookup by dotted name lines up with ``module.state_dict()``.
Batch-norm running statistics form the **state** tree in the same layout,
e.g. ``{"1": {"running_mean": (C,), "running_var": (C,), "num_batches_tracked": ()}}``.

**Modes.** The module always runs in eval mode (its dropout is off: the weight
noise is the randomness). Batch norm follows fblitz's convention: the plain
``apply`` normalises with the batch's statistics, ``apply_with_state(...,
train=True)`` (what :func:`fblitz.train.fit` calls) also returns updated
running statistics, ``train=False`` (``predict(..., state=...)``) uses them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fblitz import _checks
from fblitz.bridge import _shims
from fblitz.bridge._bridge import Bridge, Param
from fblitz.bridge._select import Selector, check_names, layer_defaults, lookup, nest, select
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers.base import Layer, StateSpec
from fblitz.posterior import gaussian_init
from fblitz.priors import Prior, check_prior
from fblitz.tree import PyTree

INITS = ("module", "blitz")


def bayesify(
    module: nn.Module,
    *,
    bayesian: Selector = "*",
    init: str = "module",
    moped_delta: float | None = None,
    posterior_mu_init: float = 0.0,
    posterior_mu_std: float = 0.1,
    posterior_rho_init: float | None = None,
    posterior_rho_std: float = 0.1,
    prior: Prior | None = None,
) -> Layer:
    """An ordinary ``nn.Module`` as a Bayesian fblitz :class:`~fblitz.layers.Layer`.

    Args:
        module: the network; it is deep-copied and never changed. ``nn.LSTM``,
            ``nn.GRU``, ``nn.RNN``, ``nn.LSTMCell``, ``nn.GRUCell`` and ``nn.RNNCell`` run on
            fblitz's own recurrent code (torch's fused kernels have no ``vmap``
            rule); ``proj_size > 0`` and batch norms other than
            ``BatchNorm1d/2d/3d`` are refused.
        bayesian: which trainable parameters get a ``{"mu", "rho"}`` posterior:
            an ``fnmatch`` pattern on dotted names (``"*"``: all, ``"*.weight"``,
            ``"classifier.*"``), a sequence of patterns (each must match), or a
            predicate ``(name, parameter) -> bool``. The other trainable
            parameters stay point estimates; frozen ones (``requires_grad=False``)
            and buffers are constants.
        init: ``"module"`` -- means are the module's current weights; or
            ``"blitz"`` -- means drawn from N(posterior_mu_init, posterior_mu_std^2).
        moped_delta: with ``init="module"``, MOPED's sigma = delta * |w|
            (:func:`fblitz.moped.moped`) instead of rho drawn around ``posterior_rho_init``.
        posterior_mu_init, posterior_mu_std, posterior_rho_std: as for
            :func:`fblitz.layers.linear`.
        posterior_rho_init: rho ~ N(posterior_rho_init, posterior_rho_std^2);
            None takes fblitz's default for the owning module (-6 for conv2d/3d,
            transposed convs, embeddings and recurrent modules; -7 otherwise).
        prior: the prior of every Bayesian tensor; None takes BLiTZ's default
            N(0, 0.1^2) (``prior_pi=1``).

    Returns:
        A layer: ``init(key, dtype=None, device=None)`` (the module's dtype and
        device by default), ``apply(params, x, eps)`` calling the module with
        ``x`` as its one positional argument, ``priors`` and, when the module
        has batch norms with running statistics, ``state`` (see the module
        docstring). It works under ``vmap`` over weight draws, including
        attention (the MHA fast path and fused SDPA kernels are switched off
        during the call and restored).

    Example:
        >>> import torch
        >>> from fblitz.tree import tree_map
        >>> with torch.random.fork_rng():
        ...     net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        >>> model = bayesify(net, bayesian="*.weight")
        >>> params = model.init(0)
        >>> tree_map(lambda t: tuple(t.shape), params["0"])
        {'weight': {'mu': (8, 3), 'rho': (8, 3)}, 'bias': (8,)}
        >>> torch.equal(model.apply(params, torch.ones(2, 3)), net(torch.ones(2, 3)))
        True
    """
    if not isinstance(module, nn.Module):
        raise FblitzTypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    _checks.one_of("init", init, INITS)
    if moped_delta is not None:
        moped_delta = _checks.positive("moped_delta", moped_delta)
        if init != "module":
            raise FblitzValueError(
                f"moped_delta needs init='module' (MOPED centres on the module's weights), got {init!r}"
            )
    for name, p in module.named_parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):
            raise FblitzValueError(f"module has an uninitialised lazy parameter '{name}': run it once first")
    prior = None if prior is None else check_prior("prior", prior)
    template = _shims.prepare(module)
    trainable = {name: p for name, p in template.named_parameters() if p.requires_grad}
    if not trainable:
        raise FblitzValueError(f"module has no trainable parameter: {type(module).__name__}")
    chosen = select(trainable, bayesian)
    params = []
    for name, p in trainable.items():
        owner = module.get_submodule(name.rpartition(".")[0])
        rho_default, prior_default = layer_defaults(owner)
        rho_init = rho_default if posterior_rho_init is None else posterior_rho_init
        posterior = gaussian_init(posterior_mu_init, posterior_mu_std, rho_init, posterior_rho_std)
        bayes = name in chosen
        if bayes and not p.is_floating_point():
            raise FblitzTypeError(f"bayesian parameter '{name}' must be floating-point, got {p.dtype}")
        params.append(Param(name, p.detach().clone(), bayes, posterior, (prior or prior_default) if bayes else None))
    stats = tuple(_shims.has_running_stats(template))
    state_names = {f"{path}.{name}" for path in stats for name in _shims.STATE_NAMES}
    check_names([*trainable, *state_names])
    constants = {name: p.detach() for name, p in template.named_parameters() if name not in trainable}
    constants |= {name: b for name, b in template.named_buffers() if name not in state_names}
    bridge = Bridge(tuple(params), template, copy.deepcopy(module), constants, stats, init, moped_delta)
    priors = nest({p.name: p.prior for p in params})
    state = StateSpec(bridge.state_init, bridge.state_apply) if stats else None
    return Layer(bridge.init, bridge.apply, priors, f"bayesify({type(module).__name__})", None, state)


def bridge_of(model: object) -> Bridge:
    """The :class:`Bridge` behind a layer made by :func:`bayesify` (also through ``freeze``/``recentre_priors``)."""
    bridge = getattr(getattr(model, "init", None), "__self__", None)
    if not isinstance(model, Layer) or not isinstance(bridge, Bridge):
        raise FblitzTypeError(f"model must be a layer returned by fblitz.bridge.bayesify, got {model!r}")
    return bridge


def to_module(model: Layer, params: PyTree, state: PyTree | None = None) -> nn.Module:
    """A deep copy of the original module holding the posterior means (and running statistics).

    Args:
        model: a layer from :func:`bayesify`.
        params: its params (e.g. ``fit(...).params``); Bayesian tensors give
            their ``mu``, point estimates their value.
        state: running statistics to copy into the batch norms (e.g.
            ``fit(...).state``); None keeps the module's own.

    Returns:
        A new module in the original's train/eval mode, dtype and device
        (values are cast), ready for ordinary ``module(x)`` use.

    Example:
        >>> import torch
        >>> with torch.random.fork_rng():
        ...     net = torch.nn.Linear(2, 1)
        >>> model = bayesify(net)
        >>> params = model.init(0)
        >>> params["weight"]["mu"] = torch.ones(1, 2)
        >>> to_module(model, params).weight.tolist()
        [[1.0, 1.0]]
    """
    bridge = bridge_of(model)
    means = bridge.tensors(params, None)
    module = copy.deepcopy(bridge.original)
    with torch.no_grad():
        for name, value in means.items():
            target = module.get_parameter(name)
            _checks.same_shape(f"params at '{name}'", value, target.shape, "the module's parameter")
            target.copy_(value)
        for path in bridge.stats if state is not None else ():
            for name in _shims.STATE_NAMES:
                value = lookup(state, f"{path}.{name}", "state")
                target = module.get_buffer(f"{path}.{name}")
                _checks.same_shape(f"state at '{path}.{name}'", value, target.shape, "the module's buffer")
                target.copy_(value)
    return module
