"""Which estimator each weight layer of a model uses, read from a drawn noise tree (internal).

A layer with Gaussian nodes (``{"mu", "rho"}``) shows its estimator in the
noise it draws (as :func:`fblitz.estimators.kind_of` reads it): plain weight noise
for reparameterization, a ``"seed"`` with weight noise for Flipout, a
``"seed"`` alone for local reparameterization. (A radial layer is a posterior,
not an estimator: its radial weight noise is read the same way.) Reading the
noise works for every layer, our own and the nn.Module bridge alike, and
needs no extra field in the layer protocol.
"""

from __future__ import annotations

from fblitz.errors import FblitzValueError
from fblitz.tree import PyTree, is_gaussian


def _children(tree: object) -> list[tuple[str, object]]:
    if isinstance(tree, dict):
        return [(str(k), v) for k, v in tree.items()]
    if isinstance(tree, (list, tuple)):
        return [(str(i), v) for i, v in enumerate(tree)]
    return []


def _child(tree: object, name: str) -> object:
    if isinstance(tree, dict):
        return tree.get(name, tree.get(int(name)) if name.isdigit() else None)
    if isinstance(tree, (list, tuple)) and name.isdigit() and int(name) < len(tree):
        return tree[int(name)]
    return None


def usage_of(params: PyTree, eps: PyTree) -> dict[str, str]:
    """``{layer path: estimator}`` for every container of Gaussian nodes in ``params``.

    The path joins the keys with dots (``"0"``, ``"encoder.fc"``; ``""`` for a
    single layer); the value is one of :data:`fblitz.estimators.ESTIMATORS`.
    """
    usage: dict[str, str] = {}

    def visit(node, noise, path):
        children = _children(node)
        gaussian = [name for name, child in children if is_gaussian(child)]
        if gaussian:
            if isinstance(noise, dict) and "seed" in noise:
                flipout = any(name in noise for name in gaussian)  # Flipout keeps weight noise beside its seed
                usage[".".join(path)] = "flipout" if flipout else "local_reparameterization"
            else:
                usage[".".join(path)] = "reparameterization"
        for name, child in children:
            if name not in gaussian:
                visit(child, _child(noise, name), (*path, name))

    visit(params, eps, ())
    return usage


def describe(usage: dict[str, str], estimator: str | None = None) -> str:
    """One line: ``"estimators by layer: 0 flipout, 2 reparameterization (no flipout)"``."""
    if not usage:
        return "estimators by layer: none (the model has no Bayesian weight layer)"
    parts = []
    for path, used in usage.items():
        note = f" (no {estimator})" if estimator is not None and used != estimator else ""
        parts.append(f"{path or '(model)'} {used}{note}")
    return "estimators by layer: " + ", ".join(parts)


def check_used(estimator: str, usage: dict[str, str]) -> None:
    """Raise unless some layer uses ``estimator`` (a per-call choice no layer can follow is a mistake)."""
    if estimator in usage.values():
        return
    raise FblitzValueError(
        f"estimator={estimator!r} is used by no layer of this model, so it would change nothing "
        f"({describe(usage, estimator)}). Local reparameterization works in Gaussian linear, conv and "
        "conv-transpose layers; Flipout also in LSTM, GRU, RNN and radial layers; embeddings and nn.Module-bridge "
        "models use plain reparameterization only (see the estimators guide). Pass estimator=None to keep each "
        "layer's own."
    )
