"""Hand-batched references: all S weight samples at once, autograd and ``torch.optim.Adam``.

What a careful engineer would write by hand for a fixed network, without
``vmap``: the S weight tensors ``mu + softplus(rho) * eps`` are materialised
together and the forward pass batches over them explicitly -- ``baddbmm`` for
linear layers, a grouped convolution (groups = S) for conv layers, a batched
LSTM cell with ``baddbmm`` per time step. The loss is fblitz's (mean over
samples of likelihood + ``weight`` * closed-form KL to the N(0, 0.1^2) prior
every benchmarked layer uses), so for the same ``eps`` the reference and
fblitz compute the same number (checked by ``tests/test_benchmarks.py``).

Parameters are the fblitz params tree with its leaves turned into autograd
leaves; ``eps`` is drawn with :func:`fblitz.random.sample_eps` (one ``randn``
call, explicit key) so both sides pay the same sampling cost.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fblitz.tree import tree_leaves, tree_map

PRIOR_SIGMA = 0.1


def weights(node: dict, eps: torch.Tensor) -> torch.Tensor:
    """S weight samples (S, *shape) from a ``{"mu", "rho"}`` node and noise (S, *shape)."""
    return torch.addcmul(node["mu"], F.softplus(node["rho"]), eps)


def gaussian_kl(params) -> torch.Tensor:
    """Closed-form KL(q || N(0, PRIOR_SIGMA^2)) summed over every Gaussian node."""
    total = 0.0
    for node in _nodes(params):
        s = F.softplus(node["rho"])
        var = s * s + node["mu"] * node["mu"]
        total = total + (var / (2 * PRIOR_SIGMA**2) - s.log() + math.log(PRIOR_SIGMA) - 0.5).sum()
    return total


def _nodes(tree):
    if isinstance(tree, dict) and set(tree) == {"mu", "rho"}:
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from _nodes(value)


def _dense(h: torch.Tensor, node_w, node_b, e_w, e_b) -> torch.Tensor:
    """h (S, B, in) -> (S, B, out) with S weight and bias samples."""
    return torch.baddbmm(weights(node_b, e_b).unsqueeze(1), h, weights(node_w, e_w).transpose(1, 2))


def mlp_forward(params, eps, x: torch.Tensor) -> torch.Tensor:
    """Serial linear/relu net (keys "0", "2", ...): x (B, in) -> (S, B, out)."""
    keys = [k for k in params if params[k]]
    s = eps[keys[0]]["weight"].shape[0]
    h = x.expand(s, *x.shape)
    return _dense_stack(params, eps, keys, h)


def _dense_stack(params, eps, keys, h):
    for i, k in enumerate(keys):
        h = _dense(h, params[k]["weight"], params[k]["bias"], eps[k]["weight"], eps[k]["bias"])
        if i < len(keys) - 1:
            h = torch.relu(h)
    return h


def _grouped_conv(h, node_w, node_b, e_w, e_b, s, padding):
    w = weights(node_w, e_w)  # (S, out, in, k, k)
    b = weights(node_b, e_b)  # (S, out)
    w = w.reshape(s * w.shape[1], *w.shape[2:])
    return F.conv2d(h, w, b.reshape(-1), padding=padding, groups=s)


def lenet_forward(params, eps, x: torch.Tensor, padding: int = 2) -> torch.Tensor:
    """fblitz's LeNet (conv keys "0", "3"; linear "7", "9", "11") with grouped convs: (S, B, classes)."""
    s = eps["0"]["weight"].shape[0]
    h = x.repeat(1, s, 1, 1)  # (B, S * C, H, W): sample-major channel groups
    for k in ("0", "3"):
        h = _grouped_conv(h, params[k]["weight"], params[k]["bias"], eps[k]["weight"], eps[k]["bias"], s, padding)
        h = F.max_pool2d(torch.relu(h), 2, 2)
    b = h.shape[0]
    h = h.reshape(b, s, -1).transpose(0, 1)  # (S, B, C*H*W), flattened per sample like fblitz
    h = torch.relu(_dense_stack(params, eps, ["7", "9"], h))
    return _dense(h, params["11"]["weight"], params["11"]["bias"], eps["11"]["weight"], eps["11"]["bias"])


def lstm_forward(params, eps, x: torch.Tensor) -> torch.Tensor:
    """lstm(1, H, batch_first) -> last step -> linear(H, 1), with a batched cell: (S, B, 1)."""
    p, e = params["0"], eps["0"]
    w_ih, w_hh = weights(p["weight_ih_l0"], e["weight_ih_l0"]), weights(p["weight_hh_l0"], e["weight_hh_l0"])
    b_ih, b_hh = weights(p["bias_ih_l0"], e["bias_ih_l0"]), weights(p["bias_hh_l0"], e["bias_hh_l0"])
    s, hidden = w_hh.shape[0], w_hh.shape[2]
    gx = torch.einsum("bli,sgi->slbg", x, w_ih) + b_ih[:, None, None, :]  # (S, L, B, 4H)
    h = x.new_zeros(s, x.shape[0], hidden)
    c = torch.zeros_like(h)
    w_hh_t, b_hh = w_hh.transpose(1, 2), b_hh.unsqueeze(1)
    for t in range(x.shape[1]):
        i, f, g, o = (gx[:, t] + torch.baddbmm(b_hh, h, w_hh_t)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    return _dense(h, params["2"]["weight"], params["2"]["bias"], eps["2"]["weight"], eps["2"]["bias"])


FORWARDS = {"mlp": mlp_forward, "cnn": lenet_forward, "lstm": lstm_forward}


def data_term(outputs: torch.Tensor, y: torch.Tensor, classes: int) -> torch.Tensor:
    """Mean over samples of the per-sample mean NLL (cross-entropy, or MSE for regression)."""
    if classes:
        s = outputs.shape[0]
        return F.cross_entropy(outputs.reshape(-1, classes), y.repeat(s))
    return F.mse_loss(outputs, y.expand_as(outputs))


def loss(kind: str, classes: int, params, eps, x, y, weight: float) -> torch.Tensor:
    """The negative ELBO averaged over the S samples in ``eps``."""
    return data_term(FORWARDS[kind](params, eps, x), y, classes) + weight * gaussian_kl(params)


def make_step(kind: str, classes: int, params, lr: float = 1e-3):
    """A stateful step ``step(eps, x, y, weight) -> loss`` updating autograd copies of ``params``."""
    leaves_tree = tree_map(lambda t: t.detach().clone().requires_grad_(True), params)
    optimizer = torch.optim.Adam(tree_leaves(leaves_tree), lr=lr)

    def step(eps, x, y, weight):
        optimizer.zero_grad(set_to_none=True)
        value = loss(kind, classes, leaves_tree, eps, x, y, weight)
        value.backward()
        optimizer.step()
        return value.detach()

    step.params = leaves_tree
    return step


@torch.no_grad()
def predict_mean_std(kind: str, params, eps, x) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean and std over the S samples in ``eps``."""
    out = FORWARDS[kind](params, eps, x)
    return out.mean(dim=0), out.std(dim=0)
