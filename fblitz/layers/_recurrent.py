"""The stacked, optionally bidirectional recurrent layer behind :mod:`fblitz.layers.recurrent` (internal).

One builder serves every cell kind of :mod:`fblitz.layers.cells` (LSTM,
BLiTZ's peephole LSTM, GRU, and the tanh/relu vanilla RNN): the kinds differ
only in their step function, the number of gate blocks G (weights have
G * hidden_size rows) and whether the state is ``(h, c)`` or ``h``.

Example (through the public constructor):
    >>> import torch
    >>> from fblitz.layers import rnn
    >>> layer = rnn(3, 4, nonlinearity="relu", num_layers=2)
    >>> output, h_n = layer.apply(layer.init(0), torch.ones(5, 2, 3))
    >>> tuple(output.shape), tuple(h_n.shape)
    ((5, 2, 4), (2, 2, 4))
"""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers._spec import bayes_from, init_fn, noise_fn
from fblitz.layers.base import Layer
from fblitz.layers.cells import (
    CellWeights,
    FlipoutWeight,
    flipout_linear,
    gru_step,
    lstm_step,
    peephole_step,
    rnn_relu_step,
    rnn_tanh_step,
    scan,
)
from fblitz.variational.distributions import sigma
from fblitz.variational.posterior import check_noise, sample
from fblitz.variational.seeded import stream

# kind -> (step function, gate blocks G, family name used in messages and the repr)
_KINDS = {
    "lstm": (lstm_step, 4, "lstm"),
    "peephole": (peephole_step, 4, "lstm"),
    "gru": (gru_step, 3, "gru"),
    "rnn_tanh": (rnn_tanh_step, 1, "rnn"),
    "rnn_relu": (rnn_relu_step, 1, "rnn"),
}
ESTIMATORS = ("reparameterization", "flipout")  # local reparameterization: the weights are shared over time


def build_recurrent(kind: str, input_size, hidden_size, num_layers, bias, batch_first, bidirectional, bayes) -> Layer:
    """The layer of ``kind`` (a key of ``_KINDS``) from the public constructor's arguments, validated here."""
    input_size = _checks.integer("input_size", input_size, minimum=1)
    hidden_size = _checks.integer("hidden_size", hidden_size, minimum=1)
    num_layers = _checks.integer("num_layers", num_layers, minimum=1)
    has_bias, batch_first, bidirectional = (
        _checks.boolean(name, value)
        for name, value in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional))
    )
    args = bayes_from(bayes, rho_init=-6.0)
    step, gates, family = _KINDS[kind]
    args.check_estimator(family, ESTIMATORS)
    directions = 2 if bidirectional else 1
    shapes, cells = _stack(gates * hidden_size, input_size, hidden_size, num_layers, directions, has_bias)
    is_lstm = family == "lstm"

    def apply(params, x, eps=None, state=None):
        _checks.tensor("x", x, ndim=(2, 3), floating=True)
        _checks.last_dim("x", x, input_size)
        batched = x.dim() == 3
        xs = (x.transpose(0, 1) if batch_first else x) if batched else x.unsqueeze(1)
        if xs.shape[0] == 0:
            raise FblitzValueError(f"x must hold at least one time step, got shape {tuple(x.shape)}")
        full = (num_layers * directions, xs.shape[1], hidden_size)
        state = _initial_state(state, xs, full if batched else (full[0], hidden_size), is_lstm)
        w = _weights(params, eps, shapes, args.freeze, family)
        finals, outputs = [], []
        for layer, direction, names in cells:
            index = layer * directions + direction
            start = (state[0][index], state[1][index]) if is_lstm else state[index]
            cell = CellWeights(*(w.get(name) for name in names))
            out, final = scan(step, cell, xs, start, reverse=bool(direction), linear=flipout_linear)
            finals.append(final)
            outputs.append(out)
            if direction == directions - 1:
                xs = torch.cat(outputs, dim=-1) if directions == 2 else out
                outputs = []
        output = (xs.transpose(0, 1) if batch_first else xs) if batched else xs.squeeze(1)
        unbatch = (lambda t: t) if batched else (lambda t: t.squeeze(1))
        if is_lstm:
            h_n = unbatch(torch.stack([h for h, _ in finals]))
            return output, (h_n, unbatch(torch.stack([c for _, c in finals])))
        return output, unbatch(torch.stack(finals))

    options = {"num_layers": num_layers, "bias": has_bias, "batch_first": batch_first}
    options |= {"bidirectional": directions == 2, "peephole": kind == "peephole"}
    name = _name(kind, family, input_size, hidden_size, options)
    noise = noise_fn(next(iter(shapes)), ESTIMATORS, args.estimator, args.family == "radial")
    priors = {n: args.tensor_prior for n in shapes}
    return Layer(init_fn(shapes, args.posterior), apply, priors, name, noise)


