"""Fused multi-tensor kernels for the eager training step (internal).

A params tree of a small network has a handful of small tensors, and an
optimizer update written as ``torch._foreach_*`` calls still dispatches about
ten operations per step. torch's fused Adam kernel (the one behind
``torch.optim.Adam(fused=True)``) does the whole update -- moments, bias
correction, parameter step -- in one call over all tensors, on CPU and CUDA.
It updates in place, so it runs on fresh copies: the inputs of a step are
never modified. The arithmetic is torch's, so results match the unfused
update to rounding (``tests/test_fused.py``).

:func:`all_finite` is the non-finite guard of a step in one kernel: the
gradient check of ``torch.amp`` (one pass over all gradients) instead of a
norm per tensor.
"""

from __future__ import annotations

import torch

from fblitz.tree import PyTree, tree_flatten, tree_unflatten

_FUSED_DEVICES = ("cpu", "cuda")


def fusable(*groups: list) -> bool:
    """True when torch's fused kernels can take these tensor lists.

    Floating-point tensors on one CPU or CUDA device, none requiring grad,
    outside ``torch.compile`` tracing and functorch transforms (there the
    unfused arithmetic is traced and fused by the compiler). Only the first
    tensor's device and dtype are read here: the kernels raise on a mismatch
    and the callers then take the unfused path, which reports it.
    """
    first = groups[0][0] if groups and groups[0] else None
    return (
        isinstance(first, torch.Tensor)
        and first.device.type in _FUSED_DEVICES
        and first.is_floating_point()
        and not torch.compiler.is_compiling()
        and not torch._C._functorch.is_functorch_wrapped_tensor(first)
        and not any(t.requires_grad for group in groups for t in group)
    )


def adam_step(params, grads, mu, nu, count, *, lr, b1, b2, eps, weight_decay, decoupled):
    """New ``(params, mu, nu)`` lists after one Adam step at step number ``count`` (a 0-dim tensor).

    ``weight_decay`` is L2 (added to the gradient) unless ``decoupled`` (AdamW).
    """
    new_params = [t.clone() for t in params]
    new_mu = [t.clone() for t in mu]
    new_nu = [t.clone() for t in nu]
    # torch keeps one float step tensor per parameter; the kernel reads it and does not change it
    steps = [count.to(dtype=torch.float32, device=params[0].device)] * len(params)
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    with torch.no_grad():
        kernel(
            new_params, list(grads), new_mu, new_nu, [], steps,
            lr=lr, beta1=b1, beta2=b2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False,
        )  # fmt: skip
    return new_params, new_mu, new_nu


def adam_step_fn(update, apply_updates, state_type, *, lr, b1, b2, eps, weight_decay, decoupled):
    """Adam's ``step(grads, state, params) -> (new_params, state)``: :func:`adam_step` when the trees allow it,
    else ``update`` then ``apply_updates`` (which also report malformed trees)."""

    def step(grads, state, params):
        if isinstance(state, state_type):
            leaves, structures = flatten_alike(grads, params, state.mu, state.nu)
            g, p, mu, nu = leaves
            same = all(other == structures[0] for other in structures[1:])
            if same and fusable(p, g, mu, nu) and shapes_match(p, g, mu, nu):
                count = state.count + 1
                try:
                    new_p, mu, nu = adam_step(
                        p, g, mu, nu, count, lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
                        decoupled=decoupled,
                    )  # fmt: skip
                except RuntimeError:  # e.g. mixed dtypes or devices: the unfused update handles or reports them
                    pass
                else:
                    back = lambda leaves: tree_unflatten(structures[0], leaves)  # noqa: E731
                    return back(new_p), state_type(count, back(mu), back(nu))
        updates, state = update(grads, state, params)
        return apply_updates(params, updates), state

    return step


def flatten_alike(*trees: PyTree) -> tuple[list[list], list]:
    """The leaves and structure of each tree, from one flattening of all of them."""
    leaves, structure = tree_flatten(trees)
    children = structure.children() if hasattr(structure, "children") else [tree_flatten(t)[1] for t in trees]
    groups, start = [], 0
    for child in children:
        groups.append(leaves[start : start + child.num_leaves])
        start += child.num_leaves
    return groups, list(children)


def shapes_match(*groups: list) -> bool:
    """True when the lists have one length and the tensors at each position one shape."""
    return all(len(group) == len(groups[0]) for group in groups) and all(
        len({t.shape for t in leaves}) == 1 for leaves in zip(*groups)
    )


def all_finite(loss: torch.Tensor, grads: list) -> torch.Tensor:
    """0-dim bool: ``loss`` and every entry of every gradient are finite.

    Eagerly one ``torch.amp`` gradient check over all tensors (it would scale
    the gradients in place by its third argument: 1 here, a no-op);
    otherwise (compiled) the finiteness of loss + the sum of the per-tensor
    norms, which is finite iff every entry is.
    """
    if grads and fusable(grads):
        found = torch.zeros((), dtype=torch.float32, device=grads[0].device)
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, torch.ones_like(found))
        return torch.isfinite(loss) & (found == 0)
    if not grads:
        return torch.isfinite(loss)
    return torch.isfinite(loss + torch.stack(torch._foreach_norm(grads)).sum())
