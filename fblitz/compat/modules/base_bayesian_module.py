"""BLiTZ's base classes: ``BayesianModule`` and ``BayesianRNN`` (the recurrent layers' shared body).

BLiTZ's recurrent layers lay their weights out for ``x @ W``: ``weight_ih``
(in, 4H), ``weight_hh`` (H, 4H) and ONE bias (4H,); its GRU uses three of the
four column blocks of each matrix (``weight_ih[:, 3H:]`` and
``weight_hh[:, 2H:3H]`` are dead). The compat layers keep that layout (so
BLiTZ's state dicts load, and the KL covers the same tensors as BLiTZ's) and
translate each forward pass to :func:`fblitz.layers.lstm` / :func:`fblitz.layers.gru`
in torch's layout. The translation only transposes, selects and pads with
zeros, and it is applied to mu, rho and the noise alike, so the weights torch's
layout sees are exactly the translated draws::

    LSTM: weight_ih_l0 = W_ih^T, weight_hh_l0 = W_hh^T, bias_ih_l0 = b, bias_hh_l0 = 0
    GRU:  weight_ih_l0 = W_ih[:, :3H]^T, weight_hh_l0 = [W_hh[:, :2H], W_hh[:, 3H:]]^T,
          bias_ih_l0 = b[:3H], bias_hh_l0 = [0, 0, b[3H:]]
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fblitz import _checks, layers, seeded
from fblitz.compat._module import BayesianModule, GaussianModule, active_draw
from fblitz.compat.modules._setup import blitz_arguments
from fblitz.compat.modules._stateful_sharpening import NAMES, StatefulSharpening
from fblitz.distributions import reparameterize
from fblitz.posterior import gaussian_init
from fblitz.radial import radial_noise
from fblitz.random import sample_eps, uniform

__all__ = ["BayesianModule", "BayesianRNN"]

_NAMES = NAMES


class BayesianRNN(StatefulSharpening, GaussianModule):
    """The shared body of :class:`BayesianLSTM` and :class:`BayesianGRU` (BLiTZ's ``BayesianRNN``).

    ``sharpen=True`` adds BLiTZ's learned sharpening steps ``weight_ih_eta``,
    ``weight_hh_eta``, ``bias_eta`` (uniform in +-1/sqrt(H), as BLiTZ), used by
    ``forward_with_sharpening`` of a :func:`~fblitz.compat.utils.variational_estimator` model
    and by BLiTZ's stateful hooks (``sharpen_posterior``, ``forward(x, sharpen_loss=loss)``,
    ``set_loss_to_sharpen``, ``sample_weights``; see
    :mod:`fblitz.compat.modules._stateful_sharpening`).
    """

    kind = ""

    def __init__(self, sharpen=False, *, freeze=False, seed=None):
        super().__init__(freeze, seed)
        self.sharpen = sharpen
        self.loss_to_sharpen = None

    def _build(self, in_features, out_features, bias, prior_args, **options):
        self.in_features, self.out_features, self.use_bias = in_features, out_features, bias
        kwargs = blitz_arguments(self, _NAMES, *prior_args)
        constructor = layers.gru if self.kind == "gru" else layers.lstm
        self._set_layer(
            constructor,
            in_features,
            out_features,
            batch_first=True,
            bias=_checks.boolean("bias", bias),
            **options,
            **kwargs,
        )
        hidden = 4 * out_features
        shapes = {"weight_ih": (in_features, hidden), "weight_hh": (out_features, hidden), "bias": (hidden,)}
        init = gaussian_init(kwargs["posterior_mu_init"], 0.1, kwargs["posterior_rho_init"], 0.1)
        keys = self.next_key().split(len(shapes))
        dtype = torch.get_default_dtype()
        tree = {name: init.node(key, shape, dtype=dtype) for key, (name, shape) in zip(keys, shapes.items())}
        self._register(tree, active=_NAMES if bias else _NAMES[:2])  # BLiTZ keeps an unused bias too
        self.init_sharpen_parameters()

    def init_sharpen_parameters(self) -> None:
        """Add the sharpening steps ``<name>_eta`` when ``sharpen`` is set."""
        if self.sharpen:
            for name in _NAMES:
                setattr(self, f"{name}_eta", nn.Parameter(torch.empty_like(getattr(self, f"{name}_mu"))))
            self.init_eta()

    def init_eta(self) -> None:
        """Redraw the sharpening steps uniformly in +-1/sqrt(hidden size)."""
        bound = 1.0 / math.sqrt(self.out_features)
        with torch.no_grad():
            for name in _NAMES:
                eta = getattr(self, f"{name}_eta")
                eta.copy_((2 * uniform(self.next_key(), eta.shape, dtype=eta.dtype, device=eta.device) - 1) * bound)

    def sharpening_steps(self) -> dict:
        """``{name: eta}`` for the tensors that take part in the KL (empty unless ``sharpen``)."""
        return {name: getattr(self, f"{name}_eta") for name in self._names} if self.sharpen else {}

    def draw_noise(self, n_samples=None):
        tree, key = self.variational_params(), self.next_key()
        if self._posterior == "radial" and self._estimator != "flipout":
            return radial_noise(key, tree, n_samples)
        weight_key, sign_key = key.split(2)
        eps = (radial_noise if self._posterior == "radial" else sample_eps)(weight_key, tree, n_samples)
        if self._estimator == "flipout":
            eps["seed"] = seeded.seeds(sign_key, n_samples, device=tree["weight_ih"]["mu"].device)
        return eps

    def to_torch_layout(self, tensors: dict) -> dict:
        """BLiTZ-layout tensors ``{weight_ih, weight_hh, bias}`` -> the fblitz layer's torch-layout names."""
        h = self.out_features
        w_ih, w_hh = tensors["weight_ih"], tensors["weight_hh"]
        if self.kind == "gru":
            w_ih, w_hh = w_ih[..., : 3 * h], torch.cat([w_hh[..., : 2 * h], w_hh[..., 3 * h :]], dim=-1)
        out = {"weight_ih_l0": w_ih.transpose(-1, -2), "weight_hh_l0": w_hh.transpose(-1, -2)}
        if "bias" in tensors:
            b = tensors["bias"]
            if self.kind == "gru":
                out["bias_ih_l0"] = b[..., : 3 * h]
                out["bias_hh_l0"] = torch.cat([torch.zeros_like(b[..., : 2 * h]), b[..., 3 * h :]], dim=-1)
            else:
                out["bias_ih_l0"], out["bias_hh_l0"] = b, torch.zeros_like(b)
        return out

    def forward(self, x, hidden_states=None, sharpen_loss=None):
        loss = self.loss_to_sharpen if self.loss_to_sharpen is not None else sharpen_loss
        if loss is None or self.freeze:  # a frozen layer ignores the loss, as BLiTZ's
            return super().forward(x, hidden_states)
        return self._sharpened_forward(x, hidden_states, loss)

    def _run(self, params, x, eps, hidden_states=None):
        if eps is None:
            return self._run_at({name: node["mu"] for name, node in params.items()}, x, hidden_states)
        if "seed" in eps:  # Flipout perturbs activations: the fblitz layer needs mu, rho and the noise
            mus = self.to_torch_layout({name: node["mu"] for name, node in params.items()})
            rhos = self.to_torch_layout({name: node["rho"] for name, node in params.items()})
            torch_eps = self.to_torch_layout({name: eps[name] for name in params}) | {"seed": eps["seed"]}
            return self._apply_torch_layout(
                {name: {"mu": mus[name], "rho": rhos[name]} for name in mus}, x, torch_eps, hidden_states
            )
        weights = {name: reparameterize(node["mu"], node["rho"], eps[name]) for name, node in params.items()}
        if self.sharpen and active_draw(self)[0] is None:
            self._record_draw(weights, eps)  # what sharpen_posterior sharpens
        return self._run_at(weights, x, hidden_states)

    def _run_at(self, weights: dict, x, hidden_states):
        """The layer at fixed weights ``{name: tensor}`` in BLiTZ's layout (None entries are absent tensors)."""
        tensors = self.to_torch_layout({name: w for name, w in weights.items() if w is not None})
        # with eps=None the fblitz layer runs at the "means" it is given: here, these weights (rho unused)
        return self._apply_torch_layout(
            {name: {"mu": t, "rho": t} for name, t in tensors.items()}, x, None, hidden_states
        )

    def _apply_torch_layout(self, torch_params, x, torch_eps, hidden_states):
        if self.kind == "gru":
            state = None if hidden_states is None else hidden_states.unsqueeze(0)
            out, h_n = self._layer.forward(torch_params, x, torch_eps, state)
            return out, h_n[0]
        state = None if hidden_states is None else tuple(s.unsqueeze(0) for s in hidden_states)
        out, (h_n, c_n) = self._layer.forward(torch_params, x, torch_eps, state)
        return out, (h_n[0], c_n[0])
