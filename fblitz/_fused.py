"""Fused multi-tensor kernels for the eager training step (internal).

A params tree of a small network has a handful of small tensors, and an
optimizer update written as ``torch._foreach_*`` calls still dispatches about
ten operations per step. torch's fused Adam kernel (the one behind
``torch.optim.Adam(fused=True)``) does the whole update -- moments, bias
correction, parameter step -- in one call over all tensors, on CPU and CUDA.
It updates in place, so it runs on fresh copies: the inputs of a step are
never modified. The arithmetic is torch's, so results match the unfused
update to rounding (``tests/test_optim.py``).

:func:`all_finite` is the non-finite guard of a step in one kernel: the
gradient check of ``torch.amp`` (one pass over all gradients) instead of a
norm per tensor.
"""

from __future__ import annotations

import torch

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
