"""Noise of any shape from a seed tensor, as pure tensor arithmetic.

Weight noise has the weights' shapes and is drawn up front
(:func:`fblitz.random.sample_eps`). Some noise has a shape known only inside
the forward pass: dropout masks and the per-example noise of local
reparameterization and Flipout depend on the input's batch shape. Layers that
need it receive an int64 *seed* in their noise tree (one per weight sample,
drawn by :func:`seeds`) and expand it here with a counter-based hash
(splitmix64 applied to ``seed`` and the element index).

Everything is ordinary int64/float tensor arithmetic, so it runs under
``torch.func.vmap`` (a batch of seeds gives a batch of independent streams),
under ``torch.compile``, and never touches a ``torch.Generator`` or the global
RNG. The same seed always gives the same numbers on every device.

Example:
    >>> s = seeds(0, 3)            # three weight samples
    >>> s.shape, s.dtype
    (torch.Size([3]), torch.int64)
    >>> normal(s[0], (2, 4)).shape
    torch.Size([2, 4])
    >>> bool(normal(s[0], (5,)).equal(normal(s[0], (5,))))
    True

**Drawn seeds.** Expanding a seed here costs about 40 integer operations per
number, which ``torch.compile`` fuses but which run one by one eagerly. So the
training step, the ELBO and prediction replace CPU seeds before the forward
pass by the numbers they stand for, drawn with a ``torch`` generator
(:func:`fblitz.per_example.draw_per_example`); such a *drawn seed* is a dict
of tensors, and :func:`normal`, :func:`uniform`, :func:`rademacher` and
:func:`stream` hand its tensors back to the layers (:func:`fblitz.per_example.take`). Calling a
layer yourself with seed tensors expands them here.

**Devices.** A seed is created where it is asked for (``seeds(..., device=)``;
:func:`fblitz.layers.sample_noise` puts them on the params' device), and the
numbers it expands to are created on ``device=`` (default: the seed's), moving
the seed there if needed: pass the device of the tensor the noise will meet.
The same seed gives the same numbers on every device.

**Rows of a larger batch.** The first axis of the requested shape counts
examples. :func:`offset_rows` turns a seed into the seed of rows ``r, r+1,
...`` of a batch: ``normal(offset_rows(s, r), (n, *rest))`` equals
``normal(s, (r + n, *rest))[r:]``. Data-parallel training with shared noise
uses it so that every example gets the noise of its row in the whole
minibatch, whichever process evaluates it. Such a seed is an int64 tensor of
shape (1, 2), ``[[seed, first row]]`` ((S, 1, 2) with a sample axis; the extra
axis keeps it apart from a vector of plain seeds); every function here
accepts both forms.
"""

from __future__ import annotations

import math

import torch

from fblitz import _checks
from fblitz.errors import FblitzTypeError
from fblitz.per_example import Recorder, take
from fblitz.random import KeyLike, as_key, fold_seed
from fblitz.tree import PyTree, tree_leaves, tree_map

_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)  # int64 views of the splitmix64 constants
_MUL_1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MUL_2 = 0x94D049BB133111EB - (1 << 64)
_STREAM = 0xD1B54A32D192ED03 - (1 << 64)


