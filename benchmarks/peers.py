"""The other Bayes-by-backprop libraries, used the way their documentation shows (optional).

Installed with ``pip install -e ".[peers]"`` (see ``pyproject.toml``); a peer
that is not importable is skipped. Both use the same network (the plain
``nn.Module`` of :func:`deterministic`), data, learning rate, KL weight and
N(0, 0.1^2) prior as the other implementations.

* **bayesian-torch** (Intel Labs): ``dnn_to_bnn`` turns the ``nn.Module``
  into a Bayesian one (``LinearReparameterization``/``Conv2dReparameterization``
  /``LSTMReparameterization``); a training step runs the model S times in a
  Python loop, averages the outputs and the ``get_kl_loss`` values and adds
  the weighted KL to the criterion of the mean output (its README and
  ``main_bayesian_*`` examples); ``torch.optim.Adam``. Prediction: S forward
  passes under ``no_grad``. Its noise comes from the global RNG, so every call
  runs inside ``torch.random.fork_rng``.
* **posteriors** (Normal Computing): ``posteriors.vi.diag.build(log_posterior,
  torchopt.adam(lr), temperature=1 / N, n_samples=S)`` with
  ``log_posterior(params, batch) = mean log-likelihood + log prior / N``
  through ``torch.func.functional_call`` (its "log posteriors" guide); one
  ``transform.update(state, batch)`` per step. It evaluates S > 1 samples
  under ``vmap``, which ``nn.LSTM`` does not support, so the LSTM case has no
  posteriors row. Prediction: ``posteriors.vi.diag.sample(state, (S,))``
  evaluated under ``vmap``.

:func:`distinct_outputs` shows that each really draws S different weight
samples per step (``tests/test_benchmarks.py``).
"""

from __future__ import annotations

import importlib.util
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

PRIOR_SIGMA = 0.1
RHO_INIT = -7.0  # fblitz's and BLiTZ's linear posterior_rho_init


def available(name: str) -> bool:
    """True when the peer ``"bayesian-torch"`` or ``"posteriors"`` can be imported."""
    module = {"bayesian-torch": "bayesian_torch", "posteriors": "posteriors"}[name]
    return importlib.util.find_spec(module) is not None


def deterministic(net, seed: int = 0, device="cpu") -> nn.Module:
    """The plain ``nn.Module`` of ``net`` (MLP, LeNet for 8x8 inputs, LSTM + linear head)."""

    class LastStep(nn.Module):
        def __init__(self, hidden=16):
            super().__init__()
            self.lstm, self.head = nn.LSTM(1, hidden, batch_first=True), nn.Linear(hidden, 1)

        def forward(self, x):
            out = self.lstm(x)
            return self.head((out[0] if isinstance(out, tuple) else out)[:, -1])

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if net.kind == "mlp":
            parts = []
            for i, (a, b) in enumerate(zip(net.sizes[:-1], net.sizes[1:])):
                parts += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(net.sizes) - 2 else [])
            module = nn.Sequential(*parts)
        elif net.kind == "cnn":
            module = nn.Sequential(
                nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                nn.Linear(64, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, net.classes),
            )  # fmt: skip
        else:
            module = LastStep()
    return module.to(device)


# -- bayesian-torch --------------------------------------------------------------------


def bayesian_torch_model(net, seed: int = 0, device="cpu") -> nn.Module:
    """``dnn_to_bnn`` of :func:`deterministic` with a N(0, 0.1^2) prior and rho -7 (built in a forked RNG)."""
    from bayesian_torch.models.dnn_to_bnn import dnn_to_bnn

    model = deterministic(net, seed, device)
    settings = {
        "prior_mu": 0.0, "prior_sigma": PRIOR_SIGMA, "posterior_mu_init": 0.0, "posterior_rho_init": RHO_INIT,
        "type": "Reparameterization", "moped_enable": False, "moped_delta": 0.5,
    }  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        dnn_to_bnn(model, settings)
    return model.to(device)


def bayesian_torch_step(model: nn.Module, criterion, samples: int, kl_weight: float, optimizer):
    """``step(x, y) -> outputs`` of the S forward passes: bayesian-torch's documented training step."""
    from bayesian_torch.models.dnn_to_bnn import get_kl_loss

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        outputs, kls = [], []
        for _ in range(samples):
            outputs.append(model(x))
            kls.append(get_kl_loss(model))
        output = torch.mean(torch.stack(outputs), dim=0)
        loss = criterion(output, y) + kl_weight * torch.mean(torch.stack(kls), dim=0)
        loss.backward()
        optimizer.step()
        return torch.stack(outputs).detach()

    return step


def bayesian_torch_predict(model: nn.Module, x: torch.Tensor, samples: int):
    """Mean and std of S forward passes under ``no_grad``."""
    with torch.no_grad():
        outputs = torch.stack([model(x) for _ in range(samples)])
    return outputs.mean(dim=0), outputs.std(dim=0)


# -- posteriors -------------------------------------------------------------------------


def _import_posteriors():
    with warnings.catch_warnings():  # tensordict's FutureWarnings about posteriors' class defaults
        warnings.simplefilter("ignore")
        import posteriors
        import torchopt
    return posteriors, torchopt


def posteriors_transform(net, module: nn.Module, samples: int, lr: float, kl_weight: float):
    """``(transform, init_state)`` of ``posteriors.vi.diag`` for ``module``, KL weight = temperature = 1 / N."""
    posteriors, torchopt = _import_posteriors()
    n_data = 1.0 / kl_weight
    loss = F.cross_entropy if net.classes else F.mse_loss

    def log_posterior(params, batch):
        x, y = batch
        output = torch.func.functional_call(module, params, (x,))
        log_prior = posteriors.diag_normal_log_prob(params, sd_diag=PRIOR_SIGMA)
        return -loss(output, y) + log_prior / n_data, output

    sigma = math.log1p(math.exp(RHO_INIT))  # the same initial sigma as the others
    transform = posteriors.vi.diag.build(
        log_posterior, torchopt.adam(lr=lr), temperature=1.0 / n_data, n_samples=samples, init_log_sds=math.log(sigma)
    )
    params = {name: p.detach().clone() for name, p in module.named_parameters()}
    return transform, transform.init(params)


def posteriors_predict(net, module: nn.Module, state, x: torch.Tensor, samples: int):
    """Mean and std over ``posteriors.vi.diag.sample(state, (S,))`` evaluated under ``vmap``."""
    posteriors, _ = _import_posteriors()
    with torch.no_grad():
        draws = posteriors.vi.diag.sample(state, (samples,))
        outputs = torch.func.vmap(lambda p: torch.func.functional_call(module, p, (x,)))(draws)
    return outputs.mean(dim=0), outputs.std(dim=0)


def distinct_outputs(outputs: torch.Tensor) -> int:
    """How many of the S per-sample outputs (leading axis) differ from each other."""
    flat = outputs.reshape(outputs.shape[0], -1)
    return len({tuple(row.tolist()) for row in flat})
