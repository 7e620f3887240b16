"""The stacked, optionally bidirectional recurrent layer behind :mod:`fblitz.layers.recurrent` (internal).

One builder serves every cell kind of :mod:`fblitz.layers.cells` (LSTM,
BLiTZ's peephole LSTM, GRU, and the tanh/relu vanilla RNN): the kinds differ
only in their step function, the number of gate blocks G (weights have
G * hidden_size rows) and whether the state is ``(h, c)`` or ``h``.

Example (through the public constructor, which passes its keyword arguments as ``options``):
    >>> import torch
    >>> from fblitz.layers import rnn
    >>> layer = rnn(3, 4, nonlinearity="relu", num_layers=2)
    >>> output, h_n = layer.apply(layer.init(0), torch.ones(5, 2, 3))
    >>> tuple(output.shape), tuple(h_n.shape)
    ((5, 2, 4), (2, 2, 4))
"""

from __future__ import annotations

import torch

from fblitz import _checks, seeded
from fblitz.distributions import sigma
from fblitz.errors import FblitzTypeError, FblitzValueError
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
from fblitz.posterior import check_noise, gaussian_init, sample
from fblitz.priors import blitz_default, check_prior
from fblitz.radial import check_posterior, radial_noise, radial_prior
from fblitz.random import as_key, sample_eps
from fblitz.seeded import stream


def _validate_state(name: str, value: object, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    _checks.tensor(name, value, floating=True)
    _checks.same_shape(name, value, shape, "(num_layers * num_directions, N, hidden_size) for this input")
    if value.dtype != like.dtype:
        raise FblitzTypeError(f"{name} must have the input's dtype {like.dtype}, got {value.dtype}")
    return value


# kind -> (step function, gate blocks G, family name used in messages and the repr)
_KINDS = {
    "lstm": (lstm_step, 4, "lstm"),
    "peephole": (peephole_step, 4, "lstm"),
    "gru": (gru_step, 3, "gru"),
    "rnn_tanh": (rnn_tanh_step, 1, "rnn"),
    "rnn_relu": (rnn_relu_step, 1, "rnn"),
}


def build_recurrent(kind: str, input_size, hidden_size, options: dict) -> Layer:
    """The layer of ``kind`` (a key of ``_KINDS``); ``options`` holds the public constructor's keyword arguments."""
    input_size = _checks.integer("input_size", input_size, minimum=1)
    hidden_size = _checks.integer("hidden_size", hidden_size, minimum=1)
    num_layers = _checks.integer("num_layers", options["num_layers"], minimum=1)
    has_bias, batch_first, freeze, bidirectional = (
        _checks.boolean(name, options[name]) for name in ("bias", "batch_first", "freeze", "bidirectional")
    )
    directions = 2 if bidirectional else 1
    prior = options["prior"]
    if prior is None:
        prior = blitz_default(options["prior_sigma_1"], options["prior_sigma_2"], options["prior_pi"])
    prior = check_prior("prior", prior)
    posterior = gaussian_init(
        options["posterior_mu_init"],
        options["posterior_mu_std"],
        options["posterior_rho_init"],
        options["posterior_rho_std"],
    )
    default_estimator = _checks.one_of("estimator", options["estimator"], ("reparameterization", "flipout"))
    radial = check_posterior("posterior", options["posterior"], default_estimator) == "radial"
    step, gates, family = _KINDS[kind]
    is_lstm = family == "lstm"
    rows = gates * hidden_size
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

    def init(key, *, dtype=None, device=None):
        dtype, device = _checks.init_options(dtype, device)
        keys = as_key(key).split(len(shapes))
        return {
            name: posterior.node(k, shape, dtype=dtype, device=device) for k, (name, shape) in zip(keys, shapes.items())
        }

    def initial_state(state, xs, batched):
        full = (num_layers * directions, xs.shape[1], hidden_size)
        shape = full if batched else (full[0], hidden_size)
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

    def weights(params, eps):
        if not isinstance(params, dict) or params.keys() != shapes.keys():
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise FblitzValueError(f"params of {family} must be a dict with keys {sorted(shapes)}, got {got}")
        if freeze or eps is None:
            return {name: params[name]["mu"] for name in shapes}
        if not isinstance(eps, dict) or eps.keys() - {"seed"} != shapes.keys():
            got = sorted(eps) if isinstance(eps, dict) else type(eps).__name__
            raise FblitzValueError(f"eps of {family} must be a dict with keys {sorted(shapes)}, got {got}")
        if "seed" in eps:  # Flipout: mean + signed shared perturbation for the matrices
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
        return {name: sample(params[name], eps[name]) for name in shapes}

    def noise(key, params, n_samples=None, estimator=None):
        draw = radial_noise if radial else sample_eps
        chosen = estimator if estimator in ("reparameterization", "flipout") else default_estimator
        if chosen == "reparameterization":
            return draw(key, params, n_samples) if radial else None
        weight_key, seed_key = as_key(key).split(2)
        device = next(iter(params.values()))["mu"].device
        return {**draw(weight_key, params, n_samples), "seed": seeded.seeds(seed_key, n_samples, device=device)}

    def apply(params, x, eps=None, state=None):
        _checks.tensor("x", x, ndim=(2, 3), floating=True)
        _checks.last_dim("x", x, input_size)
        batched = x.dim() == 3
        xs = (x.transpose(0, 1) if batch_first else x) if batched else x.unsqueeze(1)
        if xs.shape[0] == 0:
            raise FblitzValueError(f"x must hold at least one time step, got shape {tuple(x.shape)}")
        state = initial_state(state, xs, batched)
        w = weights(params, eps)
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
    defaults = {"num_layers": 1, "bias": True, "batch_first": False, "bidirectional": False, "peephole": False}
    flags = ", nonlinearity='relu'" if kind == "rnn_relu" else ""
    flags += "".join(f", {key}={value}" for key, value in options.items() if value != defaults[key])
    name = f"{family}({input_size}, {hidden_size}{flags})"
    return Layer(init, apply, {n: radial_prior(prior) if radial else prior for n in shapes}, name, noise)