def seeds(key: KeyLike, n_samples: int | None = None, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Random int64 seeds from ``key``: shape (S,) with ``n_samples=S``, else (); on ``device`` (default CPU)."""
    key = as_key(key)
    count = 1 if n_samples is None else _checks.integer("n_samples", n_samples, minimum=1)
    values = [_signed(fold_seed(key.seed, i)) for i in range(count)]
    out = torch.tensor(values, dtype=torch.int64, device=device)
    return out[0] if n_samples is None else out


def offset_rows(seed: torch.Tensor, rows: int | torch.Tensor) -> torch.Tensor:
    """The seed of rows ``rows, rows + 1, ...`` of the batch ``seed`` draws for (shape (..., 1, 2)).

    ``seed`` is a plain seed tensor of shape () or (S,) (from :func:`seeds`)
    or an offset seed (trailing axes (1, 2)); offsets add up. See the module
    docstring for what an offset seed draws.

    Example:
        >>> s = seeds(0)
        >>> bool(normal(offset_rows(s, 3), (2, 4)).equal(normal(s, (5, 4))[3:]))
        True
    """
    if not isinstance(seed, torch.Tensor) or seed.dtype != torch.int64:
        raise FblitzTypeError(f"seed must be an int64 tensor (see fblitz.seeded.seeds), got {_describe(seed)}")
    if isinstance(rows, torch.Tensor):
        rows = rows.to(device=seed.device, dtype=torch.int64)
    else:
        rows = _checks.integer("rows", rows, minimum=0)
    if is_offset(seed):
        return torch.stack((seed[..., 0], seed[..., 1] + rows), dim=-1)
    if seed.dim() > 1:
        raise FblitzTypeError(
            f"seed must have shape () or (S,), or be an offset seed (..., 1, 2), got {_describe(seed)}"
        )
    return torch.stack((seed, torch.zeros_like(seed) + rows), dim=-1).unsqueeze(-2)


def offset_noise(eps: PyTree, rows: int | torch.Tensor) -> PyTree:
    """``eps`` with each of its seeds (its int64 leaves) made the seed of rows ``rows, rows + 1, ...``.

    A noise tree holds weight noise (floating leaves, the same for every row)
    and seeds for per-example noise (int64 leaves); only the seeds change. An
    evaluation of rows ``r .. r + n - 1`` of a batch with
    ``offset_noise(eps, r)`` gives those rows exactly the noise they get when
    the whole batch is evaluated with ``eps``.

    Example:
        >>> from fblitz.layers import dropout, sample_noise
        >>> layer, x = dropout(0.5), torch.ones(6, 4)
        >>> eps = sample_noise(layer, 0, {})
        >>> bool(layer.apply({}, x[2:], offset_noise(eps, 2)).equal(layer.apply({}, x, eps)[2:]))
        True
    """
    return tree_map(lambda leaf: offset_rows(leaf, rows) if _is_seed_leaf(leaf) else leaf, eps)


def has_seeds(eps: PyTree) -> bool:
    """True when the noise tree ``eps`` holds a seed (per-example noise: dropout, local reparameterization, Flipout)."""
    return any(_is_seed_leaf(leaf) for leaf in tree_leaves(eps))


def _is_seed_leaf(leaf: object) -> bool:
    return isinstance(leaf, torch.Tensor) and leaf.dtype == torch.int64


def is_offset(seed: torch.Tensor) -> bool:
    """True when ``seed`` carries a row offset (trailing axes (1, 2), see :func:`offset_rows`)."""
    return seed.dim() >= 2 and tuple(seed.shape[-2:]) == (1, 2)


def _describe(value: object) -> str:
    return f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else repr(value)


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical (unsigned) right shift of int64 values."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    # int64 products wrap modulo 2**64, which is the arithmetic splitmix64 needs.
    z = (z ^ _shift_right(z, 30)) * _MUL_1
    z = (z ^ _shift_right(z, 27)) * _MUL_2
    return z ^ _shift_right(z, 31)


def _parts(seed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(base seed, first row or None)`` of one seed: 0-dim, or (1, 2) with a row offset."""
    if isinstance(seed, torch.Tensor) and seed.dtype == torch.int64:
        if seed.dim() == 0:
            return seed, None
        if seed.shape == (1, 2):
            return seed[0, 0], seed[0, 1]
    raise FblitzTypeError(
        f"seed must be a 0-dim int64 tensor (see fblitz.seeded.seeds) or an offset seed of shape (1, 2) "
        f"(see fblitz.seeded.offset_rows), got {_describe(seed)}"
    )


def _join(base: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    return base if offset is None else torch.stack((base, offset)).unsqueeze(0)


def stream(seed: torch.Tensor, index: int) -> torch.Tensor:
    """An independent seed derived from ``seed`` for sub-stream ``index`` (keeping its row offset)."""
    index = _checks.integer("index", index, minimum=0)
    if isinstance(seed, Recorder):
        return seed.stream(index)
    if isinstance(seed, dict):
        if str(index) not in seed:
            raise FblitzTypeError(f"a drawn seed holds no stream {index} (it holds {sorted(seed)})")
        return seed[str(index)]
    base, offset = _parts(seed)
    shift = ((_checks.integer("index", index, minimum=0) + 1) * _STREAM) % (1 << 64)
    return _join(_mix(base + _signed(shift)), offset)


def _signed(value: int) -> int:
    """An unsigned 64-bit Python int as the int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def bits(seed: torch.Tensor, shape, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Uniformly random int64 words of ``shape`` on ``device`` (default: the seed's), a pure function of ``seed``."""
    base, offset = _parts(seed)
    shape = tuple(shape)
    if device is not None and torch.device(device) != base.device:
        base = base.to(device)
        offset = None if offset is None else offset.to(device)
    numel = math.prod(shape)
    counter = torch.arange(numel, dtype=torch.int64, device=base.device)
    if offset is not None and shape:
        # whole rows of the first axis: element (i, ...) draws as element (offset + i, ...) would
        counter = counter + offset * (numel // shape[0] if shape[0] else 0)
    # counter and seed are each mixed before they meet (not splitmix's seed + i * gamma): inductor
    # treats arange * constant as index arithmetic and, with dynamic shapes, miscompiles it (torch 2.13)
    return _mix(_mix(base) + _mix(counter + _GOLDEN)).reshape(shape)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 arithmetic for float64 results, float32 for every other floating dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def uniform(
    seed: torch.Tensor, shape, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Uniform draws on the open interval (0, 1) of ``shape``.

    float64 results use the top 53 bits of each word, other dtypes the top
    24 (computed in float32), each centred in its cell: never exactly 0.
    """
    drawn = take(seed, "uniform", shape, dtype)
    if drawn is not None:
        return drawn
    work = _work_dtype(dtype)
    width = 53 if work == torch.float64 else 24
    top = _shift_right(bits(seed, shape, device=device), 64 - width).to(work)
    return ((top + 0.5) * 2.0**-width).to(dtype)


def normal(
    seed: torch.Tensor, shape, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Standard-normal draws of ``shape``: Box-Muller on the two 32-bit halves of one word.

    The radius uses the high half (never 0, so the log is finite: |z| < 6.7),
    the angle the low half; arithmetic in float64 for float64, else float32.
    """
    drawn = take(seed, "normal", shape, dtype)
    if drawn is not None:
        return drawn
    work = _work_dtype(dtype)
    words = bits(seed, shape, device=device)
    u1 = (_shift_right(words, 32).to(work) + 0.5) * 2.0**-32
    u2 = (words & 0xFFFFFFFF).to(work) * 2.0**-32
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)).to(dtype)


def rademacher(
    seed: torch.Tensor, shape, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Random signs (+1 or -1 with probability 1/2 each) of ``shape``."""
    drawn = take(seed, "rademacher", shape, dtype)
    if drawn is not None:
        return drawn
    top = _shift_right(bits(seed, shape, device=device), 63)
    return (1 - 2 * top).to(dtype)
