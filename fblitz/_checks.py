"""Argument checks shared by the public API (internal).

Each helper raises :class:`~fblitz.errors.FblitzValueError` or
:class:`~fblitz.errors.FblitzTypeError` naming the argument, the expectation
and the value received.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import threading

import torch

from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError
from fblitz.tree import tree_leaves


def describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{value!r} ({type(value).__name__})"


def real_number(name: str, value: object) -> float:
    """``value`` as a finite Python float, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FblitzTypeError(f"{name} must be a real number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise FblitzValueError(f"{name} must be finite, got {value}")
    return value


def positive(name: str, value: object) -> float:
    """``value`` as a float > 0."""
    value = real_number(name, value)
    if value <= 0:
        raise FblitzValueError(f"{name} must be > 0, got {value}")
    return value


def non_negative(name: str, value: object) -> float:
    """``value`` as a float >= 0."""
    value = real_number(name, value)
    if value < 0:
        raise FblitzValueError(f"{name} must be >= 0, got {value}")
    return value


def probability(name: str, value: object) -> float:
    """``value`` as a float in [0, 1]."""
    value = real_number(name, value)
    if not 0.0 <= value <= 1.0:
        raise FblitzValueError(f"{name} must lie in [0, 1], got {value}")
    return value


def integer(name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` as an int (bools rejected), optionally >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise FblitzTypeError(f"{name} must be an int, got {describe(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise FblitzValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def boolean(name: str, value: object, *, allow_none: bool = False) -> bool | None:
    """``value`` if it is a bool (or None when ``allow_none``); truthy strings and ints are refused.

    A flag such as ``shuffle="no"`` is truthy, so accepting any value would
    silently do the opposite of what was written.
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        expected = "True, False or None" if allow_none else "True or False"
        raise FblitzTypeError(f"{name} must be {expected}, got {describe(value)}")
    return value


def float_dtype(name: str, value: object) -> torch.dtype | None:
    """``value`` if it is None or a floating-point ``torch.dtype`` (parameters are real-valued)."""
    if value is not None and not (isinstance(value, torch.dtype) and value.is_floating_point):
        raise FblitzTypeError(
            f"{name} must be a floating-point torch.dtype such as torch.float32 or torch.float64 (or None), "
            f"got {describe(value)}"
        )
    return value


def torch_device(name: str, value: object) -> torch.device | None:
    """``value`` as a ``torch.device`` that exists on this machine (None passes through).

    ``"meta"`` (shapes only) and ``"cpu"`` always exist; an accelerator is
    tried with an empty allocation, so a CUDA device on a CPU-only machine is
    reported here rather than as a linker message from deep inside torch.
    """
    if value is None:
        return None
    try:
        parsed = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise FblitzValueError(
            f"{name} must be a torch.device or a device string such as 'cpu', 'cuda' or 'cuda:1', got {value!r}"
        ) from None
    if parsed.type not in ("cpu", "meta"):
        try:
            torch.empty(0, device=parsed)
        except (RuntimeError, AssertionError) as error:
            raise FblitzValueError(unavailable_device(name, parsed, error)) from None
    return parsed


def init_options(dtype: object, device: object) -> tuple[torch.dtype | None, torch.device | None]:
    """A layer ``init``'s ``dtype`` and ``device`` keywords, checked (:func:`float_dtype`, :func:`torch_device`)."""
    return float_dtype("dtype", dtype), torch_device("device", device)


def unavailable_device(name: str, value: object, error: BaseException) -> str:
    """The message for a device torch cannot use here (``error`` is torch's own complaint)."""
    kind = torch.device(value).type if isinstance(value, (str, torch.device)) else str(value)
    reason = str(error).split(". ")[0].strip() or type(error).__name__
    if kind == "cuda" and not torch.cuda.is_available():
        reason = "torch.cuda.is_available() is False: this torch build or machine has no CUDA"
    return f"{name}={str(value)!r} is not usable on this machine ({reason}); use 'cpu' or an available device"


def one_of(name: str, value: object, choices: tuple) -> object:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise FblitzValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def tensor(
    name: str,
    value: object,
    *,
    ndim: int | tuple[int, ...] | None = None,
    floating: bool = False,
    finite: bool = False,
) -> torch.Tensor:
    """Check that ``value`` is a tensor with the given rank and kind."""
    if not isinstance(value, torch.Tensor):
        raise FblitzTypeError(f"{name} must be a torch.Tensor, got {describe(value)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if value.dim() not in allowed:
            expected = " or ".join(str(n) for n in allowed)
            raise FblitzValueError(f"{name} must have {expected} dimension(s), got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise FblitzTypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if finite and value.is_floating_point() and not value.is_meta and not bool(torch.isfinite(value).all()):
        raise NonFiniteError(f"{name} contains NaN or infinity")
    return value


def same_shape(name: str, value: torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    """Raise unless ``value.shape == expected`` (``what`` names the reference)."""
    if tuple(value.shape) != tuple(expected):
        raise FblitzValueError(f"{name} must have the shape of {what}, {tuple(expected)}, got {tuple(value.shape)}")


def last_dim(name: str, value: torch.Tensor, size: int) -> None:
    """Raise unless the last dimension of ``value`` has ``size`` entries."""
    if value.dim() == 0 or value.shape[-1] != size:
        raise FblitzValueError(
            f"{name} must have {size} features in its last dimension, got shape {tuple(value.shape)}"
        )


def like_params(name: str, value: torch.Tensor, params: object) -> None:
    """Raise unless tensor ``value`` is on the params' device and, if floating, has their dtype.

    Integer inputs (class labels, token indices) only need the device.
    """
    leaves = [leaf for leaf in tree_leaves(params) if isinstance(leaf, torch.Tensor) and leaf.is_floating_point()]
    if not leaves or not isinstance(value, torch.Tensor):
        return
    like = leaves[0]
    if value.device != like.device:
        raise FblitzValueError(f"{name} must be on the params' device {like.device}, got {value.device}")
    if value.is_floating_point() and value.dtype != like.dtype:
        raise FblitzTypeError(
            f"{name} must have the params' dtype {like.dtype}, got {value.dtype} (convert one with .to(dtype))"
        )


_TRUSTED = threading.local()


@contextlib.contextmanager
def trusted():
    """Within it, :func:`eager` is False: value checks are skipped, as inside ``torch.func.grad``.

    For entry points that check their inputs and results once and then run
    a model's many small operations: ``torch.func.grad`` wraps every tensor
    argument of the differentiated function, so no value check runs inside
    it, and a training step that differentiates with ``torch.autograd``
    instead (eagerly, for speed) keeps that behaviour with this context (its
    non-finite guard reports a NaN or infinity). Prediction checks its inputs
    before and its predictions after the forward passes, so the layers need
    not scan every hidden activation for NaNs on the way.
    """
    depth = getattr(_TRUSTED, "depth", 0)
    _TRUSTED.depth = depth + 1
    try:
        yield
    finally:
        _TRUSTED.depth = depth


def eager(value: torch.Tensor) -> bool:
    """True when data-dependent checks are possible and cheap to skip otherwise.

    Inside ``vmap``/``grad`` (functorch-wrapped tensors) or ``torch.compile``
    tracing, checks that read tensor values are skipped: they would fail under
    ``vmap``, break compiled graphs, and training has its own non-finite guard.
    ``meta`` tensors have no values to read; nor are values checked within
    :func:`trusted`.
    """
    return (
        not value.is_meta
        and not torch.compiler.is_compiling()
        and not torch._C._functorch.is_functorch_wrapped_tensor(value)
        and not getattr(_TRUSTED, "depth", 0)
    )


def float_input(name: str, value: object, *, finite: bool = True) -> torch.Tensor:
    """A floating-point tensor, finite when checkable (see :func:`eager`), or raise naming ``name``."""
    if not isinstance(value, torch.Tensor):
        raise FblitzTypeError(f"{name} must be a floating-point torch.Tensor, got {describe(value)}")
    if not value.is_floating_point():
        raise FblitzTypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if finite and eager(value) and not bool(torch.isfinite(value).all()):
        raise NonFiniteError(f"{name} contains NaN or infinity")
    return value


def finite_result(what: str, value: torch.Tensor, *, hint: str | None = None) -> torch.Tensor:
    """``value``, or raise :class:`NonFiniteError` when it overflowed (checked only when :func:`eager`).

    ``hint`` replaces the generic advice (e.g. naming the input to change).
    """
    if eager(value) and not bool(torch.isfinite(value).all()):
        if hint is None:
            wider = "" if value.dtype == torch.float64 else "float64 or "
            hint = f"the values overflow {value.dtype}; use {wider}inputs of smaller magnitude"
        verb = "are" if what.endswith("s") and not what.endswith("ss") else "is"
        raise NonFiniteError(f"{what} {verb} not finite for finite inputs ({hint})")
    return value
