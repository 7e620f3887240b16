"""The layer contract shared by every fblitz layer.

A layer is an immutable value holding pure functions (stax-style):

* ``init(key, *, dtype=None, device=None) -> params`` -- a fresh params tree;
* ``apply(params, x, eps=None) -> y`` -- the forward pass for ONE weight draw
  (the ``forward`` function the layer was built with, after
  :func:`~fblitz.layers.check_params` has checked ``params`` against the layer);
  ``eps`` is the layer's noise tree and ``None`` means "use the posterior
  means" (BLiTZ's frozen mode; dropout is then off). Sample axes come from
  ``torch.func.vmap`` over ``eps``;
* ``priors`` -- a tree with a prior at each Gaussian node of ``params`` and
  None at deterministic leaves, used by the KL term.

Two optional parts:

* ``noise(key, params, n_samples, estimator=None) -> eps or None`` -- how to
  draw the layer's noise. ``None`` (the field, or the function's result)
  means standard-normal weight noise at every Gaussian node
  (:func:`fblitz.random.sample_eps`), which containers draw in one call for
  all such layers. Layers whose noise shape depends on the input (dropout,
  local reparameterization, Flipout) put int64 seeds in their noise tree
  (:mod:`fblitz.seeded`). ``estimator`` is a per-call choice from
  :data:`fblitz.estimators.ESTIMATORS` that layers supporting it follow and
  the others ignore. Always draw a model's noise with :func:`sample_noise`.
* ``state`` -- a :class:`StateSpec` for layers with running statistics
  (batch norm). Their plain ``apply`` normalises with the batch's own
  statistics; :func:`apply_with_state` also returns the updated state, or
  uses the stored statistics when ``train=False``.
* ``moments(params, Moments) -> Moments`` -- the output's elementwise mean
  and variance from the input's, in closed form
  (:func:`fblitz.moments.predictive_moments`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.errors import FblitzTypeError
from fblitz.estimators import check_estimator
from fblitz.layers._usage import check_used, describe, usage_of
from fblitz.layers.params_check import check_params
from fblitz.random import KeyLike, as_key, sample_eps
from fblitz.tree import PyTree, flatten_gaussian, is_gaussian, map_gaussian, tree_leaves, tree_map


class StateSpec(NamedTuple):
    """The stateful half of a layer.

    Attributes:
        init: ``(*, dtype=None, device=None) -> state``, the initial state tree.
        apply: ``(params, state, x, eps, train) -> (y, new_state)``; with
            ``train=True`` the layer uses batch statistics and returns updated
            running statistics, with ``train=False`` it uses ``state`` and
            returns it unchanged.
    """

    init: Callable[..., PyTree]
    apply: Callable[..., tuple]


class Layer(NamedTuple):
    """A functional (Bayesian) layer or model: ``init``, ``apply``, ``priors``.

    Built as ``Layer(init, forward, priors, name, noise, state, moments)``: ``forward``
    is the layer's own forward pass, trusting its arguments. Call the layer
    through :meth:`apply`, which first checks the params tree against the
    model (:func:`fblitz.layers.check_params`). Containers and training steps
    that have checked the whole tree once call ``forward`` on the parts.
    """

    init: Callable[..., PyTree]
    forward: Callable[..., object]
    priors: PyTree
    name: str = "layer"
    noise: Callable[..., PyTree | None] | None = None
    state: StateSpec | None = None
    moments: Callable[..., object] | None = None

    def apply(self, params: PyTree, x, eps: PyTree | None = None, *args, **kwargs):
        """``forward(params, x, eps, ...)`` after checking ``params`` against this layer.

        Raises:
            FblitzValueError, FblitzTypeError: ``params`` is not a tree this
                layer's ``init`` builds (structure, a leaf's shape, dtype or
                device); the message names the path.
        """
        check_params(self, params)
        return self.forward(params, x, eps, *args, **kwargs)

    def __repr__(self) -> str:
        return f"Layer({self.name})"


def no_params(key=None, *, dtype=None, device=None) -> dict:
    """``init`` of a parameter-free layer: the empty tree (``dtype`` and ``device`` are still checked)."""
    _checks.init_options(dtype, device)
    return {}


def has_gaussian(params: PyTree) -> bool:
    """True when ``params`` holds at least one ``{"mu", "rho"}`` node."""
    return any(is_gaussian(node) for node in flatten_gaussian(params)[0])


def sample_noise(
    model: Layer, key: KeyLike, params: PyTree, n_samples: int | None = None, *, estimator: str | None = None
) -> PyTree:
    """Draw the noise tree ``model.apply`` expects, for S samples at once.

    Args:
        model: the layer or model.
        key: random key or int seed.
        params: its parameters (noise takes their shapes, dtypes and devices).
        n_samples: S for a leading sample axis on every noise leaf (for
            ``vmap``), or None for one draw without that axis.
        estimator: overrides the estimator of every layer that supports it
            (see :mod:`fblitz.estimators`); None keeps each layer's own. An
            estimator that no layer of ``model`` uses is an error (see
            :func:`estimator_usage` for which layer uses which).

    For models without custom-noise layers this is exactly
    ``sample_eps(key, params, n_samples)``. Seeds (the int64 leaves) are put
    on the params' device when all params share one, so parameter-free
    layers such as dropout follow the model too.

    Example:
        >>> from fblitz.layers import linear, dropout, serial
        >>> model = serial(linear(3, 4), dropout(0.5), linear(4, 1))
        >>> eps = sample_noise(model, 0, model.init(0), 8)
        >>> eps["0"]["weight"].shape, eps["1"]["seed"].shape
        (torch.Size([8, 4, 3]), torch.Size([8]))
    """
    check_params_given("params", params)
    if estimator is not None:
        check_estimator("estimator", estimator)
    eps = draw_noise(model, key, params, n_samples, estimator)
    if estimator is not None:
        check_used(estimator, usage_of(params, eps))
    return eps


def draw_noise(model: Layer, key: KeyLike, params: PyTree, n_samples: int | None, estimator: str | None) -> PyTree:
    """:func:`sample_noise` without its argument checks (for callers that checked once already)."""
    eps = None if model.noise is None else model.noise(as_key(key), params, n_samples, estimator)
    if eps is None:
        return weight_noise(key, params, n_samples)
    device = params_device(params)
    if device is None:
        return eps
    return tree_map(lambda leaf: leaf.to(device) if _is_seed(leaf) and leaf.device != device else leaf, eps)


def params_device(params: PyTree) -> torch.device | None:
    """The one device all tensors of ``params`` live on; None when there are none or several."""
    devices = {leaf.device for leaf in tree_leaves(params) if isinstance(leaf, torch.Tensor)}
    return devices.pop() if len(devices) == 1 else None


def _is_seed(leaf: object) -> bool:
    return isinstance(leaf, torch.Tensor) and leaf.dtype == torch.int64


def estimator_usage(model: Layer, params: PyTree, estimator: str | None = None) -> dict[str, str]:
    """Which estimator each Bayesian weight layer of ``model`` uses, ``{layer path: estimator}``.

    With ``estimator`` (a per-call choice, as ``fit``, ``sample_elbo`` and
    ``predict`` take it), layers that support it use it and the others keep
    their own. The path is the layer's position in the params tree (``"0"``,
    ``"2"`` in a ``serial``; ``""`` for a single layer; dotted module names for
    a bridged ``nn.Module``).

    Example:
        >>> from fblitz.layers import linear, lstm, serial
        >>> model = serial(lstm(3, 4), lambda out: out[0], linear(4, 1))
        >>> estimator_usage(model, model.init(0), "local_reparameterization")
        {'0': 'reparameterization', '2': 'local_reparameterization'}
    """
    check_params_given("params", params)
    if estimator is not None:
        check_estimator("estimator", estimator)
    return usage_of(params, draw_noise(model, 0, params, None, estimator))


def estimator_summary(model: Layer, params: PyTree, estimator: str | None = None) -> str:
    """:func:`estimator_usage` as one line, marking the layers that do not follow ``estimator``.

    Example:
        >>> from fblitz.layers import linear, lstm, serial
        >>> model = serial(lstm(3, 4), lambda out: out[0], linear(4, 1))
        >>> estimator_summary(model, model.init(0), "local_reparameterization")
        'estimators by layer: 0 reparameterization (no local_reparameterization), 2 local_reparameterization'
    """
    return describe(estimator_usage(model, params, estimator), estimator)


def check_params_given(name: str, params: object) -> None:
    """Raise :class:`~fblitz.errors.FblitzTypeError` unless ``params`` is a params tree (a container).

    Only the kind of value is checked here (None, a tensor or a module instead
    of ``model.init(key)``'s dict); matching the tree to its model is separate.
    """
    if not isinstance(params, (dict, list, tuple)):
        raise FblitzTypeError(
            f"{name} must be the params tree (a dict) that model.init(key) returns, got {_checks._describe(params)}"
        )


def weight_noise(key: KeyLike, params: PyTree, n_samples: int | None = None) -> PyTree:
    """Standard-normal noise at each Gaussian node; ``()`` everywhere else."""
    flat = flatten_gaussian(params)
    if any(is_gaussian(node) for node in flat[0]):
        return sample_eps(key, params, n_samples, flat=flat)
    return map_gaussian(lambda node: (), params)  # nothing to draw


def init_state(model: Layer, *, dtype=None, device=None) -> PyTree:
    """The initial state tree of ``model`` (``{}`` for stateless layers)."""
    dtype, device = _checks.init_options(dtype, device)
    return {} if model.state is None else model.state.init(dtype=dtype, device=device)


def apply_with_state(
    model: Layer, params: PyTree, state: PyTree, x, eps: PyTree | None = None, *, train: bool
) -> tuple[object, PyTree]:
    """``(y, new_state)``: the forward pass threading ``model``'s state.

    Stateless layers return ``state`` unchanged; see :class:`StateSpec`.
    ``params`` is checked against ``model`` (:func:`check_params`).
    """
    check_params(model, params)
    return forward_with_state(model, params, state, x, eps, train=train)


def forward_with_state(
    model: Layer, params: PyTree, state: PyTree, x, eps: PyTree | None = None, *, train: bool
) -> tuple[object, PyTree]:
    """:func:`apply_with_state` without the params check, for callers that checked the whole tree."""
    if model.state is None:
        return model.forward(params, x, eps), state
    return model.state.apply(params, state, x, eps, bool(train))


def is_stateful(model: Layer) -> bool:
    """True when ``model`` (or a layer inside it) keeps running statistics."""
    return model.state is not None
