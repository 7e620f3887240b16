"""Per-example noise drawn with ``torch.randn`` before the transforms, after a shape pass.

Dropout, local reparameterization and Flipout need noise shaped like the
activations, so a noise tree carries int64 *seeds* for them
(:mod:`fblitz.seeded`), expanded inside the forward pass. There the seeds
can only be expanded by the counter-based hash of :mod:`fblitz.seeded`:
about 40 int64 operations per number, which the compiler fuses but which run
one by one eagerly (tens of nanoseconds per number, against about three for
``torch.randn``).

:func:`draw_per_example` moves that work out of the forward pass. A *shape
pass* runs the model once on the ``meta`` device (shapes only, no arithmetic;
cached per model, input shape and noise layout) with a recorder in place of
each seed, which notes what the layers ask for: ``normal``, ``uniform`` or
``rademacher`` numbers of some shape, from the seed or from one of its
streams (:func:`fblitz.seeded.stream`). Then every request is drawn with one
``torch`` generator call per weight sample, and the seed is replaced in the
noise tree by a dict of the drawn tensors, which the :mod:`fblitz.seeded`
functions hand back to the layers (:func:`take`).

What stays true:

* **Sample i is sample i.** The numbers of sample i come from a generator
  seeded with sample i's seed (and the request), so sample i drawn in a batch
  of S equals sample i drawn alone, under ``vmap`` or not.
* **Rows of a larger batch.** An offset seed (:func:`fblitz.seeded.offset_rows`)
  draws the rows ``r, r+1, ...`` of the larger batch: the generator draws the
  first ``r + n`` rows and keeps the last ``n``. ``torch.randn`` on the CPU
  fills whole blocks of 16 numbers, so every draw is rounded up to a multiple
  of 16 numbers, which makes a shorter draw a prefix of a longer one
  (``tests/test_per_example.py`` checks it), and data-parallel training with
  shared noise reproduces one process exactly.
* **Reproducible.** The same seeds and input shape give the same numbers; a
  compiled step receives the drawn tensors as inputs, so it matches eager.

It applies to noise on the **CPU**, where the hash is the bottleneck; on other
devices (elementwise integer arithmetic is cheap on a GPU, and a generator's
draws are not prefix-consistent there) the seeds are expanded inside the
forward pass as before. Models whose forward pass cannot run on the ``meta``
device keep the seeds too. Either way every entry point of one model on one
device uses the same rule, so training, prediction and distributed training
agree with each other; the numbers differ from those of the hash (both are
standard draws). Calling ``model.apply`` yourself with seeds in the noise
uses the hash.
"""

from __future__ import annotations

import math
import weakref

import torch

from fblitz.errors import FblitzTypeError
from fblitz.random import fold_seed
from fblitz.tree import PyTree, tree_flatten, tree_map, tree_unflatten

KINDS = ("normal", "uniform", "rademacher")
_KIND_CODE = {kind: (1 << 40) + index for index, kind in enumerate(KINDS)}
_BLOCK = 16  # torch's CPU normal kernel transforms blocks of 16 numbers
_SIGN_BITS = 32  # random signs taken from one 64-bit random word (its 32 low bits)

# model.forward -> {layout key: requests per seed leaf, or None when the shape pass failed}
_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Recorder(dict):
    """Stands in for a seed during the shape pass: notes each request, hands out data-less tensors.

    Keys are kinds (value: ``(shape, dtype)``) and stream indices as strings
    (value: a child recorder), the layout of the dict that replaces the seed.
    """

    def request(self, kind: str, shape, dtype: torch.dtype) -> torch.Tensor:
        shape = tuple(int(n) for n in shape)
        known = self.get(kind)
        if known is not None and known != (shape, dtype):
            raise ValueError(f"one seed asked for {kind} numbers of shapes {known[0]} and {shape}")
        self[kind] = (shape, dtype)
        return torch.empty(shape, dtype=dtype, device="meta")

    def stream(self, index: int) -> Recorder:
        return self.setdefault(str(index), Recorder())


def take(seed: object, kind: str, shape, dtype: torch.dtype) -> torch.Tensor | None:
    """The numbers a drawn seed holds for ``kind`` (see :mod:`fblitz.per_example`); None for a seed tensor.

    A seed replaced by :func:`fblitz.per_example.draw_per_example` is a dict
    of drawn tensors; during that function's shape pass it is a recorder.
    """
    if isinstance(seed, Recorder):
        return seed.request(kind, shape, dtype)
    if not isinstance(seed, dict):
        return None
    drawn = seed.get(kind)
    if not isinstance(drawn, torch.Tensor) or tuple(drawn.shape) != tuple(shape) or drawn.dtype != dtype:
        got = (
            f"{tuple(drawn.shape)} {drawn.dtype}"
            if isinstance(drawn, torch.Tensor)
            else repr(drawn)
            if drawn is not None
            else f"nothing (it holds {sorted(seed)})"
        )
        raise FblitzTypeError(f"a drawn seed must hold {kind} numbers of shape {tuple(shape)} {dtype}, got {got}")
    return drawn


