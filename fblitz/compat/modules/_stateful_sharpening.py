"""BLiTZ's stateful sharpening hooks of ``BayesianRNN``, on Fortunato et al.'s posterior sharpening.

BLiTZ sharpens a recurrent layer in two steps: a sampling forward pass keeps
the weights it drew (``ff_parameters``); later, with a loss computed from
that pass's output, ``sharpen_posterior(loss, input_shape)`` (or a forward
pass given ``sharpen_loss=loss``, or any forward pass while
``loss_to_sharpen`` is set) differentiates the loss with respect to those
weights and moves them. Here the move is the paper's (as in
:mod:`fblitz.sharpening`), from the sample phi of that pass:

    theta = phi - eta * grad_phi(loss) + sigma_0 * eps',   eps' ~ N(0, I) from the layer's key stream

and the layer's complexity cost becomes ``log q(phi) - log p(phi)`` plus the
sharpening KL ``||eta * g||^2 / (2 sigma_0^2)`` (set, not accumulated, so
repeated calls do not count it twice). BLiTZ instead starts from the mean,
adds sigma itself and scores theta under q and the prior, partly divided by
the sequence length; ``input_shape`` is checked and otherwise unused.

``sigma_0`` is the layer's ``sharpen_sigma_0`` attribute (0.02, as
``forward_with_sharpening``'s default) unless given. The hooks need a single
weight sample, so Flipout layers cannot use them, and they run one sample at
a time (not inside ``sample_elbo``'s vectorized samples: use
``forward_with_sharpening`` there).
"""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.compat._module import active_draw
from fblitz.distributions import reparameterize
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import sample_eps
from fblitz.sharpening import sharpening_kl

NAMES = ("weight_ih", "weight_hh", "bias")


class StatefulSharpening:
    """The hooks, mixed into :class:`~fblitz.compat.modules.base_bayesian_module.BayesianRNN`."""

    sharpen_sigma_0 = 0.02
    ff_parameters = None  # [weight_ih, weight_hh, bias or None] of the last recorded draw
    _phi_eps = None  # that draw's noise, for its log terms
    _transient = ("ff_parameters", "_phi_eps")  # tensors inside an autograd graph: not copied or pickled

    def set_loss_to_sharpen(self, loss) -> None:
        """Sharpen every following sampling forward pass with ``loss`` (None stops it)."""
        self.loss_to_sharpen = loss

    def sample_weights(self) -> tuple:
        """Draw the weights ``(weight_ih, weight_hh, bias)`` in BLiTZ's layout (bias None without one).

        Sets the layer's log terms and ``ff_parameters`` to this draw, as BLiTZ's does.
        """
        params, eps = self.variational_params(), self.draw_noise()
        weights = {name: reparameterize(node["mu"], node["rho"], eps[name]) for name, node in params.items()}
        self.log_variational_posterior, self.log_prior = self.log_terms(params, eps)
        self._record_draw(weights, eps)
        return tuple(weights.get(name) for name in NAMES)

    def get_frozen_weights(self) -> tuple:
        """The posterior means ``(weight_ih_mu, weight_hh_mu, bias_mu)``; the bias is 0 without one (as BLiTZ)."""
        return self.weight_ih_mu, self.weight_hh_mu, self.bias_mu if self.use_bias else 0

    def forward_(self, x, hidden_states=None, sharpen_loss=None):
        """A sampling (or sharpened) forward pass, whatever ``freeze`` says (BLiTZ's ``forward_``)."""
        loss = self.loss_to_sharpen if self.loss_to_sharpen is not None else sharpen_loss
        if loss is not None:
            return self._sharpened_forward(x, hidden_states, loss)
        return self._sampling_forward(x, hidden_states)

    def sharpen_posterior(self, loss, input_shape, *, sigma_0: float | None = None) -> tuple:
        """The sharpened weights ``(weight_ih, weight_hh, bias)`` (BLiTZ's layout) of the last recorded draw.

        Args:
            loss: a tensor computed from the output of this layer's last
                sampling forward pass (summed if not 0-dim, as BLiTZ's
                ``grad_outputs`` of ones does).
            input_shape: that pass's input shape, ``(batch, sequence, features)``.
            sigma_0: keyword-only, the sharpened posterior's scale
                (default: the ``sharpen_sigma_0`` attribute).

        The gradient keeps its graph, so the sharpened weights train ``eta``
        (and, through ``g``, mu and rho) when a loss of their output is
        backpropagated.
        """
        if not self.sharpen:
            raise FblitzValueError("sharpen_posterior needs a layer built with sharpen=True (it learns the steps eta)")
        if self.ff_parameters is None:
            raise FblitzValueError(
                "sharpen_posterior needs a weight draw to sharpen: run a sampling forward pass first "
                "(Flipout layers have no single weight draw and cannot be sharpened this way)"
            )
        if not isinstance(loss, torch.Tensor) or not loss.is_floating_point():
            raise FblitzTypeError(f"loss must be a floating-point tensor, got {loss!r}")
        shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else None
        if shape is None or len(shape) != 3:
            raise FblitzValueError(f"input_shape must be (batch, sequence, features), got {input_shape!r}")
        sigma_0 = _checks.non_negative("sigma_0", self.sharpen_sigma_0 if sigma_0 is None else sigma_0)
        phi = [w for w in self.ff_parameters if w is not None]
        try:
            grads = torch.autograd.grad(loss, phi, grad_outputs=torch.ones_like(loss), create_graph=True)
        except RuntimeError as error:
            raise FblitzValueError(
                "loss must be computed from the output of this layer's last sampling forward pass (its "
                f"weights are what is sharpened): {error}"
            ) from error
        params = self.variational_params()
        noise = sample_eps(self.next_key(), params)
        steps = [getattr(self, f"{name}_eta") * g for name, g in zip(self._names, grads)]
        theta = {name: w - s + sigma_0 * noise[name] for name, w, s in zip(self._names, phi, steps)}
        log_q, log_p = self.log_terms(params, self._phi_eps)
        self.log_variational_posterior, self.log_prior = log_q + sharpening_kl(steps, sigma_0), log_p
        return tuple(theta.get(name) for name in NAMES)

    # -- internal -------------------------------------------------------------------------
    def _record_draw(self, weights: dict, eps: dict) -> None:
        self.ff_parameters = [weights.get(name) for name in NAMES]
        self._phi_eps = eps

    def _sharpened_forward(self, x, hidden_states, loss):
        if active_draw(self)[0] is not None:
            raise FblitzValueError(
                "sharpen_loss / loss_to_sharpen sharpen one forward pass at a time, not sample_elbo's or "
                "mfvi_forward's vectorized samples: use forward_with_sharpening(x, labels, criterion)"
            )
        theta = self.sharpen_posterior(loss, x.shape)
        return self._run_at(dict(zip(NAMES, theta)), x, hidden_states)
