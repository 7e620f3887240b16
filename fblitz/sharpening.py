"""Posterior sharpening (Fortunato, Blundell & Vinyals 2017), functional.

Bayes by Backprop draws one weight sample phi ~ q(phi) = N(mu, sigma^2) per
step. Posterior sharpening moves it towards the current minibatch (x, y):

    g     = grad_phi likelihood(f(phi, x), y)                  (data term at phi)
    theta = phi - eta * g + sigma_0 * eps',   eps' ~ N(0, I)
    q(theta | phi, x, y) = N(phi - eta * g, sigma_0^2),   p(theta | phi) = N(phi, sigma_0^2)

with a learned per-weight step ``eta`` (deterministic params, :func:`init_eta`)
and a fixed scalar ``sigma_0``. The per-sample loss is

    likelihood(f(theta, x), y) + complexity_cost_weight * KL(q(phi) || p(phi))
                               + sharpening_weight * ||eta * g||^2 / (2 sigma_0^2),

the last term being KL(q(theta | phi, x, y) || p(theta | phi)) of two
Gaussians with one covariance. The KL of phi is the usual one (closed form or
Monte Carlo at phi, :mod:`fblitz.kl`). ``g`` is taken with a nested
``torch.func.grad``, so everything runs under ``vmap`` over samples and under an
outer ``grad``; the outer gradient flows through ``g`` (second order) unless
``second_order=False``. Only the nodes in ``eta`` are sharpened (e.g. the
recurrent layers, as in the paper); each needs weight noise (reparameterization,
Flipout or radial), not local reparameterization.

**Weights.** With the likelihood a per-datum mean (fblitz's convention, see
:mod:`fblitz.objectives`), the minibatch's sharpening KL counts once per
minibatch, so ``sharpening_weight`` defaults to ``1 / targets.shape[0]`` (the
batch size when targets have the batch axis first); ``g`` is the gradient of
the mean, the paper's is of the minibatch sum: eta absorbs the factor.

**Differences from BLiTZ's ``forward_with_sharpening``.** BLiTZ sharpens from
``mu`` instead of the sample phi, adds ``sigma`` itself instead of
``sigma_0 * eps'``, initialises eta uniformly in +-1/sqrt(hidden), and scores
theta under q(phi) and the prior (dividing parts by the sequence length)
instead of adding the KL above; here the data term and both KLs follow the
paper, and the noise is an argument, so every draw is reproducible.

References:
    Fortunato, Blundell & Vinyals (2017), Bayesian Recurrent Neural Networks, sec. 4.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.func import grad, vmap

from fblitz import _checks
from fblitz.distributions import reparameterize
from fblitz.errors import FblitzValueError
from fblitz.kl import closed_form_kl, make_plan, monte_carlo_kl
from fblitz.layers.base import Layer, sample_noise
from fblitz.likelihoods import as_likelihood
from fblitz.objectives import sample_count
from fblitz.random import KeyLike, as_key, sample_eps
from fblitz.tree import PyTree, find_path, gaussian_items, get_path, path_name, tree_flatten


class SharpenedTerms(NamedTuple):
    """The sharpened negative ELBO and its parts (per sample, or averaged).

    Attributes:
        loss: ``data + complexity_cost_weight * kl + sharpening_weight * sharpening_kl``.
        data: the likelihood term at the sharpened weights theta.
        kl: KL(q(phi) || p(phi)), as :func:`fblitz.kl.kl_divergence` estimates it.
        sharpening_kl: KL(q(theta | phi, x, y) || p(theta | phi)).
    """

    loss: torch.Tensor
    data: torch.Tensor
    kl: torch.Tensor
    sharpening_kl: torch.Tensor


def init_eta(params: PyTree, where: Callable[[str], bool] | None = None, value: float = 0.0) -> dict:
    """The learned steps: ``value`` everywhere, one tensor per sharpened Gaussian node.

    Args:
        params: the model's params.
        where: ``path_name -> bool`` choosing the nodes (e.g.
            ``lambda p: p.startswith("0.")`` for the first layer of a serial);
            None selects every Gaussian node.
        value: the initial step (0 starts from the plain sample).

    Returns:
        A nested dict with mu's shape at each chosen node's path, e.g.
        ``{"0": {"weight_ih_l0": (16, 3), ...}}``.

    Example:
        >>> from fblitz import layers
        >>> model = layers.serial(layers.gru(3, 2), layers.linear(2, 1))
        >>> eta = init_eta(model.init(0), lambda path: path.startswith("0."))
        >>> sorted(eta["0"]), tuple(eta["0"]["weight_hh_l0"].shape)
        (['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0'], (6, 2))
    """
    value = _checks.real_number("value", value)
    eta: dict = {}
    for path, node in gaussian_items(params):
        if where is None or where(path_name(path)):
            _set_path(eta, path, torch.full_like(node["mu"], value))
    if not eta:
        raise FblitzValueError("where selects no Gaussian node of params: there is nothing to sharpen")
    return eta


def sample_sharpening_noise(
    model: Layer, key: KeyLike, params: PyTree, eta: dict, n_samples: int | None = None, *, estimator=None
) -> dict:
    """``{"phi": model noise, "theta": N(0, I) at eta's nodes}`` for S samples (leading axis S).

    Example:
        >>> from fblitz import layers
        >>> model = layers.lstm(2, 3)
        >>> params = model.init(0)
        >>> noise = sample_sharpening_noise(model, 1, params, init_eta(params), 4)
        >>> noise["theta"]["weight_hh_l0"].shape
        torch.Size([4, 12, 3])
    """
    phi_key, theta_key = as_key(key).split(2)
    nodes = _nodes(params, eta)
    theta = sample_eps(theta_key, {str(i): get_path(params, path) for i, path in enumerate(nodes)}, n_samples)
    out: dict = {}
    for i, path in enumerate(nodes):
        _set_path(out, path, theta[str(i)])
    return {"phi": sample_noise(model, phi_key, params, n_samples, estimator=estimator), "theta": out}


class Sharpened(NamedTuple):
    """One sharpened draw: ``model.apply(params, x, eps)`` runs at theta.

    Attributes:
        params: params with theta as the mean of each sharpened node.
        eps: the phi noise with zeros at those nodes.
        kl: KL(q(theta | phi, x, y) || p(theta | phi)), 0-dim.
    """

    params: PyTree
    eps: PyTree
    kl: torch.Tensor


def sharpen(model, params, eta, noise, inputs, targets, *, likelihood, sigma_0, second_order=True) -> Sharpened:
    """Sharpen ONE draw ``noise`` (no sample axis; ``vmap`` for several), see the module docstring.

    ``likelihood`` must already be a :mod:`fblitz.likelihoods` likelihood or a
    criterion callable; ``sigma_0 >= 0`` (0 is a point mass: the KL is 0 when
    ``eta * g == 0`` and +inf otherwise).
    """
    nodes = _nodes(params, eta)

    def at(weights):  # params and noise that make model.apply run at these weights
        p, e = params, noise["phi"]
        for path, w in zip(nodes, weights):
            p = _replace(p, path, {"mu": w, "rho": get_path(params, path)["rho"]})
            e = _replace(e, path, torch.zeros_like(w))
        return p, e

    def data(weights):
        p, e = at(weights)
        return likelihood(model.forward(p, inputs, e), targets)

    phi = [_sample(get_path(params, path), get_path(noise["phi"], path)) for path in nodes]
    g = grad(data)(phi)
    if not second_order:
        g = [t.detach() for t in g]
    steps = [get_path(eta, path) * t for path, t in zip(nodes, g)]
    theta = [w - s + sigma_0 * get_path(noise["theta"], path) for path, w, s in zip(nodes, phi, steps)]
    return Sharpened(*at(theta), sharpening_kl(steps, sigma_0))


def sharpening_kl(steps: list[torch.Tensor], sigma_0: float) -> torch.Tensor:
    """KL(N(phi - s, sigma_0^2) || N(phi, sigma_0^2)) = ``||s||^2 / (2 sigma_0^2)``, 0-dim.

    ``steps`` are the moves ``s = eta * g`` of the sharpened tensors.
    ``sigma_0 = 0`` is a point mass: 0 when every step is 0, +inf otherwise.
    """
    squares = torch.stack([s.square().sum() for s in steps]).sum()
    if sigma_0 > 0:
        return squares * (0.5 / sigma_0**2)
    return torch.where(squares > 0, torch.full_like(squares, float("inf")), torch.zeros_like(squares))


def sharpened_elbo_samples(
    model: Layer,
    params: PyTree,
    eta: dict,
    noise: dict,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    likelihood,
    sigma_0: float,
    complexity_cost_weight: float = 1.0,
    sharpening_weight: float | None = None,
    kl_mode: str = "auto",
    second_order: bool = True,
) -> SharpenedTerms:
    """Per-sample sharpened negative-ELBO terms, each (S,), for ``noise`` from
    :func:`sample_sharpening_noise`. Differentiate ``.loss.mean()`` w.r.t.
    ``(params, eta)`` with ``torch.func.grad``.
    """
    likelihood = as_likelihood(likelihood)
    sigma_0 = _checks.non_negative("sigma_0", sigma_0)
    complexity_cost_weight = _checks.non_negative("complexity_cost_weight", complexity_cost_weight)
    second_order = _checks.boolean("second_order", second_order)
    _checks.tensor("targets", targets)
    if sharpening_weight is None:
        sharpening_weight = 1.0 / max(targets.shape[0] if targets.dim() else 1, 1)
    sharpening_weight = _checks.non_negative("sharpening_weight", sharpening_weight)
    if not isinstance(noise, dict) or set(noise) != {"phi", "theta"}:
        raise FblitzValueError(f"noise must be sample_sharpening_noise's dict with keys phi, theta, got {noise!r:.80}")
    count = sample_count(model, params, noise["phi"])
    for path in _nodes(params, eta):
        like = get_path(params, path)["mu"]
        for name, tree in (("noise['phi']", noise["phi"]), ("noise['theta']", noise["theta"])):
            leaf = find_path(tree, path)
            if not isinstance(leaf, torch.Tensor) or leaf.shape != (count, *like.shape):
                raise FblitzValueError(
                    f"{name} at '{path_name(path)}' must be weight noise of shape {(count, *like.shape)} to "
                    f"sharpen that node (local reparameterization draws none), got {leaf!r:.80}"
                )
    plan = make_plan(params, model.priors, kl_mode)
    closed = closed_form_kl(plan, params)

    def one_sample(n):
        sharp = sharpen(model, params, eta, n, inputs, targets, likelihood=likelihood, sigma_0=sigma_0,
                        second_order=second_order)  # fmt: skip
        data = likelihood(model.forward(sharp.params, inputs, sharp.eps), targets)
        kl = monte_carlo_kl(plan, params, n["phi"]) + closed if plan.needs_noise else closed
        return data, kl, sharp.kl

    data, kl, sharp_kl = vmap(one_sample)(noise)
    return SharpenedTerms(data + complexity_cost_weight * kl + sharpening_weight * sharp_kl, data, kl, sharp_kl)


def sharpened_elbo(*args, **kwargs) -> SharpenedTerms:
    """:func:`sharpened_elbo_samples` averaged over the samples (0-dim terms)."""
    return SharpenedTerms(*(t.mean() for t in sharpened_elbo_samples(*args, **kwargs)))


def _nodes(params: PyTree, eta: dict) -> list[tuple]:
    """The paths of eta's leaves, checked against params' Gaussian nodes."""
    leaves, structure = tree_flatten(eta)
    paths = [tuple(path) for path in structure.paths()]
    for path, leaf in zip(paths, leaves):
        node = find_path(params, path)
        if not (isinstance(node, dict) and set(node) == {"mu", "rho"}) or leaf.shape != node["mu"].shape:
            got = tuple(leaf.shape) if isinstance(leaf, torch.Tensor) else repr(leaf)
            raise FblitzValueError(f"eta at '{path_name(path)}' must match a Gaussian node's mu in params, got {got}")
    return paths


def _sample(node: dict, eps: torch.Tensor) -> torch.Tensor:
    return reparameterize(node["mu"], node["rho"], eps)


def _set_path(tree: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _replace(tree: dict, path: tuple, value) -> dict:
    """A copy of ``tree`` with ``value`` at ``path`` (only the dicts along the path are copied)."""
    if not path:
        return value
    return {**tree, path[0]: _replace(tree[path[0]], path[1:], value)}
