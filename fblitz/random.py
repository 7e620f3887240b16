"""Explicit random keys and noise drawing.

A :class:`Key` is an immutable 64-bit seed. Functions that need randomness take
a key (or a plain ``int``, turned into one); the same key gives bit-identical
results on the same device, and the global torch RNG is never read or changed:
each draw seeds a private ``torch.Generator``. Keys are split with a
splitmix64-style hash, so child keys are well separated and reproducible.

Example:
    >>> k = Key(0)
    >>> k_init, k_noise = split(k)
    >>> normal(k_noise, (2,)).equal(normal(k_noise, (2,)))
    True
"""

from __future__ import annotations

import dataclasses
import numbers

import torch

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.tree import PyTree, flatten_gaussian, is_gaussian, tree_unflatten

_MASK = (1 << 64) - 1
_SPLIT_TAG = 0x5851F42D4C957F2D
_FOLD_TAG = 0x2545F4914F6CDD1D


def _mix(z: int) -> int:
    """The splitmix64 finaliser: a bijective avalanche on 64-bit integers."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


@dataclasses.dataclass(frozen=True)
class Key:
    """An immutable random key holding a 64-bit seed.

    Args:
        seed: any int; it is reduced modulo 2**64.
    """

    seed: int

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise FblitzTypeError(f"seed must be an int, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed) & _MASK)

    def split(self, num: int = 2) -> tuple[Key, ...]:
        """``num`` new independent keys derived from this one."""
        return split(self, num)

    def fold_in(self, data: int) -> Key:
        """A new key derived from this one and the integer ``data``."""
        return fold_in(self, data)


KeyLike = Key | int


def as_key(key: KeyLike, name: str = "key") -> Key:
    """``key`` as a :class:`Key`; ints are accepted as seeds."""
    if isinstance(key, Key):
        return key
    if isinstance(key, bool) or not isinstance(key, numbers.Integral):
        raise FblitzTypeError(f"{name} must be a fblitz.random.Key or an int seed, got {key!r}")
    return Key(int(key))


def split(key: KeyLike, num: int = 2) -> tuple[Key, ...]:
    """Split ``key`` into ``num`` independent keys."""
    key = as_key(key)
    num = _checks.integer("num", num, minimum=1)
    base = _mix(key.seed ^ _SPLIT_TAG)
    return tuple(Key(_mix(base ^ _mix(i))) for i in range(num))


def fold_in(key: KeyLike, data: int) -> Key:
    """A key derived from ``key`` and the integer ``data`` (e.g. a step counter)."""
    key = as_key(key)
    data = _checks.integer("data", data, minimum=0)
    return Key(fold_seed(key.seed, data))


def fold_seed(seed: int, data: int) -> int:
    """``fold_in(Key(seed), data).seed`` on plain ints, unchecked (for loops that fold many seeds)."""
    return _mix(_mix((seed & _MASK) ^ _FOLD_TAG) ^ _mix(data & _MASK))


def generator(key: KeyLike, device: torch.device | str | None = None) -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded from ``key``."""
    try:
        gen = torch.Generator(device=torch.device("cpu") if device is None else device)
    except (RuntimeError, TypeError) as error:  # torch's message is about linkers, not the argument
        raise FblitzValueError(_checks.unavailable_device("device", device, error)) from None
    gen.manual_seed(as_key(key).seed)
    return gen


def _is_meta(device) -> bool:
    """True for the ``meta`` device: tensors with shapes and dtypes but no data, and no Generator."""
    if device is None:
        return False
    try:
        return torch.device(device).type == "meta"
    except (RuntimeError, TypeError):
        return False  # not a device at all: generator() reports it, naming the argument


def normal(key: KeyLike, shape, *, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Standard normal draws of ``shape`` (on ``meta``: a data-less tensor of that shape)."""
    _checks.float_dtype("dtype", dtype)
    if _is_meta(device):
        return torch.empty(tuple(shape), dtype=dtype, device=device)
    return torch.randn(tuple(shape), generator=generator(key, device), dtype=dtype, device=device)


def uniform(key: KeyLike, shape, *, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Uniform draws on [0, 1) of ``shape`` (on ``meta``: a data-less tensor of that shape)."""
    _checks.float_dtype("dtype", dtype)
    if _is_meta(device):
        return torch.empty(tuple(shape), dtype=dtype, device=device)
    return torch.rand(tuple(shape), generator=generator(key, device), dtype=dtype, device=device)


def permutation(key: KeyLike, n: int, *, device=None) -> torch.Tensor:
    """A random permutation of ``range(n)`` as an int64 tensor (on ``meta``: data-less)."""
    n = _checks.integer("n", n, minimum=0)
    if _is_meta(device):
        return torch.empty(n, dtype=torch.int64, device=device)
    return torch.randperm(n, generator=generator(key, device), device=device)


def sample_eps(key: KeyLike, params: PyTree, n_samples: int | None = None, *, flat=None) -> PyTree:
    """Draw standard-normal noise for every Gaussian node of ``params``.

    All noise of one dtype/device is drawn in a single call and then viewed
    into the leaves, so the cost does not grow with the number of tensors.

    Args:
        key: random key or int seed.
        params: variational parameters; each ``{"mu", "rho"}`` node gets noise
            with ``mu``'s shape, dtype and device.
        n_samples: with an int S, every noise leaf gets a leading axis of S
            (for ``vmap``); with None, a single draw without that axis.

    Returns:
        A tree with a tensor at each Gaussian node and ``()`` at deterministic
        leaves. For ``params = {"weight": {"mu": (3, 2), ...}, "b": tensor}``
        and ``n_samples=4``: ``{"weight": Tensor(4, 3, 2), "b": ()}``.

    ``flat``: ``flatten_gaussian(params)`` when the caller has it already.
    """
    key = as_key(key)
    count = 1 if n_samples is None else _checks.integer("n_samples", n_samples, minimum=1)
    lead = () if n_samples is None else (count,)
    nodes, structure = flatten_gaussian(params) if flat is None else flat
    groups: dict[tuple, list[int]] = {}
    for index, node in enumerate(nodes):
        if is_gaussian(node):
            mu = node["mu"]
            if not isinstance(mu, torch.Tensor) or not mu.is_floating_point():
                raise FblitzTypeError(f"Gaussian node 'mu' must be a floating-point tensor, got {mu!r}")
            groups.setdefault((mu.dtype, mu.device), []).append(index)
    if not groups:
        raise FblitzValueError("params has no Gaussian {'mu', 'rho'} node to draw noise for")
    noise: list = [()] * len(nodes)
    for group, ((dtype, device), members) in enumerate(groups.items()):
        total = count * sum(nodes[i]["mu"].numel() for i in members)
        flat = normal(key.fold_in(group) if group else key, (total,), dtype=dtype, device=device)
        offset = 0
        for i in members:
            shape = nodes[i]["mu"].shape
            size = count * nodes[i]["mu"].numel()
            noise[i] = flat[offset : offset + size].view(*lead, *shape)
            offset += size
    return tree_unflatten(structure, noise)
