"""BLiTZ's ``variational_estimator`` class decorator, with vectorized sampling.

The methods it adds keep BLiTZ's names, signatures and results (in
expectation: the draws differ). ``sample_elbo``, ``sample_elbo_detailed_loss``
and ``mfvi_forward`` evaluate their ``sample_nbr`` draws in one
``torch.func.vmap`` (:mod:`fblitz.compat._sampling`) instead of a loop.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fblitz import _checks
from fblitz.compat._module import BayesianModule, GaussianModule
from fblitz.compat._sampling import run_samples
from fblitz.compat.losses import kl_divergence_from_nn
from fblitz.compat.utils.sharpening import forward_with_sharpening
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.moped import moped
from fblitz.prediction import ROWS_X_DRAWS_PER_CALL


def nn_kl_divergence(self):
    """The summed complexity cost of the last sampling forward pass (:func:`kl_divergence_from_nn`)."""
    return kl_divergence_from_nn(self)


def sample_elbo(self, inputs, labels, criterion, sample_nbr, complexity_cost_weight=1):
    """Mean over ``sample_nbr`` weight draws of ``criterion(model(inputs), labels) + w * KL``.

    Args:
        inputs, labels: one batch.
        criterion: a loss ``(outputs, labels) -> tensor``, e.g. ``nn.MSELoss()``.
        sample_nbr: the number of weight draws S (evaluated in one ``vmap``).
        complexity_cost_weight: w >= 0, e.g. ``1 / len(train set)``.

    Returns:
        A tensor of the criterion's output shape: 0-dim for a reducing
        criterion, to ``.backward()``. As in BLiTZ, an unreduced criterion
        (``reduction="none"``) gives the per-element mean over the draws,
        with ``w * KL`` added to every element.
    """
    weight = _check_elbo_arguments(criterion, complexity_cost_weight)
    samples = run_samples(self, inputs, sample_nbr, criterion, labels)
    return (samples.data + _per_sample(weight * samples.kl, samples.data)).mean(dim=0)


def _check_elbo_arguments(criterion, complexity_cost_weight):
    """The checked complexity cost weight, after checking that ``criterion`` can be called."""
    if not callable(criterion):
        raise FblitzTypeError(
            f"criterion must be a callable (outputs, labels) -> tensor such as nn.MSELoss(), got {criterion!r}"
        )
    if isinstance(complexity_cost_weight, torch.Tensor):
        if complexity_cost_weight.dim() != 0 or not complexity_cost_weight.is_floating_point():
            raise FblitzTypeError(
                f"complexity_cost_weight must be a number or a 0-dim floating tensor, got {complexity_cost_weight!r}"
            )
        _checks.non_negative("complexity_cost_weight", float(complexity_cost_weight.detach()))
        return complexity_cost_weight
    return _checks.non_negative("complexity_cost_weight", complexity_cost_weight)


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` (S,) viewed to broadcast against ``like`` (S, ...), one value per draw."""
    return values.reshape(values.shape[0], *([1] * (like.dim() - 1)))


def sample_elbo_detailed_loss(self, inputs, labels, criterion, sample_nbr, complexity_cost_weight=1):
    """``(predictions, loss, likelihood cost, complexity cost)`` as BLiTZ.

    ``predictions`` is a numpy array (S, *output shape) of the detached
    outputs; the three costs are means over the S draws (``loss`` is their
    sum; with an unreduced criterion the likelihood cost and the loss have the
    criterion's output shape, as in BLiTZ).
    """
    weight = _check_elbo_arguments(criterion, complexity_cost_weight)
    samples = run_samples(self, inputs, sample_nbr, criterion, labels)
    if not isinstance(samples.outputs, torch.Tensor):
        raise FblitzTypeError("sample_elbo_detailed_loss needs a model whose output is one tensor")
    likelihood_cost = samples.data.mean(dim=0)
    complexity_cost = (weight * samples.kl).mean()
    predictions = np.array(samples.outputs.detach().cpu().numpy())
    return predictions, likelihood_cost + complexity_cost, likelihood_cost, complexity_cost


def freeze_model(self):
    """Make every Bayesian layer use its posterior means (deterministic outputs)."""
    for module in self.modules():
        if isinstance(module, BayesianModule):
            module.freeze = True


def unfreeze_model(self):
    """Make every Bayesian layer sample its weights again."""
    for module in self.modules():
        if isinstance(module, BayesianModule):
            module.freeze = False


