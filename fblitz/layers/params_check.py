"""Params trees checked against the model they are given to.

A params tree that does not belong to its model is an error, never a silent
broadcast: :func:`check_params` compares the tree's structure, and each leaf's
shape, dtype and device, with what ``model.init`` builds. The reference tree
is made once per model and dtype on the ``meta`` device (shapes only, no
memory, no random draws) and cached, so a check costs one walk over the tree.

Example:
    >>> import torch
    >>> from fblitz.layers import linear, relu, serial
    >>> model = serial(linear(3, 8), relu, linear(8, 1))
    >>> params = model.init(0)
    >>> check_params(model, params)  # passes silently
    >>> params["0"]["bias"]["mu"] = torch.zeros(1)
    >>> check_params(model, params)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    fblitz.errors.FblitzValueError: params at '0.bias.mu' must have shape (8,) for serial(...), got (1,)
"""

from __future__ import annotations

import weakref

import torch

from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.tree import PyTree, path_name

# model.init -> {dtype: reference tree on the meta device}; weak, so models can be garbage collected
_REFERENCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def expected_params(model, dtype: torch.dtype | None = None) -> PyTree:
    """The params tree ``model.init`` builds in ``dtype``, as shape-only ``meta`` tensors (cached).

    Layers whose ``init`` cannot build on the ``meta`` device (a user's own
    layer drawing on the CPU, say) are initialised once on the CPU instead,
    under a forked global RNG, so the global generator is left as it was.
    """
    dtype = torch.get_default_dtype() if dtype is None else dtype
    init = model.init
    try:
        cache = _REFERENCES.get(init)
        if cache is None:
            cache = _REFERENCES[init] = {}
    except TypeError:  # init is not weak-referenceable (e.g. a bound method): no cache
        cache = {}
    if dtype not in cache:
        try:
            reference = init(0, dtype=dtype, device="meta")
        except Exception:  # noqa: BLE001 - any failure: fall back to a real initialisation
            with torch.random.fork_rng(devices=[]):
                reference = init(0, dtype=dtype)
        cache[dtype] = _to_meta(reference)
    return cache[dtype]


def _to_meta(tree: PyTree) -> PyTree:
    if isinstance(tree, dict):
        return {key: _to_meta(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_meta(value) for value in tree)
    if isinstance(tree, torch.Tensor):
        return tree if tree.device.type == "meta" else torch.empty_like(tree, device="meta")
    return tree


def _first_tensor(tree: PyTree) -> torch.Tensor | None:
    """The first floating tensor of ``tree`` in insertion order (it sets the expected dtype and device)."""
    if isinstance(tree, torch.Tensor):
        return tree if tree.is_floating_point() else None
    values = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, (list, tuple)) else ()
    for value in values:
        found = _first_tensor(value)
        if found is not None:
            return found
    return None


def check_params(model, params: PyTree, name: str = "params") -> None:
    """Raise unless ``params`` has the structure, leaf shapes, dtype and device ``model.init`` gives.

    The dtype and device are those of the tree's first floating leaf: every
    floating leaf must share them (``model.init(dtype=...)`` picks the dtype).

    Raises:
        FblitzTypeError: a subtree or leaf of the wrong kind (e.g. ``params=None``).
        FblitzValueError: a missing or unexpected entry, a wrong shape, dtype or
            device; the message names the path, the expected and the given.
    """
    if model.init is None:  # internal layers built around given params (compat sharpening)
        return
    first = _first_tensor(params)
    reference = expected_params(model, None if first is None else first.dtype)
    _compare(reference, params, (), name, model.name, None if first is None else first.device)


def _kind(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return f"{type(value).__name__} {value!r}"[:120]


def _compare(expected, given, path: tuple, name: str, model_name: str, device) -> None:
    """Walk both trees together; messages are built only when something differs (the check runs per call)."""
    if isinstance(expected, torch.Tensor):
        if (
            not isinstance(given, torch.Tensor)
            or given.shape != expected.shape
            or given.dtype != expected.dtype
            or (device is not None and given.device != device)
        ):
            _leaf_error(expected, given, path, name, model_name, device)
    elif isinstance(expected, dict):
        if not isinstance(given, dict) or given.keys() != expected.keys():
            _node_error(expected, given, path, name, model_name)
        for key, value in expected.items():
            _compare(value, given[key], (*path, key), name, model_name, device)
    elif isinstance(expected, (list, tuple)):
        if not isinstance(given, (list, tuple)) or len(given) != len(expected):
            raise FblitzValueError(
                f"{_where(name, path)} must be a sequence of {len(expected)} entries for {model_name}, "
                f"got {_kind(given)}"
            )
        for index, (value, item) in enumerate(zip(expected, given)):
            _compare(value, item, (*path, index), name, model_name, device)
    elif given is not expected and given != expected:
        raise FblitzValueError(f"{_where(name, path)} must be {expected!r} for {model_name}, got {_kind(given)}")


def _where(name: str, path: tuple) -> str:
    return f"{name} at '{path_name(path)}'" if path else name


def _node_error(expected: dict, given, path: tuple, name: str, model_name: str):
    keys = sorted(map(str, expected))
    if not isinstance(given, dict):
        raise FblitzTypeError(
            f"{_where(name, path)} must be a dict with keys {keys} for {model_name}, got {_kind(given)}"
        )
    problems = []
    missing = [key for key in expected if key not in given]
    extra = [key for key in given if key not in expected]
    if missing:
        problems.append("is missing " + ", ".join(f"'{path_name((*path, key))}'" for key in missing))
    if extra:
        problems.append("has unexpected " + ", ".join(f"'{path_name((*path, key))}'" for key in extra))
    level = f" at '{path_name(path)}'" if path else ""
    raise FblitzValueError(
        f"{name} {' and '.join(problems)} for {model_name} (expected keys{level} {keys}, got {sorted(map(str, given))})"
    )


def _leaf_error(expected: torch.Tensor, given, path: tuple, name: str, model_name: str, device):
    where = _where(name, path)
    if not isinstance(given, torch.Tensor):
        raise FblitzTypeError(f"{where} must be a tensor of shape {tuple(expected.shape)}, got {_kind(given)}")
    if given.shape != expected.shape:
        raise FblitzValueError(
            f"{where} must have shape {tuple(expected.shape)} for {model_name}, got {tuple(given.shape)}"
        )
    if given.dtype != expected.dtype:
        raise FblitzValueError(
            f"{where} must be {expected.dtype} (the dtype of {name}'s other floating leaves) "
            f"for {model_name}, got {given.dtype}"
        )
    raise FblitzValueError(f"{where} must be on {device} (the device of {name}'s other leaves), got {given.device}")
