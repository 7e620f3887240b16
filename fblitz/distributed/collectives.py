"""Pytree collectives: a whole tree travels in one bucketed ``all_reduce`` or ``broadcast``.

The leaves are flattened into one contiguous buffer, the buffer goes through
a single collective, and the result is cut back into the tree. One call per
tree instead of one per tensor keeps the per-message latency (which
dominates for small networks) to a single round trip. Leaves of different
dtypes or devices go into one buffer each.

Example:
    >>> import torch
    >>> leaves = [torch.ones(2, 3), torch.zeros(4)]
    >>> buffers, layout = pack(leaves)
    >>> [b.shape for b in buffers]
    [torch.Size([10])]
    >>> [t.shape for t in unpack(buffers, layout)]
    [torch.Size([2, 3]), torch.Size([4])]
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from fblitz.tree import PyTree, check_tensor_leaves, tree_flatten, tree_unflatten

Layout = list[tuple[int, int, torch.Size]]  # per leaf: buffer index, offset, shape


def pack(leaves: list[torch.Tensor]) -> tuple[list[torch.Tensor], Layout]:
    """Concatenate ``leaves`` into one flat buffer per (dtype, device).

    Returns ``(buffers, layout)``; :func:`unpack` inverts it. The buffers are
    fresh tensors, never views of the leaves.
    """
    groups: dict[tuple, list[int]] = {}
    for index, leaf in enumerate(leaves):
        groups.setdefault((leaf.dtype, leaf.device), []).append(index)
    buffers, layout = [], [(0, 0, torch.Size())] * len(leaves)
    for bucket, members in enumerate(groups.values()):
        offset = 0
        for index in members:
            layout[index] = (bucket, offset, leaves[index].shape)
            offset += leaves[index].numel()
        buffers.append(torch.cat([leaves[index].reshape(-1) for index in members]))
    return buffers, layout


def unpack(buffers: list[torch.Tensor], layout: Layout) -> list[torch.Tensor]:
    """The leaves that :func:`pack` put into ``buffers`` (views of the buffers)."""
    return [buffers[bucket][offset : offset + shape.numel()].view(shape) for bucket, offset, shape in layout]


def all_reduce_tree(tree: PyTree, *, group=None) -> PyTree:
    """The elementwise sum of ``tree`` over all ranks, on every rank.

    Args:
        tree: a pytree of tensors with the same structure and shapes on every rank.
        group: the process group (default: the default group).

    Returns:
        A new tree; the input is not modified.
    """
    check_tensor_leaves("tree", tree)
    leaves, structure = tree_flatten(tree)
    buffers, layout = pack(leaves)
    for buffer in buffers:
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM, group=group)
    return tree_unflatten(structure, unpack(buffers, layout))


def global_rank(rank: int, group=None) -> int:
    """The default group's rank of ``group``'s rank ``rank`` (the same without a group)."""
    return rank if group is None else dist.get_global_rank(group, rank)


def broadcast_tree(tree: PyTree, *, src: int = 0, group=None) -> PyTree:
    """Rank ``src``'s (of ``group``) ``tree`` on every rank (e.g. to start all ranks from the same params)."""
    check_tensor_leaves("tree", tree)
    leaves, structure = tree_flatten(tree)
    buffers, layout = pack(leaves)
    for buffer in buffers:
        dist.broadcast(buffer, src=global_rank(src, group), group=group)
    return tree_unflatten(structure, unpack(buffers, layout))


def first_row(count: int, group=None, like: PyTree | None = None) -> int:
    """This rank's first row in a batch split over the ranks in rank order: the sum of the lower ranks' ``count``.

    One ``all_gather`` of the counts (a tensor on the device of ``like``'s
    first leaf, where NCCL needs it).
    """
    leaves = [] if like is None else tree_flatten(like)[0]
    device = leaves[0].device if leaves else None
    mine = torch.tensor([count], dtype=torch.int64, device=device)
    counts = [torch.zeros_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(counts, mine, group=group)
    return int(sum(c.item() for c in counts[: dist.get_rank(group)]))
