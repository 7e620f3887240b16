"""Data terms of the ELBO: negative log-likelihoods per datum.

A likelihood is called as ``likelihood(outputs, targets)`` with the network
outputs for one weight draw and returns a 0-dim tensor: the negative
log-likelihood **averaged over the batch** (dimension 0) and summed over the
remaining dimensions of one datum. With that convention the KL term is
weighted by ``1 / dataset_size`` (see :mod:`fblitz.objectives`).

Shapes are checked exactly; nothing is broadcast.

Example:
    >>> import torch
    >>> nll = gaussian(sigma=1.0)
    >>> round(float(nll(torch.zeros(4, 1), torch.zeros(4, 1))), 4)  # 0.5 * log(2 pi)
    0.9189
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.distributions import LOG_SQRT_2PI, student_t_log_prob
from fblitz.errors import FblitzTypeError, FblitzValueError


class NoiseModel(NamedTuple):
    """The observation distribution behind a likelihood, for predictive distributions.

    Attributes:
        family: ``"gaussian"``, ``"student_t"``, ``"categorical"`` or ``"bernoulli"``.
        parameters: network outputs (any leading axes, e.g. (S, B, ...)) -> the
            family's parameters: ``(loc, scale)`` for a Gaussian, ``(loc, scale,
            df)`` for a Student-t (each of the targets' shape), ``(logits,)`` for
            the categorical (classes last) and the Bernoulli.
    """

    family: str
    parameters: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]


class Likelihood:
    """A named callable ``(outputs, targets) -> mean negative log-likelihood``.

    ``noise_model`` (a :class:`NoiseModel`, or None for a bare criterion) says
    which observation distribution the likelihood is, so that
    :func:`fblitz.predictive.predictive_distribution` can add the observation
    noise to the spread of the weight draws.
    """

    __slots__ = ("_fn", "name", "noise_model")

    def __init__(
        self,
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        name: str,
        noise_model: NoiseModel | None = None,
    ):
        self._fn, self.name, self.noise_model = fn, name, noise_model

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _checks.tensor("outputs", outputs)
        _checks.tensor("targets", targets)
        if outputs.dim() and outputs.shape[0] == 0:
            raise FblitzValueError(f"outputs must hold at least one datum, got shape {tuple(outputs.shape)}")
        return _checks.finite_result(f"the likelihood {self.name}", self._fn(outputs, targets))

    def __repr__(self) -> str:
        return f"Likelihood({self.name})"


def _per_datum_mean(values: torch.Tensor) -> torch.Tensor:
    """Sum over each datum's dimensions, mean over the batch dimension 0."""
    if values.dim() == 0:
        return values
    return values.reshape(values.shape[0], -1).sum(dim=1).mean()


def _same_shape(outputs: torch.Tensor, targets: torch.Tensor, what: str = "outputs") -> None:
    _checks.float_input("outputs", outputs)
    _checks.float_input("targets", targets)
    _checks.same_shape("targets", targets, outputs.shape, what)


def gaussian(sigma: float = 1.0) -> Likelihood:
    """Gaussian observation noise of fixed standard deviation ``sigma``.

    ``outputs`` are the predicted means; ``targets`` must have the same shape.
    Its value is ``0.5 * mse / sigma^2 + log(sigma) + 0.5 * log(2 pi)`` per output.
    """
    sigma = _checks.positive("sigma", sigma)
    log_norm = math.log(sigma) + LOG_SQRT_2PI

    def nll(outputs, targets):
        _same_shape(outputs, targets)
        z = (targets - outputs) / sigma
        return _per_datum_mean(0.5 * z * z + log_norm)

    return Likelihood(
        nll, f"gaussian(sigma={sigma})", NoiseModel("gaussian", lambda out: (out, torch.full_like(out, sigma)))
    )


def heteroscedastic_gaussian(min_sigma: float = 1e-6) -> Likelihood:
    """Gaussian noise whose scale the network predicts (or learns, see ``learned_noise``).

    ``outputs`` has shape (..., 2 * D): means ``outputs[..., :D]`` and raw scales
    ``outputs[..., D:]`` with sigma = softplus(raw) + ``min_sigma``;
    ``targets`` has shape (..., D).
    """
    min_sigma = _checks.non_negative("min_sigma", min_sigma)

    def nll(outputs, targets):
        _checks.float_input("outputs", outputs)
        _checks.float_input("targets", targets)
        half = outputs.shape[-1] // 2 if outputs.dim() else 0
        if outputs.dim() == 0 or outputs.shape[-1] % 2 or outputs.shape[:-1] + (half,) != targets.shape:
            raise FblitzValueError(
                "outputs must have shape (..., 2 * D) with means then raw scales for targets of shape "
                f"(..., D); got outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)}"
            )
        mean, raw = outputs.chunk(2, dim=-1)
        sigma = F.softplus(raw) + min_sigma
        z = (targets - mean) / sigma
        return _per_datum_mean(0.5 * z * z + torch.log(sigma) + LOG_SQRT_2PI)

    def parameters(outputs):
        mean, raw = outputs.chunk(2, dim=-1)
        return mean, F.softplus(raw) + min_sigma

    return Likelihood(nll, f"heteroscedastic_gaussian(min_sigma={min_sigma})", NoiseModel("gaussian", parameters))


def student_t(df: float | None = None, min_sigma: float = 1e-6, min_df: float = 1.0) -> Likelihood:
    """Student-t observation noise with a learned (or predicted) scale and fixed or learned tails.

    For targets of shape (..., D), ``outputs`` hold location ``outputs[..., :D]``
    and raw scale ``outputs[..., D:2D]`` with scale = softplus(raw) + ``min_sigma``
    (as :func:`heteroscedastic_gaussian`; ``layers.learned_noise`` makes the scale a
    learned constant). With ``df`` a number the degrees of freedom are fixed and
    ``outputs`` has shape (..., 2 * D). With ``df=None`` they are learned too:
    ``outputs`` has shape (..., 3 * D) whose last D entries are raw degrees of
    freedom, df = softplus(raw) + ``min_df`` (``layers.learned_df`` appends a learned
    constant). The default ``min_df = 1`` keeps the predictive mean defined.

    Example:
        >>> import torch
        >>> nll = student_t(df=1.0, min_sigma=0.0)  # Cauchy with scale softplus(0) = log 2
        >>> round(float(nll(torch.zeros(3, 2), torch.zeros(3, 1))), 4)  # log(pi log 2)
        0.7782
    """
    fixed_df = None if df is None else _checks.positive("df", df)
    min_sigma = _checks.non_negative("min_sigma", min_sigma)
    min_df = _checks.positive("min_df", min_df)
    parts = 2 if fixed_df is not None else 3

    def nll(outputs, targets):
        _checks.float_input("outputs", outputs)
        _checks.float_input("targets", targets)
        width = outputs.shape[-1] // parts if outputs.dim() else 0
        if outputs.dim() == 0 or outputs.shape[-1] % parts or outputs.shape[:-1] + (width,) != targets.shape:
            layout = "locations, raw scales" + ("" if fixed_df is not None else ", raw degrees of freedom")
            raise FblitzValueError(
                f"outputs must have shape (..., {parts} * D) with {layout} for targets of shape (..., D); "
                f"got outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)}"
            )
        loc, raw_scale, *raw_df = outputs.chunk(parts, dim=-1)
        scale = F.softplus(raw_scale) + min_sigma
        dof = fixed_df if fixed_df is not None else F.softplus(raw_df[0]) + min_df
        return _per_datum_mean(-student_t_log_prob(targets, loc, scale, dof))

    def parameters(outputs):
        loc, raw_scale, *raw_df = outputs.chunk(parts, dim=-1)
        dof = torch.full_like(loc, fixed_df) if fixed_df is not None else F.softplus(raw_df[0]) + min_df
        return loc, F.softplus(raw_scale) + min_sigma, dof

    df_name = "learned" if fixed_df is None else fixed_df
    name = f"student_t(df={df_name}, min_sigma={min_sigma}, min_df={min_df})"
    return Likelihood(nll, name, NoiseModel("student_t", parameters))


def categorical() -> Likelihood:
    """Softmax classification: ``outputs`` are logits (B, C), ``targets`` class indices (B,)."""

    def nll(outputs, targets):
        _checks.tensor("outputs", outputs, ndim=2)
        _checks.float_input("outputs", outputs)
        _checks.tensor("targets", targets, ndim=1)
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise FblitzTypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
        if targets.shape[0] != outputs.shape[0]:
            raise FblitzValueError(
                f"targets must have one class index per row of outputs ({outputs.shape[0]}), "
                f"got shape {tuple(targets.shape)}"
            )
        classes = outputs.shape[1]
        if _checks.eager(targets) and targets.numel() and not bool(((targets >= 0) & (targets < classes)).all()):
            raise FblitzValueError(f"targets must be class indices in [0, {classes}) for {classes} logits")
        return F.cross_entropy(outputs, targets)

    return Likelihood(nll, "categorical", NoiseModel("categorical", lambda out: (out,)))


def bernoulli() -> Likelihood:
    """Binary classification: ``outputs`` are logits, ``targets`` 0/1 floats of the same shape."""

    def nll(outputs, targets):
        _same_shape(outputs, targets)
        return _per_datum_mean(F.binary_cross_entropy_with_logits(outputs, targets, reduction="none"))

    return Likelihood(nll, "bernoulli", NoiseModel("bernoulli", lambda out: (out,)))


def criterion(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], name: str | None = None, *, check_shapes: bool = True
) -> Likelihood:
    """Wrap a torch-style criterion ``fn(outputs, targets) -> scalar`` (e.g. ``F.mse_loss``).

    The criterion's own reduction and scale are used as they are; BLiTZ's
    examples use ``nn.MSELoss()``. Torch criteria broadcast: ``F.mse_loss`` of
    outputs (N, 1) against targets (N,) averages an (N, N) table of every
    output against every target. So the shapes are checked first: targets
    must have the outputs' shape, or be integer class indices of the outputs'
    shape without the class dimension 1 (``F.cross_entropy``'s (N, C) logits
    and (N,) labels). ``check_shapes=False`` turns that off for criteria with
    other conventions.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> mse = criterion(F.mse_loss, "mse")
        >>> float(mse(torch.zeros(4, 1), torch.ones(4, 1)))
        1.0
        >>> mse(torch.zeros(4, 1), torch.ones(4))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        fblitz.errors.FblitzValueError: criterion mse: targets must have the outputs' shape (4, 1) ...
    """
    if not callable(fn):
        raise FblitzTypeError(f"criterion must be callable (outputs, targets) -> scalar, got {fn!r}")
    name = name or getattr(fn, "__name__", type(fn).__name__)
    check_shapes = _checks.boolean("check_shapes", check_shapes)

    def nll(outputs, targets):
        if check_shapes:
            _check_criterion_shapes(name, outputs, targets)
        value = fn(outputs, targets)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            raise FblitzValueError(
                f"criterion {name!r} must return a 0-dim tensor (use a mean or sum reduction), got "
                f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}"
            )
        return value

    return Likelihood(nll, name)


def _check_criterion_shapes(name: str, outputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Targets of the outputs' shape, or integer class indices of it without dimension 1."""
    if outputs.shape == targets.shape:
        return
    indices_shape = outputs.shape[:1] + outputs.shape[2:] if outputs.dim() >= 2 else torch.Size()
    if not targets.is_floating_point() and targets.dtype != torch.bool and targets.shape == indices_shape:
        return
    raise FblitzValueError(
        f"criterion {name}: targets must have the outputs' shape {tuple(outputs.shape)} (or be integer class "
        f"indices of shape {tuple(indices_shape)}), got targets {tuple(targets.shape)}; torch criteria "
        "broadcast, so nothing is computed"
    )


def as_likelihood(value: object) -> Likelihood:
    """A :class:`Likelihood` from a likelihood or any criterion-like callable."""
    if isinstance(value, Likelihood):
        return value
    if callable(value):
        return criterion(value)
    raise FblitzTypeError(
        f"likelihood must be a fblitz Likelihood or a callable (outputs, targets) -> scalar, got {value!r}"
    )
