"""Composition: ``serial``, parameter-free function layers, activations, ``freeze``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzError, FblitzTypeError, FblitzValueError
from fblitz.layers.base import Layer, StateSpec, forward_with_state, init_state, no_params, weight_noise
from fblitz.moments import Moments, relu_moments
from fblitz.random import as_key


def stateless(fn: Callable[[torch.Tensor], torch.Tensor], name: str | None = None, *, moments=None) -> Layer:
    """A parameter-free layer applying ``fn`` to its input (e.g. an activation).

    ``moments``: optionally, ``Moments -> Moments`` in closed form (:mod:`fblitz.moments`).

    Example:
        >>> import torch
        >>> stateless(torch.tanh).apply({}, torch.zeros(2)).tolist()
        [0.0, 0.0]
    """
    if not callable(fn):
        raise FblitzTypeError(f"fn must be callable, got {fn!r}")

    def apply(params, x, eps=None):
        return fn(x)

    closed_form = None if moments is None else (lambda params, x: moments(x))
    return Layer(no_params, apply, {}, name or getattr(fn, "__name__", "stateless"), moments=closed_form)


def _elementwise(fn):
    """Moments of a reshaping ``fn`` (identity, flatten): applied to the mean and the variance alike."""
    return lambda x: Moments(fn(x.mean), fn(x.var), x.kind)


relu = stateless(F.relu, "relu", moments=relu_moments)
tanh = stateless(torch.tanh, "tanh")
sigmoid = stateless(torch.sigmoid, "sigmoid")
gelu = stateless(F.gelu, "gelu")
softplus = stateless(F.softplus, "softplus")
elu = stateless(F.elu, "elu")
silu = stateless(F.silu, "silu")
identity = stateless(lambda x: x, "identity", moments=lambda x: x)


def flatten(start_dim: int = 1) -> Layer:
    """Flatten dimensions from ``start_dim`` on (as ``torch.flatten``)."""
    start_dim = _checks.integer("start_dim", start_dim)
    flat = lambda x: torch.flatten(x, start_dim)  # noqa: E731
    return stateless(flat, f"flatten({start_dim})", moments=_elementwise(flat))


def _as_layer(index: int, layer: object) -> Layer:
    if isinstance(layer, Layer):
        return layer
    if callable(layer):
        return stateless(layer)
    raise FblitzTypeError(f"layer {index} of serial must be a fblitz Layer or a callable, got {layer!r}")


def serial(*layers: Layer | Callable) -> Layer:
    """Chain layers; params, noise and priors are dicts keyed ``"0"``, ``"1"``, ...

    Plain callables (``torch.relu``) are wrapped with :func:`stateless`.

    Example:
        >>> from fblitz.layers import linear
        >>> model = serial(linear(13, 512), relu, linear(512, 1))
        >>> from fblitz.tree import tree_map
        >>> tree_map(lambda t: tuple(t.shape), model.init(0))["0"]
        {'weight': {'mu': (512, 13), 'rho': (512, 13)}, 'bias': {'mu': (512,), 'rho': (512,)}}
    """
    if not layers:
        raise FblitzValueError("serial needs at least one layer")
    layers = tuple(_as_layer(i, layer) for i, layer in enumerate(layers))
    names = tuple(str(i) for i in range(len(layers)))

    def init(key, *, dtype=None, device=None):
        dtype, device = _checks.init_options(dtype, device)
        keys = as_key(key).split(len(layers))
        return {name: layer.init(k, dtype=dtype, device=device) for name, layer, k in zip(names, layers, keys)}

    def forward(params, x, eps=None):  # params are checked by Layer.apply or the caller's entry point
        if eps is not None and not isinstance(eps, dict):
            raise FblitzTypeError(f"eps of serial must be None or a dict keyed like params, got {type(eps).__name__}")
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            _checks.float_input("x", x)
        for name, layer in zip(names, layers):
            try:
                x = layer.forward(params[name], x, None if eps is None else eps[name])
            except FblitzError:
                raise
            except (TypeError, IndexError, KeyError, AttributeError, RuntimeError) as error:
                raise FblitzValueError(
                    f"layer {name} of serial ({layer.name}) cannot apply to its params/eps/input "
                    f"(dtypes, devices and shapes must match the params): {type(error).__name__}: {error}"
                ) from error
        return _checks.finite_result("the output of serial", x) if isinstance(x, torch.Tensor) else x

    priors = {name: layer.priors for name, layer in zip(names, layers)}
    noise = _serial_noise(names, layers) if any(layer.noise is not None for layer in layers) else None
    state = None
    if any(layer.state is not None for layer in layers):

        def state_init(*, dtype=None, device=None):
            return {name: init_state(layer, dtype=dtype, device=device) for name, layer in zip(names, layers)}

        def state_apply(params, state, x, eps, train):
            new_state = {}
            for name, layer in zip(names, layers):
                part = None if eps is None else eps[name]
                x, new_state[name] = forward_with_state(layer, params[name], state[name], x, part, train=train)
            return x, new_state

        state = StateSpec(state_init, state_apply)
    name = "serial(" + ", ".join(layer.name for layer in layers) + ")"
    closed_form = None
    if all(layer.moments is not None for layer in layers):

        def closed_form(params, x):
            for key, layer in zip(names, layers):
                x = layer.moments(params[key], x)
            return x

    return Layer(init, forward, priors, name, noise, state, closed_form)


def _serial_noise(names: tuple[str, ...], layers: tuple[Layer, ...]):
    """``noise`` of a serial model with custom-noise layers inside.

    Weight noise of all ordinary children is drawn in one call (as
    ``sample_eps`` would for the whole tree); each custom child draws its own
    from a key folded with its position. When no child needs custom noise
    this time, the result is None (plain weight noise for the whole tree).
    """

    def noise(key, params, n_samples=None, estimator=None):
        weight_key, custom_key = as_key(key).split(2)
        custom = {}
        for index, (name, layer) in enumerate(zip(names, layers)):
            if layer.noise is not None:
                eps = layer.noise(custom_key.fold_in(index), params[name], n_samples, estimator)
                if eps is not None:
                    custom[name] = eps
        if not custom:
            return None
        plain = weight_noise(weight_key, {name: params[name] for name in names if name not in custom}, n_samples)
        return {name: custom[name] if name in custom else plain[name] for name in names}

    return noise


def freeze(layer: Layer) -> Layer:
    """``layer`` with its noise ignored: it always predicts with the posterior means."""
    layer = _as_layer(0, layer)

    def forward(params, x, eps=None):
        return layer.forward(params, x, None)

    state = None
    if layer.state is not None:
        state = StateSpec(
            layer.state.init, lambda params, st, x, eps, train: layer.state.apply(params, st, x, None, train)
        )
    return Layer(layer.init, forward, layer.priors, f"freeze({layer.name})", layer.noise, state)
