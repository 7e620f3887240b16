"""Adapters to optimizer libraries with the same ``init``/``update`` protocol.

`torchopt <https://github.com/metaopt/torchopt>`_'s functional optimizers
(``torchopt.adam``, ``torchopt.sgd``, ``torchopt.chain(...)``, schedules, ...)
are optax-shaped like :mod:`fblitz.optim`: ``state = opt.init(params)``,
``updates, state = opt.update(grads, state, params=params)``. Two details
differ: ``params`` is keyword-only, and ``update`` modifies the gradients in
place unless told ``inplace=False``. :func:`from_torchopt` wraps such a
transform as a :class:`fblitz.optim.GradientTransformation` that is pure (never
in place), so it works everywhere fblitz takes an optimizer (``fit``,
``make_train_step``, hand-written loops with :func:`fblitz.optim.apply_updates`).
torchopt is optional: ``pip install "fblitz[interop]"``.

Example:
    >>> import torch
    >>> class Halve:  # any object with torchopt's init/update signatures
    ...     def init(self, params):
    ...         return ()
    ...     def update(self, updates, state, *, params=None, inplace=True):
    ...         return [-0.5 * g for g in updates], state
    >>> opt = from_torchopt(Halve())
    >>> updates, state = opt.update([torch.ones(2)], opt.init([torch.zeros(2)]), [torch.zeros(2)])
    >>> updates
    [tensor([-0.5000, -0.5000])]
"""

from __future__ import annotations

from fblitz.errors import FblitzTypeError
from fblitz.optim import GradientTransformation


def from_torchopt(transform: object) -> GradientTransformation:
    """A pure fblitz optimizer from a torchopt-style ``GradientTransformation``.

    Args:
        transform: an object with ``init(params)`` and
            ``update(updates, state, *, params=None, inplace=True)``, e.g.
            ``torchopt.adam(1e-2)`` or ``torchopt.chain(torchopt.clip.clip_grad_norm(1.0), torchopt.sgd(0.1))``.

    Returns:
        a :class:`~fblitz.optim.GradientTransformation` whose ``update(grads,
        state, params=None)`` calls ``transform.update(grads, state,
        params=params, inplace=False)``; the updates are *added* to the params
        by :func:`fblitz.optim.apply_updates` (torchopt's sign convention is the
        same).

    Raises:
        FblitzTypeError: ``transform`` lacks a callable ``init`` or ``update``.
    """
    init, update = getattr(transform, "init", None), getattr(transform, "update", None)
    if not callable(init) or not callable(update):
        raise FblitzTypeError(
            f"transform must have torchopt's init(params) and update(updates, state, *, params, inplace) "
            f"methods, got {transform!r}"
        )

    def pure_update(grads, state, params=None):
        return update(grads, state, params=params, inplace=False)

    return GradientTransformation(init, pure_update)
