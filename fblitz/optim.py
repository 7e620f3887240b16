"""Optax-shaped optimizers: pure ``init``/``update`` transforms on pytrees.

Usage::

    opt = adam(1e-2)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)

Nothing is modified in place: every call returns new tensors and a new state.
The arithmetic follows ``torch.optim.SGD`` and ``torch.optim.Adam`` step for
step, so a run matches torch's optimizers on the same gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from fblitz import _checks, _fused
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.tree import PyTree, check_same_structure, tree_flatten, tree_leaves, tree_map, tree_unflatten

OptState = Any


class GradientTransformation(NamedTuple):
    """A pair of pure functions, and optionally a fused step.

    Attributes:
        init: ``init(params) -> state``.
        update: ``update(grads, state, params=None) -> (updates, state)``; the
            updates are added to the params by :func:`apply_updates`.
        step: optional ``step(grads, state, params) -> (new_params, state)``:
            ``update`` and ``apply_updates`` in one pass (a fused kernel where
            one exists; equal to them to rounding). :func:`apply_gradients`
            uses it when present.
    """

    init: Callable[[PyTree], OptState]
    update: Callable[..., tuple[PyTree, OptState]]
    step: Callable[..., tuple[PyTree, OptState]] | None = None


class SgdState(NamedTuple):
    """State of :func:`sgd`: step count (0-dim int64 tensor), momentum buffers (None without momentum)."""

    count: torch.Tensor
    momentum: PyTree | None


class AdamState(NamedTuple):
    """State of :func:`adam`: step count (0-dim int64 tensor), first and second moment estimates."""

    count: torch.Tensor
    mu: PyTree
    nu: PyTree


# Updates run every step, so the leaf math uses torch's multi-tensor ``_foreach``
# kernels (as torch.optim does): one call per operation instead of one per
# tensor. Step counts are tensors so that a compiled step is not specialised to
# (and recompiled for) every step number.


def _zero_count(params: PyTree) -> torch.Tensor:
    leaves = tree_leaves(params)
    _float_leaves("params", leaves)
    return torch.zeros((), dtype=torch.int64, device=leaves[0].device if leaves else None)


def _float_leaves(name: str, leaves: list, reference: list | None = None, reference_name: str = "") -> list:
    """Raise unless every leaf is a floating tensor (matching ``reference``'s shapes and dtypes)."""
    for index, leaf in enumerate(leaves):
        if not isinstance(leaf, torch.Tensor) or not leaf.is_floating_point():
            got = f"dtype {leaf.dtype}" if isinstance(leaf, torch.Tensor) else type(leaf).__name__
            raise FblitzTypeError(f"{name} must hold floating-point tensors, got {got} at leaf {index}")
        if reference is not None and (leaf.shape != reference[index].shape or leaf.dtype != reference[index].dtype):
            raise FblitzValueError(
                f"{name} leaf {index} must match {reference_name}: {tuple(reference[index].shape)} "
                f"{reference[index].dtype}, got {tuple(leaf.shape)} {leaf.dtype}"
            )
    return leaves


def _state(name: str, state: object, cls: type) -> None:
    if not isinstance(state, cls):
        raise FblitzTypeError(f"state must be the {cls.__name__} returned by {name}'s init, got {type(state).__name__}")


def _leaves_like(name: str, tree: PyTree, structure, reference_name: str = "grads", reference=None) -> list:
    leaves = check_same_structure(name, tree, structure, reference_name)
    return _float_leaves(name, leaves, reference, reference_name)


def _params_leaves(params: PyTree | None, structure) -> list:
    if params is None:
        raise FblitzValueError("weight_decay needs params: call update(grads, state, params)")
    return _leaves_like("params", params, structure)


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates`` leaf by leaf (new tensors)."""
    leaves, structure = tree_flatten(params)
    deltas = _leaves_like("updates", updates, structure, "params", _float_leaves("params", leaves))
    return tree_unflatten(structure, torch._foreach_add(leaves, deltas))


def apply_gradients(
    optimizer: GradientTransformation, grads: PyTree, state: OptState, params: PyTree
) -> tuple[PyTree, OptState]:
    """``(new_params, new_state)`` after one step of ``optimizer``: its fused ``step`` if it has one,
    else ``update`` then :func:`apply_updates`.

    Example:
        >>> opt = adam(0.1)
        >>> params = {"w": torch.zeros(3)}
        >>> new, state = apply_gradients(opt, {"w": torch.ones(3)}, opt.init(params), params)
        >>> new["w"]
        tensor([-0.1000, -0.1000, -0.1000])
    """
    if optimizer.step is not None:
        return optimizer.step(grads, state, params)
    updates, state = optimizer.update(grads, state, params)
    return apply_updates(params, updates), state


def sgd(
    learning_rate: float,
    momentum: float = 0.0,
    *,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> GradientTransformation:
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""
    lr = _checks.positive("learning_rate", learning_rate)
    momentum = _checks.non_negative("momentum", momentum)
    dampening = _checks.non_negative("dampening", dampening)
    weight_decay = _checks.non_negative("weight_decay", weight_decay)
    nesterov = _checks.boolean("nesterov", nesterov)
    if nesterov and (momentum == 0 or dampening != 0):
        raise FblitzValueError("nesterov=True needs momentum > 0 and dampening == 0")

    def init(params):
        return SgdState(_zero_count(params), tree_map(torch.zeros_like, params) if momentum else None)

    def update(grads, state, params=None):
        _state("sgd", state, SgdState)
        g, structure = tree_flatten(grads)
        _float_leaves("grads", g, None if params is None else _params_leaves(params, structure), "params")
        if weight_decay:
            g = torch._foreach_add(g, _params_leaves(params, structure), alpha=weight_decay)
        buffers = state.momentum
        if momentum:
            # torch.optim starts the buffer at the first (undamped) gradient; the
            # buffer is zero before that step, so an undamped first update is the same.
            scale = 1.0 - dampening * (state.count != 0).to(g[0].dtype)
            old = _leaves_like("state.momentum", buffers, structure, "grads", g)
            b = torch._foreach_add(torch._foreach_mul(old, momentum), torch._foreach_mul(g, scale))
            buffers = tree_unflatten(structure, b)
            g = torch._foreach_add(g, b, alpha=momentum) if nesterov else b
        return tree_unflatten(structure, torch._foreach_mul(g, -lr)), SgdState(state.count + 1, buffers)

    return GradientTransformation(init, update)


def adam(
    learning_rate: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
) -> GradientTransformation:
    """Adam (Kingma & Ba 2015) as ``torch.optim.Adam``; AdamW with ``decoupled_weight_decay=True``."""
    lr = _checks.positive("learning_rate", learning_rate)
    for name, beta in (("b1", b1), ("b2", b2)):
        if not 0.0 <= _checks.real_number(name, beta) < 1.0:
            raise FblitzValueError(f"{name} must lie in [0, 1), got {beta}")
    eps = _checks.positive("eps", eps)
    weight_decay = _checks.non_negative("weight_decay", weight_decay)
    decoupled_weight_decay = _checks.boolean("decoupled_weight_decay", decoupled_weight_decay)

    def init(params):
        return AdamState(_zero_count(params), tree_map(torch.zeros_like, params), tree_map(torch.zeros_like, params))

    def update(grads, state, params=None):
        _state("adam", state, AdamState)
        g, structure = tree_flatten(grads)
        _float_leaves("grads", g, None if params is None else _params_leaves(params, structure), "params")
        if weight_decay and not decoupled_weight_decay:
            g = torch._foreach_add(g, _params_leaves(params, structure), alpha=weight_decay)
        count = state.count + 1
        steps = count.double()
        mu = torch._foreach_lerp(_leaves_like("state.mu", state.mu, structure, "grads", g), g, 1 - b1)
        nu = torch._foreach_addcmul(
            torch._foreach_mul(_leaves_like("state.nu", state.nu, structure, "grads", g), b2), g, g, value=1 - b2
        )
        denom = torch._foreach_add(torch._foreach_div(torch._foreach_sqrt(nu), torch.sqrt(1 - b2**steps)), eps)
        updates = torch._foreach_mul(torch._foreach_div(mu, denom), -lr / (1 - b1**steps))
        if weight_decay and decoupled_weight_decay:
            updates = torch._foreach_add(updates, _params_leaves(params, structure), alpha=-lr * weight_decay)
        return (
            tree_unflatten(structure, updates),
            AdamState(count, tree_unflatten(structure, mu), tree_unflatten(structure, nu)),
        )

    # one fused kernel (torch.optim.Adam(fused=True)'s) when the leaves allow it, else update + apply_updates
    step = _fused.adam_step_fn(
        update, apply_updates, AdamState, lr=lr, b1=b1, b2=b2, eps=eps,
        weight_decay=weight_decay, decoupled=decoupled_weight_decay,
    )  # fmt: skip
    return GradientTransformation(init, update, step)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transforms in sequence; each one's updates are the next one's grads."""

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None):
        if type(state) is not tuple or len(state) != len(transforms):
            raise FblitzTypeError(f"state of chain must be the tuple of {len(transforms)} states from its init")
        new_state = []
        for transform, inner in zip(transforms, state):
            grads, inner = transform.update(grads, inner, params)
            new_state.append(inner)
        return grads, tuple(new_state)

    return GradientTransformation(init, update)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale the whole gradient tree down so its global L2 norm is at most ``max_norm``."""
    max_norm = _checks.positive("max_norm", max_norm)

    def update(grads, state, params=None):
        leaves, structure = tree_flatten(grads)
        if not _float_leaves("grads", leaves):
            return grads, state
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(leaves)))
        factor = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        return tree_unflatten(structure, torch._foreach_mul(leaves, factor)), state

    return GradientTransformation(lambda params: (), update)
