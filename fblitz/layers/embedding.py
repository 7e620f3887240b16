"""Bayesian embedding (BLiTZ's ``BayesianEmbedding``, torch's ``nn.Embedding``)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers._spec import bayes_from, gaussian_layer
from fblitz.layers.base import Layer
from fblitz.priors import Prior

_INDEX_DTYPES = (torch.int32, torch.int64)


class EmbeddingSpec(NamedTuple):
    """The deterministic part of an embedding; ``op(x, weight)`` runs it."""

    num_embeddings: int
    padding_idx: int | None
    max_norm: float | None
    norm_type: float
    scale_grad_by_freq: bool

    def op(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Rows of ``weight`` (V, D) at the indices ``x`` (any shape): (*x.shape, D).

        The ``padding_idx`` row is replaced by zeros (so its output is zero and
        it gets no gradient); with ``max_norm``, each looked-up row whose
        ``norm_type``-norm exceeds ``max_norm`` is scaled by
        ``max_norm / (norm + 1e-7)``, as torch does, but on the returned rows
        instead of in place on the weight, and differentiably.
        """
        if self.padding_idx is not None:
            is_padding = torch.arange(weight.shape[0], device=weight.device) == self.padding_idx
            weight = torch.where(is_padding.unsqueeze(-1), 0.0, weight)
        rows = F.embedding(x, weight, scale_grad_by_freq=self.scale_grad_by_freq)
        if self.max_norm is None:
            return rows
        norms = torch.linalg.vector_norm(rows, ord=self.norm_type, dim=-1, keepdim=True)
        return rows * torch.where(norms > self.max_norm, self.max_norm / (norms + 1e-7), 1.0)

    def check(self, x: object) -> None:
        """Raise unless ``x`` is an int32/int64 tensor of indices in [0, num_embeddings)."""
        if not isinstance(x, torch.Tensor) or x.dtype not in _INDEX_DTYPES:
            got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else repr(x)
            raise FblitzTypeError(f"x must be an int64 or int32 tensor of indices, got {got}")
        # Values can be read unless x is batched by vmap, traced by torch.compile or on meta (no data).
        is_batched = getattr(torch._C._functorch, "is_batchedtensor", lambda t: True)
        if x.numel() == 0 or x.is_meta or torch.compiler.is_compiling() or is_batched(x):
            return
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= self.num_embeddings:
            raise FblitzValueError(
                f"x must hold indices in [0, {self.num_embeddings}) (num_embeddings), got values in [{low}, {high}]"
            )


def embedding(
    num_embeddings: int,
    embedding_dim: int,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
    prior_sigma_1: float = 0.1,
    prior_sigma_2: float = 0.002,
    prior_pi: float = 1.0,
    posterior_mu_init: float = 0.0,
    posterior_rho_init: float = -6.0,
    freeze: bool = False,
    prior: Prior | None = None,
    *,
    posterior_mu_std: float = 0.1,
    posterior_rho_std: float = 0.1,
) -> Layer:
    """A Bayesian lookup table: ``y = W[x]`` with W ~ q = N(mu, softplus(rho)^2).

    Arguments, their order and defaults are BLiTZ's ``BayesianEmbedding``
    (``prior`` stands for its ``prior_dist``); the lookup follows torch's
    ``nn.Embedding``, with these functional differences:

    * ``padding_idx`` (negative values count from the end): ``init`` sets that
      row's mu to zero and ``apply`` replaces the row of every weight draw by
      zeros, so its output is exactly zero for any noise and its mu and rho get
      no gradient from the output (BLiTZ only blocks the gradient, so its
      padding output is noisy). The KL term still covers that row.
    * ``max_norm``: torch renormalises the weight in place. Here the looked-up
      rows of each weight draw whose ``norm_type``-norm exceeds ``max_norm`` are
      rescaled to it in the output (differentiably); params are never changed.
    * ``sparse=True`` is not supported (torch.func has no sparse gradients).

    Params tree::

        {"weight": {"mu": (num_embeddings, embedding_dim), "rho": (num_embeddings, embedding_dim)}}

    ``apply(params, x, eps)`` maps int64/int32 indices ``x`` of any shape to
    (*x.shape, embedding_dim).

    Example:
        >>> import torch
        >>> layer = embedding(10, 3, padding_idx=0)
        >>> y = layer.apply(layer.init(0), torch.tensor([[0, 4], [9, 0]]))
        >>> y.shape, y[0, 0].tolist()
        (torch.Size([2, 2, 3]), [0.0, 0.0, 0.0])
    """
    args = bayes_from(locals())
    num_embeddings = _checks.integer("num_embeddings", num_embeddings, minimum=1)
    embedding_dim = _checks.integer("embedding_dim", embedding_dim, minimum=1)
    if padding_idx is not None:
        padding_idx = _checks.integer("padding_idx", padding_idx)
        if not -num_embeddings <= padding_idx < num_embeddings:
            raise FblitzValueError(
                f"padding_idx must lie in [-{num_embeddings}, {num_embeddings}) (num_embeddings), got {padding_idx}"
            )
        padding_idx %= num_embeddings
    if max_norm is not None:
        max_norm = _checks.positive("max_norm", max_norm)
    norm_type = _checks.positive("norm_type", norm_type)
    for flag, value in (("scale_grad_by_freq", scale_grad_by_freq), ("sparse", sparse)):
        if not isinstance(value, bool):
            raise FblitzTypeError(f"{flag} must be a bool, got {value!r}")
    if sparse:
        raise FblitzValueError("sparse=True is not supported: torch.func transforms need dense gradients")
    spec = EmbeddingSpec(num_embeddings, padding_idx, max_norm, norm_type, scale_grad_by_freq)
    name = (
        f"embedding({num_embeddings}, {embedding_dim}{'' if padding_idx is None else f', padding_idx={padding_idx}'})"
    )
    layer = gaussian_layer(name, {"weight": (num_embeddings, embedding_dim)}, args, spec.op, spec.check)
    if padding_idx is None:
        return layer

    def init(key, *, dtype=None, device=None):
        params = layer.init(key, dtype=dtype, device=device)
        row = torch.tensor([padding_idx], device=params["weight"]["mu"].device)
        return {"weight": {"mu": params["weight"]["mu"].index_fill(0, row, 0.0), "rho": params["weight"]["rho"]}}

    return layer._replace(init=init)
