"""``forward_with_sharpening`` on :func:`fblitz.sharpening.sharpen` (Fortunato et al. 2017).

BLiTZ's version sharpens from the posterior mean and adds sigma itself; this
one follows the paper through fblitz's functional sharpening: the weights
``phi`` of every recurrent layer built with ``sharpen=True`` are drawn as
usual, moved to ``theta = phi - eta * g + sigma_0 * eps'`` with ``g`` the
gradient of ``criterion(model(x), labels)`` at ``phi``, and the model runs at
``theta``. Afterwards the layers' ``log_variational_posterior``/``log_prior``
hold the usual terms at ``phi``, and the sharpening KL
``||eta * g||^2 / (2 sigma_0^2)`` is added to the first sharpened layer's
``log_variational_posterior``, so ``nn_kl_divergence()`` includes it (BLiTZ
folds its sharpening terms in there too).
"""

from __future__ import annotations

from fblitz import _checks
from fblitz.compat._module import Draw, sampling
from fblitz.compat._sampling import sampling_layers
from fblitz.layers import Layer
from fblitz.likelihoods import as_likelihood
from fblitz.random import sample_eps
from fblitz.sharpening import sharpen


def forward_with_sharpening(self, x, labels, criterion, *, sigma_0=0.02):
    """The model's output on ``x`` at sharpened weights (see the module docstring).

    Args:
        x, labels: one batch; ``criterion(outputs, labels)`` is the data term
            whose gradient sharpens.
        sigma_0: keyword-only, the scale of the sharpened posterior around
            ``phi - eta * g`` (the paper's sigma_0; BLiTZ has none).

    Without sharpened layers this is a plain sampling forward pass.
    """
    sigma_0 = _checks.non_negative("sigma_0", sigma_0)
    layers = sampling_layers(self)
    sharpened = [i for i, layer in enumerate(layers) if getattr(layer, "sharpen", False)]
    if not sharpened:
        return self(x)
    params = {str(i): layer.variational_params() for i, layer in enumerate(layers)}
    eta = {str(i): layers[i].sharpening_steps() for i in sharpened}
    phi = {str(i): layer.draw_noise() for i, layer in enumerate(layers)}
    theta = {str(i): sample_eps(layers[i].next_key(), {n: params[str(i)][n] for n in eta[str(i)]}) for i in sharpened}

    def apply(p, inputs, eps):
        draws = {layer: Draw(eps[str(i)], p[str(i)]) for i, layer in enumerate(layers)}
        with sampling(draws):
            return self(inputs)

    model = Layer(init=None, forward=apply, priors=None, name="compat model")
    noise = {"phi": phi, "theta": theta}
    sharp = sharpen(model, params, eta, noise, x, labels, likelihood=as_likelihood(criterion), sigma_0=sigma_0)
    outputs = apply(sharp.params, x, sharp.eps)
    for i, layer in enumerate(layers):
        layer.log_variational_posterior, layer.log_prior = layer.log_terms(params[str(i)], phi[str(i)])
    first = layers[sharpened[0]]
    first.log_variational_posterior = first.log_variational_posterior + sharp.kl
    return outputs