def _stack(rows: int, input_size: int, hidden_size: int, num_layers: int, directions: int, has_bias: bool):
    """``(shapes, cells)``: each tensor's shape by torch's name, and ``(layer, direction, names)`` per cell."""
    cells = []  # (layer, direction, names of w_ih, w_hh, b_ih, b_hh)
    shapes = {}
    for layer in range(num_layers):
        for direction in range(directions):
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            names = tuple(f"{part}_{suffix}" for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            shapes[names[0]] = (rows, input_size if layer == 0 else directions * hidden_size)
            shapes[names[1]] = (rows, hidden_size)
            if has_bias:
                shapes[names[2]] = shapes[names[3]] = (rows,)
            cells.append((layer, direction, names))
    return shapes, cells


def _name(kind: str, family: str, input_size: int, hidden_size: int, options: dict) -> str:
    """The layer's repr, e.g. ``lstm(3, 5, num_layers=2, bidirectional=True)`` (defaults left out)."""
    defaults = {"num_layers": 1, "bias": True, "batch_first": False, "bidirectional": False, "peephole": False}
    flags = ", nonlinearity='relu'" if kind == "rnn_relu" else ""
    flags += "".join(f", {key}={value}" for key, value in options.items() if value != defaults[key])
    return f"{family}({input_size}, {hidden_size}{flags})"


def _validate_state(name: str, value: object, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    _checks.tensor(name, value, floating=True)
    _checks.same_shape(name, value, shape, "(num_layers * num_directions, N, hidden_size) for this input")
    if value.dtype != like.dtype:
        raise FblitzTypeError(f"{name} must have the input's dtype {like.dtype}, got {value.dtype}")
    return value


def _initial_state(state, xs: torch.Tensor, shape: tuple, is_lstm: bool):
    """The validated initial state, batched as (num_layers * D, N, H); zeros for None. ``shape`` is the expected one."""
    batched = len(shape) == 3
    full = shape if batched else (shape[0], xs.shape[1], shape[1])
    if state is None:
        zeros = xs.new_zeros(full)
        return (zeros, zeros) if is_lstm else zeros
    if not is_lstm:
        h0 = _validate_state("state", state, shape, xs)
        return h0 if batched else h0.unsqueeze(1)
    if not isinstance(state, tuple) or len(state) != 2:
        raise FblitzTypeError(f"state of an LSTM must be a tuple (h0, c0), got {type(state).__name__}")
    h0, c0 = (_validate_state(f"state[{i}] ({'hc'[i]}0)", s, shape, xs) for i, s in enumerate(state))
    return (h0, c0) if batched else (h0.unsqueeze(1), c0.unsqueeze(1))


def _weights(params, eps, shapes: dict, freeze: bool, family: str) -> dict:
    """The weights of one call: means, samples, or (Flipout) mean plus a signed shared perturbation."""
    if not isinstance(params, dict) or params.keys() != shapes.keys():
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise FblitzValueError(f"params of {family} must be a dict with keys {sorted(shapes)}, got {got}")
    if freeze or eps is None:
        return {name: params[name]["mu"] for name in shapes}
    if not isinstance(eps, dict) or eps.keys() - {"seed"} != shapes.keys():
        got = sorted(eps) if isinstance(eps, dict) else type(eps).__name__
        raise FblitzValueError(f"eps of {family} must be a dict with keys {sorted(shapes)}, got {got}")
    if "seed" not in eps:
        return {name: sample(params[name], eps[name]) for name in shapes}
    return {
        name: FlipoutWeight(
            params[name]["mu"],
            sigma(params[name]["rho"]) * check_noise(f"eps['{name}']", eps[name], params[name]["mu"]),
            stream(eps["seed"], i),
        )
        if name.startswith("weight")
        else sample(params[name], eps[name])
        for i, name in enumerate(shapes)
    }
