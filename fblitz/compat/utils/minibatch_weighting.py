"""BLiTZ's ``minibatch_weight`` on :func:`fblitz.training.minibatch_weights`."""

from __future__ import annotations

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.training import minibatch_weights


def minibatch_weight(batch_idx: int, num_batches: int) -> float:
    """Blundell et al.'s KL share of minibatch ``batch_idx`` (0-based) of ``num_batches``.

    ``2^(M - i - 1) / (2^M - 1)``: the shares decrease and sum to 1.

    Example:
        >>> [round(minibatch_weight(i, 3), 4) for i in range(3)]
        [0.5714, 0.2857, 0.1429]
    """
    num_batches = _checks.integer("num_batches", num_batches, minimum=1)
    batch_idx = _checks.integer("batch_idx", batch_idx, minimum=0)
    if batch_idx >= num_batches:
        raise FblitzValueError(f"batch_idx must be < num_batches ({num_batches}), got {batch_idx}")
    return float(minibatch_weights(num_batches, "blundell")[batch_idx])
