"""Gradients of a loss over a params tree: ``torch.autograd`` eagerly, ``torch.func`` when traced (internal).

``torch.func.grad`` wraps every tensor of the computation in a functorch
level, which costs a few microseconds per operation: on small networks, where
a training step is a few hundred small operations, that is a third of the
step. Eagerly -- no ``torch.compile`` tracing and no enclosing functorch
transform -- the same gradient is taken with ``torch.autograd.grad`` on
detached copies of the leaves, which records the same graph without the
wrapping. Inside a transform or a compiled function the ``torch.func`` path
is used, as before. Both give the same numbers (``tests/test_fused.py``).

While the loss runs under autograd, values that depend on the params
require grad; :func:`fblitz._checks.trusted` makes the value checks
skip them, as they skip functorch-wrapped tensors under ``torch.func.grad``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import grad_and_value

from fblitz import _checks
from fblitz.tree import PyTree, tree_flatten, tree_map, tree_unflatten


def traced() -> bool:
    """True inside ``torch.compile`` tracing or a functorch transform (``vmap``, ``grad``, ...)."""
    return torch.compiler.is_compiling() or torch._C._functorch.peek_interpreter_stack() is not None


def grad_with_aux(fn: Callable[..., tuple[torch.Tensor, PyTree]]) -> Callable[..., tuple[PyTree, PyTree]]:
    """``(params, *args) -> (grads, aux)`` for ``fn(params, *args) -> (0-dim loss, aux)``.

    ``grads`` has the structure of ``params``; ``aux`` is returned detached
    from the graph. Every leaf of ``params`` must be a floating-point tensor.
    """
    functional = grad_and_value(fn, has_aux=True)

    def run(params, *args):
        if traced():
            grads, (_, aux) = functional(params, *args)
            return grads, aux
        leaves, structure = tree_flatten(params)
        inputs = [leaf.detach().requires_grad_(True) for leaf in leaves]
        with torch.enable_grad(), _checks.trusted():
            loss, aux = fn(tree_unflatten(structure, inputs), *args)
        # unused leaves get zeros, as from torch.func.grad
        grads = torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True) if inputs else []
        return tree_unflatten(structure, list(grads)), tree_map(_detach, aux)

    return run


def _detach(leaf):
    return leaf.detach() if isinstance(leaf, torch.Tensor) else leaf