def draw_per_example(model, params: PyTree, eps: PyTree, inputs, state: PyTree | None = None) -> PyTree:
    """``eps`` with each CPU seed replaced by the per-example noise it stands for, for a batch ``inputs``.

    Args:
        model: the :class:`~fblitz.layers.Layer` the noise is for.
        params: its params (shapes and dtype for the shape pass).
        eps: a noise tree with a leading sample axis S (``sample_noise(model, key, params, S)``),
            possibly with row-offset seeds (:func:`fblitz.seeded.offset_noise`).
        inputs: the batch the noise will meet (only its shape and dtype are read).
        state: running statistics, for models that keep them.

    Returns:
        ``eps`` unchanged when it holds no CPU seed, or when the model cannot
        run on the ``meta`` device; otherwise a tree whose seed leaves are
        dicts of drawn tensors with the leading sample axis (see the module
        docstring).
    """
    leaves, structure = tree_flatten(eps)
    seeds = [i for i, leaf in enumerate(leaves) if _is_cpu_seed(leaf)]
    if not seeds:
        return eps
    plan = _plan(model, params, leaves, structure, seeds, inputs, state)
    if plan is None:
        return eps
    drawn = list(leaves)
    for index, requests in zip(seeds, plan):
        drawn[index] = _draw_leaf(leaves[index], requests)
    return tree_unflatten(structure, drawn)


def _is_cpu_seed(leaf: object) -> bool:
    return isinstance(leaf, torch.Tensor) and leaf.dtype == torch.int64 and leaf.device.type == "cpu"


def _first_float(params: PyTree) -> torch.Tensor | None:
    return next((t for t in tree_flatten(params)[0] if t.is_floating_point()), None)


def _meta(tree: PyTree) -> PyTree:
    return tree_map(lambda t: torch.empty_like(t, device="meta") if isinstance(t, torch.Tensor) else t, tree)


def _plan(model, params, leaves, structure, seeds, inputs, state):
    """The recorded requests of each seed leaf (cached), or None when the shape pass fails."""
    input_leaves, input_structure = tree_flatten(inputs)
    like = _first_float(params)
    key = (
        structure,
        input_structure,
        tuple((t.shape, t.dtype) if isinstance(t, torch.Tensor) else t for t in input_leaves),
        None if like is None else like.dtype,
        state is None,
    )
    try:
        cache = _PLANS.setdefault(model.forward, {})
    except TypeError:  # forward not weak-referenceable: no cache
        cache = {}
    if key not in cache:
        cache[key] = _shape_pass(model, params, leaves, structure, seeds, inputs, state)
    return cache[key]


def _shape_pass(model, params, leaves, structure, seeds, inputs, state):
    from fblitz.layers.base import forward_with_state  # layers build on this package's neighbours

    recorders = {index: Recorder() for index in seeds}
    one = [
        recorders[i] if i in recorders else torch.empty(leaf.shape[1:], dtype=leaf.dtype, device="meta")
        for i, leaf in enumerate(leaves)
    ]
    try:
        eps = tree_unflatten(structure, one)
        if state is None:
            model.forward(_meta(params), _meta(inputs), eps)
        else:
            forward_with_state(model, _meta(params), _meta(state), _meta(inputs), eps, train=True)
    except Exception:  # noqa: BLE001 - any model that cannot run on meta keeps its seeds (the hash)
        return None
    return [_requests(recorders[index]) for index in seeds]


def _requests(recorder: Recorder, path: tuple = ()) -> list:
    """``[(path, kind, shape, dtype)]`` for every request in ``recorder`` and its streams."""
    found = []
    for name, value in recorder.items():
        if isinstance(value, Recorder):
            found += _requests(value, (*path, int(name)))
        else:
            found.append(((*path,), name, *value))
    return found


def _draw_leaf(seed: torch.Tensor, requests: list) -> dict:
    """The dict that replaces one seed leaf: for each request, (S, *shape) numbers."""
    offset = seed.dim() >= 3  # an offset seed: (S, 1, 2) = [[seed, first row]]
    values = seed.reshape(seed.shape[0], -1).tolist()
    seeds = [value[0] for value in values]
    first_rows = [value[1] if offset else 0 for value in values]
    out: dict = {}
    for path, kind, shape, dtype in requests:
        node = out
        for index in path:
            node = node.setdefault(str(index), {})
        code = 0
        for part in (*path, _KIND_CODE[kind]):  # the request's own stream of every sample's seed
            code = fold_seed(code, part)
        node[kind] = _draw([fold_seed(s, code) for s in seeds], first_rows, kind, shape, dtype)
    return out


def _draw(seeds: list, first_rows: list, kind: str, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """(S, *shape) numbers of ``kind``: sample s drawn by a generator seeded with ``seeds[s]``, from row
    ``first_rows[s]`` of the batch."""
    rows, rest = (shape[0], shape[1:]) if shape else (1, ())
    per_row = math.prod(rest)
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    # every draw is rounded up to whole blocks so that a shorter draw is a prefix of a longer one
    block = _SIGN_BITS * _BLOCK if kind == "rademacher" else _BLOCK
    ends = [-(-((first + rows) * per_row) // block) * block for first in first_rows]
    gen = torch.Generator()
    if kind == "rademacher":  # 32 signs per random word: bit j of word i is sign 32 i + j
        words = torch.empty((len(seeds), max(ends) // _SIGN_BITS), dtype=torch.int64)
        for s, seed in enumerate(seeds):
            gen.manual_seed(seed)
            words[s, : ends[s] // _SIGN_BITS].random_(generator=gen)
        bits = (words.unsqueeze(-1) >> torch.arange(_SIGN_BITS)) & 1
        out = bits.reshape(len(seeds), -1).to(work).mul_(-2.0).add_(1.0)
    else:
        out = torch.empty((len(seeds), max(ends)), dtype=work)
        for s, seed in enumerate(seeds):
            gen.manual_seed(seed)
            draw = torch.randn if kind == "normal" else torch.rand
            draw(ends[s], generator=gen, dtype=work, out=out[s, : ends[s]])
    if any(first_rows):
        picked = torch.stack([out[s, r * per_row : (r + rows) * per_row] for s, r in enumerate(first_rows)])
    else:
        picked = out[:, : rows * per_row]
    return picked.to(dtype).reshape(len(seeds), *shape)