def moped_(self, delta=0.1, *, weights=None):
    """MOPED (Krishnan et al. 2020): ``sigma = delta * |mu|`` for every Bayesian tensor, then unfreeze.

    With ``weights`` (an ``nn.Module`` or a state dict of a deterministic
    network with the same layer names, e.g. ``fc.weight`` for ``fc.weight_mu``)
    the means are first set to those weights. Uses :func:`fblitz.moped.moped`
    (a zero weight gets sigma 1e-8 instead of BLiTZ's ``log(1e-10)`` rho).
    """
    delta = _checks.positive("delta", delta)
    source = weights.state_dict() if isinstance(weights, nn.Module) else weights
    if source is not None and not hasattr(source, "keys"):
        raise FblitzTypeError(f"weights must be an nn.Module or a state dict, got {type(weights).__name__}")
    with torch.no_grad():
        for name, module in self.named_modules():
            if not isinstance(module, GaussianModule):
                continue
            params = module.variational_params()
            means = {}
            for tensor in params:
                key = f"{name}.{tensor}" if name else tensor
                if source is None:
                    means[tensor] = params[tensor]["mu"].detach()
                elif key not in source:
                    raise FblitzValueError(f"weights has no entry '{key}' for the Bayesian tensor '{key}_mu'")
                else:
                    means[tensor] = torch.as_tensor(source[key]).to(params[tensor]["mu"])
            for tensor, node in moped(params, means, delta).items():
                params[tensor]["mu"].copy_(node["mu"])
                params[tensor]["rho"].copy_(node["rho"])
    self.unfreeze_()


def mfvi_forward(self, inputs, sample_nbr=10):
    """Mean and standard deviation over ``sample_nbr`` draws of ``model(inputs)``.

    The draws are evaluated in ``vmap`` calls of about
    :data:`fblitz.prediction.ROWS_X_DRAWS_PER_CALL` rows x draws each (all at
    once for small inputs), as :func:`fblitz.prediction.predict` does: one call
    over every draw of thousands of rows would hold gigabytes of activations.
    """
    count = _checks.integer("sample_nbr", sample_nbr, minimum=2)
    rows = inputs.shape[0] if isinstance(inputs, torch.Tensor) and inputs.dim() else 1
    if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
        _checks.float_input("inputs", inputs)
    # the inputs are checked here and the predictions below: the layers need not scan each activation for NaNs
    with _checks.trusted():
        outputs = run_samples(self, inputs, count, group=max(1, ROWS_X_DRAWS_PER_CALL // max(rows, 1))).outputs
    if isinstance(outputs, torch.Tensor):
        _checks.finite_result("the predictions", outputs)
    return outputs.mean(dim=0), outputs.std(dim=0)


def variational_estimator(nn_class):
    """Add BLiTZ's Bayesian helpers to an ``nn.Module`` subclass (returns the class).

    Adds ``nn_kl_divergence``, ``sample_elbo``, ``sample_elbo_detailed_loss``,
    ``freeze_``, ``unfreeze_``, ``MOPED_``, ``mfvi_forward`` and
    ``forward_with_sharpening``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from fblitz.compat.modules import BayesianLinear
        >>> @variational_estimator
        ... class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.layer = BayesianLinear(3, 1, seed=0)
        ...     def forward(self, x):
        ...         return self.layer(x)
        >>> net = Net()
        >>> loss = net.sample_elbo(torch.ones(4, 3), torch.zeros(4, 1), nn.MSELoss(), sample_nbr=5,
        ...                        complexity_cost_weight=1 / 4)
        >>> loss.shape
        torch.Size([])
    """
    if not (isinstance(nn_class, type) and issubclass(nn_class, nn.Module)):
        raise FblitzTypeError(f"variational_estimator decorates an nn.Module subclass, got {nn_class!r}")
    nn_class.nn_kl_divergence = nn_kl_divergence
    nn_class.sample_elbo = sample_elbo
    nn_class.sample_elbo_detailed_loss = sample_elbo_detailed_loss
    nn_class.freeze_ = freeze_model
    nn_class.unfreeze_ = unfreeze_model
    nn_class.MOPED_ = moped_
    nn_class.mfvi_forward = mfvi_forward
    nn_class.forward_with_sharpening = forward_with_sharpening
    return nn_class
