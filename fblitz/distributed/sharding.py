"""Who does which part: rows of a batch, Monte Carlo samples, and noise keys per rank.

Example:
    >>> [shard(10, rank, 3) for rank in range(3)]
    [slice(0, 4, None), slice(4, 7, None), slice(7, 10, None)]
    >>> rank_key(7, 1) == rank_key(7, 1) != rank_key(7, 0)
    True
"""

from __future__ import annotations

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.random import Key, KeyLike, as_key

NOISE_MODES = ("per_rank", "shared")


def shard(size: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous share of ``range(size)`` split over ``world_size`` ranks.

    Shares differ in length by at most one (the first ``size % world_size``
    ranks get one more) and, taken in rank order, tile ``range(size)``; when
    ``size < world_size`` the last ranks get empty shares. With S samples and
    W ranks dividing it, rank r gets exactly samples ``r*S/W .. (r+1)*S/W - 1``.
    """
    size = _checks.integer("size", size, minimum=0)
    world_size = _checks.integer("world_size", world_size, minimum=1)
    rank = _checks.integer("rank", rank, minimum=0)
    if rank >= world_size:
        raise FblitzValueError(f"rank must be below world_size={world_size}, got {rank}")
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def rank_key(key: KeyLike, rank: int) -> Key:
    """The noise key of ``rank``: ``key.fold_in(rank)``, so ranks draw independent noise."""
    return as_key(key).fold_in(_checks.integer("rank", rank, minimum=0))
