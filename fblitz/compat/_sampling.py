"""S forward passes of a compat model in one ``torch.func.vmap`` (internal).

Every Bayesian layer of the model draws its noise for all S samples up front
(from its own key); ``model(inputs)`` then runs once under ``vmap`` over that
noise, each layer taking its slice from a sampling context and reporting its
``(log q, log p)`` back. The result is what S separate forward passes with
those draws would give (tested against a loop). Models with BatchNorm layers
in training mode run the S passes in a Python loop instead, with the same
noise: their running statistics are updated in place, which ``vmap`` cannot do.
So do models whose forward pass ``vmap`` rejects (``.item()``, Python branches
on tensor values): the ``vmap`` attempt raises a RuntimeError naming vmap, and
the loop runs instead.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from fblitz import _checks
from fblitz.compat._module import Draw, GaussianModule, sampling
from fblitz.errors import FblitzTypeError
from fblitz.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten


class Samples(NamedTuple):
    """Per-sample results, each with a leading axis S.

    Attributes:
        outputs: the model's outputs (a tensor or any nesting of tuples, lists and dicts of them).
        data: ``criterion(outputs, labels)`` per sample (zeros without a criterion).
        kl: the complexity cost ``sum(log q - log p)`` per sample.
    """

    outputs: object
    data: torch.Tensor
    kl: torch.Tensor


def sampling_layers(model: nn.Module) -> list[GaussianModule]:
    """The model's Bayesian layers that sample (not frozen)."""
    return [m for m in model.modules() if isinstance(m, GaussianModule) and not m.freeze]


def updates_running_stats(model: nn.Module) -> bool:
    """True when a BatchNorm layer of ``model`` would update running statistics in a forward pass."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats for m in model.modules()
    )


def run_samples(
    model: nn.Module, inputs, sample_nbr: int, criterion=None, labels=None, *, group: int | None = None
) -> Samples:
    """Evaluate ``model(inputs)`` (and ``criterion(outputs, labels)``) for ``sample_nbr`` weight draws.

    ``group``: evaluate the draws in vectorized calls of at most that many
    (the same draws: all noise is drawn first); None for one call. Prediction
    over many rows uses it to bound the activations held at once.

    Afterwards each layer's ``log_variational_posterior``/``log_prior`` hold
    the last sample's values, as after BLiTZ's loop.
    """
    count = _checks.integer("sample_nbr", sample_nbr, minimum=1)
    layers = sampling_layers(model)
    noise = [layer.draw_noise(count) for layer in layers]
    called: list[bool] = []

    def one(draws):
        with sampling({layer: Draw(eps) for layer, eps in zip(layers, draws)}) as context:
            outputs = model(inputs)
        terms = [context.log_terms.get(layer) for layer in layers]
        called[:] = [term is not None for term in terms]
        zero = _zero_like(outputs)
        log_q = torch.stack([zero if t is None else t[0] for t in terms]) if terms else zero.new_zeros(0)
        log_p = torch.stack([zero if t is None else t[1] for t in terms]) if terms else zero.new_zeros(0)
        data = zero if criterion is None else _criterion_value(criterion(outputs, labels))
        return outputs, data, log_q, log_p

    result = None
    if layers and not updates_running_stats(model):
        size = count if group is None else _checks.integer("group", group, minimum=1)
        try:
            parts = [_vectorized(one, tree_map(lambda t, i=i: t[i : i + size], noise)) for i in range(0, count, size)]
            result = parts[0] if len(parts) == 1 else tree_map(lambda *ts: torch.cat(ts), *parts)
        except RuntimeError as error:
            if "vmap" not in str(error):  # only what vmap cannot run (.item(), branching on values) falls back
                raise
    if result is None:
        per_sample = [one(tree_map(lambda t, i=i: t[i], noise)) for i in range(count)]
        result = (tree_map(lambda *ts: torch.stack(ts), *[p[0] for p in per_sample]),) + tuple(
            torch.stack([p[k] for p in per_sample]) for k in (1, 2, 3)
        )
    outputs, data, log_q, log_p = result
    for index, (layer, was_called) in enumerate(zip(layers, called)):
        if was_called:
            layer.log_variational_posterior, layer.log_prior = log_q[-1, index], log_p[-1, index]
    return Samples(outputs, data, (log_q - log_p).sum(dim=-1))


def _vectorized(fn, noise):
    """``vmap(fn)(noise)`` over the flat leaves of ``noise`` (vmap's own flattening of nested trees costs more);
    one draw runs the forward pass as it is, without vmap's per-operation cost."""
    leaves, structure = tree_flatten(noise)
    if leaves and leaves[0].shape[0] == 1:
        return tree_map(lambda t: t.unsqueeze(0), fn(tree_unflatten(structure, [leaf[0] for leaf in leaves])))
    return torch.func.vmap(lambda *flat: fn(tree_unflatten(structure, list(flat))), randomness="different")(*leaves)


def _criterion_value(value: object) -> torch.Tensor:
    """The criterion's result if it is a tensor (a Python number carries no gradient: nothing would train)."""
    if not isinstance(value, torch.Tensor):
        raise FblitzTypeError(
            f"criterion must return a tensor (e.g. nn.MSELoss()(outputs, labels)), got {type(value).__name__} "
            f"{value!r}: a Python number carries no gradient, so the data term would not be trained"
        )
    return value


def _zero_like(outputs) -> torch.Tensor:
    """A 0-dim zero with the dtype and device of the first tensor in ``outputs`` (any pytree)."""
    tensors = [leaf for leaf in tree_leaves(outputs) if isinstance(leaf, torch.Tensor)]
    if not tensors:
        raise FblitzTypeError(f"the model's forward must return tensors (in any nesting), got {type(outputs).__name__}")
    return torch.zeros((), dtype=tensors[0].dtype, device=tensors[0].device)
