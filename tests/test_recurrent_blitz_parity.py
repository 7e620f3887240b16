"""fblitz's lstm/gru against BLiTZ's BayesianLSTM/BayesianGRU on the same mu, rho and noise.

Skipped when BLiTZ is not installed. BLiTZ lays its weights out transposed,
(H_in, G * H) used as ``x @ W``, with ONE bias of G * H entries; BLiTZ's GRU
also holds 4H columns of which it uses three in each matrix (W_ih's last
block and W_hh's third block are dead). The mapping onto torch's layout is::

    LSTM: weight_ih = W_ih^T, weight_hh = W_hh^T, bias_ih = b, bias_hh = 0
    GRU:  weight_ih = W_ih[:, :3H]^T, weight_hh = [W_hh[:, :2H], W_hh[:, 3H:]]^T,
          bias_ih = b[:3H], bias_hh = [0, 0, b[3H:]]

Zero entries get mu = 0 and zero noise, so the sampled weights agree exactly.
BLiTZ draws its noise from the global RNG in each forward; the draws are
recorded and mapped onto fblitz's eps tree (the global RNG is restored).
"""

import pytest
import torch

from fblitz import layers
from tests import blitz_reference
from tests.helpers import randn

blitz_modules = pytest.importorskip("blitz.modules")
blitz_sampler = pytest.importorskip("blitz.modules.weight_sampler")

H = 4


def _columns(kind, tensor):
    """BLiTZ's (rows, G' * H) tensor -> the torch-layout blocks fblitz uses (transposed)."""
    if kind == "gru_ih":
        return tensor[..., : 3 * H].transpose(-1, -2)
    if kind == "gru_hh":
        return torch.cat([tensor[..., : 2 * H], tensor[..., 3 * H :]], dim=-1).transpose(-1, -2)
    return tensor.transpose(-1, -2)


def _bias(kind, b):
    """BLiTZ's single bias -> (bias_ih, bias_hh)."""
    if kind == "gru":
        return b[: 3 * H], torch.cat([torch.zeros_like(b[: 2 * H]), b[3 * H :]])
    return b, torch.zeros_like(b)


def _blitz_module(kind, peephole):
    with torch.random.fork_rng():  # BLiTZ initialises from the global RNG
        if kind == "gru":
            module = blitz_modules.BayesianGRU(3, H, posterior_rho_init=-3.0)
        else:
            module = blitz_modules.BayesianLSTM(3, H, posterior_rho_init=-3.0, peephole=peephole)
    # ``.double()`` unties BLiTZ's aliased copies (``weight_ih_mu`` and
    # ``weight_ih_sampler.mu``); forward reads the sampler's.
    return module.double()


def _to_fblitz(kind, module, noise):
    """fblitz params and eps from BLiTZ's parameters and recorded noise draws."""
    ih, hh = ("gru_ih", "gru_hh") if kind == "gru" else ("lstm", "lstm")
    params, eps = {}, {}
    for part, mapping in (("weight_ih", ih), ("weight_hh", hh)):
        sampler = getattr(module, f"{part}_sampler")
        params[f"{part}_l0"] = {"mu": _columns(mapping, sampler.mu), "rho": _columns(mapping, sampler.rho)}
        eps[f"{part}_l0"] = _columns(mapping, noise[id(sampler)])
    b = module.bias_sampler
    names = ("bias_ih_l0", "bias_hh_l0")
    for name, mu, rho, e in zip(names, _bias(kind, b.mu), _bias(kind, b.rho), _bias(kind, noise[id(b)])):
        params[name] = {"mu": mu, "rho": rho}
        eps[name] = e
    return {k: {n: t.detach().clone() for n, t in v.items()} for k, v in params.items()}, eps


def _run_blitz(monkeypatch, module, x, state):
    """BLiTZ's output and the last noise each of its samplers drew: ``{id(sampler): eps}``."""
    with monkeypatch.context() as scoped:
        draws = blitz_reference.record_draws(scoped)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            out = module(x, state)
    return out, {sampler: eps[-1] for sampler, eps in draws.items()}


@pytest.mark.parametrize(("kind", "peephole"), [("lstm", False), ("lstm", True), ("gru", False)])
@pytest.mark.parametrize("with_state", [False, True])
def test_sampled_forward_equals_blitz(monkeypatch, kind, peephole, with_state):
    module = _blitz_module(kind, peephole)
    x = randn(0, 2, 5, 3, dtype=torch.float64)  # BLiTZ is batch-first
    h0, c0 = randn(1, 2, H, dtype=torch.float64), randn(2, 2, H, dtype=torch.float64)
    if not with_state:  # BLiTZ's own zero state is float32 only
        h0, c0 = torch.zeros_like(h0), torch.zeros_like(c0)
    blitz_state = (h0, c0) if kind == "lstm" else h0
    (their_out, their_final), noise = _run_blitz(monkeypatch, module, x, blitz_state)
    params, eps = _to_fblitz(kind, module, noise)
    layer = (
        layers.gru(3, H, batch_first=True) if kind == "gru" else layers.lstm(3, H, batch_first=True, peephole=peephole)
    )
    state = None
    if with_state:
        state = (h0.unsqueeze(0), c0.unsqueeze(0)) if kind == "lstm" else h0.unsqueeze(0)
    out, final = layer.apply(params, x, eps, state)
    torch.testing.assert_close(out, their_out.detach(), rtol=1e-12, atol=1e-12)
    ours = final if kind == "lstm" else (final,)
    theirs = their_final if kind == "lstm" else (their_final,)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.squeeze(0), b.detach(), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(out, layer.apply(params, x, None, state)[0])  # the noise mattered


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_frozen_forward_equals_blitz_frozen(monkeypatch, kind):
    module = _blitz_module(kind, False)
    x = randn(3, 2, 5, 3, dtype=torch.float64)
    zeros = torch.zeros(2, H, dtype=torch.float64)  # BLiTZ's own zero state is float32 only
    state = (zeros, zeros) if kind == "lstm" else zeros
    _, noise = _run_blitz(monkeypatch, module, x, state)
    params, _ = _to_fblitz(kind, module, noise)
    module.freeze = True
    their_out, _ = module(x, state)
    layer = layers.gru(3, H, batch_first=True) if kind == "gru" else layers.lstm(3, H, batch_first=True)
    torch.testing.assert_close(layer.apply(params, x, None)[0], their_out.detach(), rtol=1e-12, atol=1e-12)
