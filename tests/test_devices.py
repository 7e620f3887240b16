"""dtype and device discipline: everything follows the params' dtype and device.

Runs on the CPU always and on CUDA when a GPU is present (skipped otherwise).
"""

import pytest
import torch

from fblitz import layers, likelihoods, optim
from fblitz.checkpoint import load_checkpoint, save_checkpoint
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers import init_state, sample_noise
from fblitz.objectives import sample_elbo
from fblitz.predict import predict
from fblitz.train import fit
from fblitz.tree import tree_leaves
from tests.helpers import randn

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def _model():
    return layers.serial(
        layers.linear(3, 8, estimator="flipout"),
        layers.batch_norm1d(8),
        layers.relu,
        layers.dropout(0.1),
        layers.linear(8, 1, estimator="local_reparameterization"),
    )


@pytest.mark.parametrize("device", DEVICES)
def test_float64_end_to_end_on_the_params_device(device, tmp_path):
    model = _model()
    params = model.init(0, dtype=torch.float64, device=device)
    x = randn(1, 32, 3, dtype=torch.float64).to(device)
    y = x.sum(dim=1, keepdim=True)
    eps = sample_noise(model, 1, params, 2)
    assert all(leaf.device.type == device for leaf in tree_leaves(eps))
    assert all(leaf.dtype == torch.float64 for leaf in tree_leaves(eps) if leaf.is_floating_point())
    terms = sample_elbo(model, params, 2, x, y, likelihood=likelihoods.gaussian(), n_samples=2, kl_mode="closed_form")
    assert terms.loss.dtype == torch.float64 and terms.loss.device.type == device
    result = fit(
        model,
        params,
        x,
        y,
        likelihood=likelihoods.gaussian(),
        optimizer=optim.adam(1e-2),
        key=3,
        epochs=2,
        batch_size=16,
        n_samples=2,
        kl_mode="closed_form",
    )
    for leaf in tree_leaves((result.params, result.state)):
        assert leaf.device.type == device
        assert not leaf.is_floating_point() or leaf.dtype == torch.float64
    out = predict(model, result.params, x, key=4, n_samples=3, state=result.state)
    assert out.dtype == torch.float64 and out.device.type == device
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, params=result.params, opt_state=result.opt_state, state=result.state)
    loaded = load_checkpoint(path)
    for a, b in zip(tree_leaves(loaded.params), tree_leaves(result.params)):
        assert torch.equal(a.to(b.device), b) and a.dtype == b.dtype


def test_mixed_dtypes_are_an_error_not_a_silent_cast():
    model = _model()
    params = model.init(0, dtype=torch.float64)
    x = randn(1, 8, 3)  # float32
    with pytest.raises((FblitzTypeError, FblitzValueError), match="dtype"):
        sample_elbo(model, params, 2, x, x[:, :1].double(), likelihood=likelihoods.gaussian(), n_samples=1)
    assert init_state(model, dtype=torch.float64)["1"]["running_mean"].dtype == torch.float64
