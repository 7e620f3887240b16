"""dtype and device discipline: every tensor fblitz creates follows the params' (or inputs') device and dtype.

Two kinds of device run the same public paths (sample_noise for every
estimator, a train step, predict, the bridge, the compat layers):

* ``meta`` always: its tensors have shapes but no data, and an operation mixing
  a meta tensor with a CPU tensor (other than a 0-dim one) raises, exactly as
  CUDA does. A tensor created on the CPU inside fblitz and mixed into the
  computation fails here, on a machine without a GPU.
* ``cuda`` when a GPU is present (skipped otherwise), with values: the steps
  run eagerly and compiled, and the results are compared with the CPU's.

The layer-by-layer version is in tests/test_layer_contract.py
(``test_meta_device_every_tensor_follows_the_params``).
"""

import pytest
import torch
from torch import nn

from fblitz import layers, likelihoods, optim
from fblitz.bridge import bayesify
from fblitz.checkpoint import load_checkpoint, save_checkpoint
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.estimators import ESTIMATORS
from fblitz.kl import make_plan
from fblitz.layers import init_state, sample_noise
from fblitz.objectives import elbo_grad, sample_elbo
from fblitz.prediction import predict
from fblitz.train import fit, make_train_step
from fblitz.tree import tree_leaves, tree_map
from tests.bridge_cases import build
from tests.helpers import randn

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
CHECKED = ["meta", pytest.param("cuda", marks=CUDA)]  # where a CPU-made tensor mixed in raises


def _model():
    return layers.serial(
        layers.linear(3, 8, estimator="flipout"),
        layers.batch_norm1d(8),
        layers.relu,
        layers.dropout(0.1),
        layers.linear(8, 1, estimator="local_reparameterization"),
    )


def _every_noise_model():
    """Per-example noise of every kind (Flipout, local reparameterization, dropout), a radial layer, an RNN."""
    return layers.serial(
        layers.linear(3, 6, estimator="flipout"),
        layers.tanh,
        layers.dropout(0.2),
        layers.stateless(lambda h: h.unflatten(-1, (2, 3)), "to_sequence"),
        layers.gru(3, 4, batch_first=True, estimator="flipout"),
        layers.stateless(lambda out: out[0][:, -1], "last_step"),
        layers.linear(4, 4, estimator="local_reparameterization"),
        layers.relu,
        layers.linear(4, 1, posterior="radial"),
    )


def _data(device, dtype=torch.float64, rows=16):
    x = randn(1, rows, 3, dtype=dtype)
    return x.to(device), x.sum(dim=1, keepdim=True).sin().to(device)


def _assert_on(tree, device, dtype=torch.float64):
    for leaf in tree_leaves(tree):
        assert leaf.device.type == device
        assert not leaf.is_floating_point() or leaf.dtype == dtype


@pytest.mark.parametrize("device", CHECKED)
@pytest.mark.parametrize("estimator", [None, *ESTIMATORS])
def test_noise_train_step_and_predict_stay_on_the_params_device(device, estimator):
    model = _every_noise_model()
    params = model.init(0, dtype=torch.float64, device=device)
    x, y = _data(device)
    eps = sample_noise(model, 1, params, 2, estimator=estimator)
    _assert_on(eps, device)
    # kl_mode "auto": closed form where there is one (needed by local reparameterization), Monte Carlo
    # for the radial layer
    optimizer = optim.adam(1e-2)
    step = make_train_step(model, likelihoods.gaussian(0.5), optimizer, n_samples=2, estimator=estimator)
    new_params, opt_state, terms = step(params, optimizer.init(params), 2, x, y, 0.1)
    _assert_on((new_params, opt_state, tuple(terms)), device)
    out = predict(model, new_params, x, key=3, n_samples=3, estimator=estimator)
    assert out.shape == (3, 16, 1)
    _assert_on(out, device)


@pytest.mark.parametrize("device", CHECKED)
def test_bridged_modules_follow_the_params_device(device):
    net = build(lambda: nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1)))
    cell = build(lambda: nn.GRUCell(3, 4), seed=1)
    x, y = _data(device)
    for model, targets in ((bayesify(net, bayesian=("0.*", "4.*")), y), (bayesify(cell), y.expand(-1, 4))):
        params = model.init(0, dtype=torch.float64, device=device)
        _assert_on(params, device)
        state = init_state(model, dtype=torch.float64, device=device)
        optimizer = optim.adam(1e-2)
        step = make_train_step(model, likelihoods.gaussian(0.5), optimizer, n_samples=2)
        new_params, opt_state, terms, new_state = step.with_state(
            params, optimizer.init(params), state, 1, x, targets, 0.1
        )
        _assert_on((new_params, opt_state, tuple(terms), new_state), device)
        _assert_on(predict(model, new_params, x, key=2, n_samples=3, state=new_state or None), device)


@pytest.mark.parametrize("device", CHECKED)
def test_compat_layers_follow_their_device(device):
    from fblitz.compat.modules import BayesianConv2d, BayesianGRU, BayesianLinear
    from fblitz.compat.utils import Flipout, Radial, variational_estimator

    @variational_estimator
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = Flipout(BayesianConv2d)(1, 2, (3, 3), seed=0)
            self.gru = Radial(BayesianGRU)(2, 3, seed=1)
            self.head = Flipout(BayesianLinear)(3, 1, seed=2)

        def forward(self, x):
            h = self.conv(x).flatten(2).transpose(1, 2)  # (N, 16, 2): positions as a sequence
            return self.head(self.gru(h)[0][:, -1])

    net = Net().double().to(device)
    x = randn(4, 5, 1, 6, 6, dtype=torch.float64).to(device)
    loss = net.sample_elbo(x, torch.zeros(5, 1, dtype=torch.float64, device=device), nn.MSELoss(), sample_nbr=2)
    assert loss.device.type == device
    loss.backward()
    _assert_on([p.grad for p in net.parameters()], device)
    mean, std = net.mfvi_forward(x, sample_nbr=3)
    _assert_on((mean, std), device)


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


@CUDA
@pytest.mark.parametrize("estimator", [None, *ESTIMATORS])
def test_gpu_gradients_equal_the_cpus_and_the_compiled_step_the_eager_one(estimator):
    # seeded (per-example) noise expands to the same numbers on every device, so one noise tree drawn on
    # the CPU and moved over gives the same ELBO gradient on both; then the compiled CUDA step must match
    # the eager one (same key, same device, so the same draws)
    model = _every_noise_model()
    cpu_params = model.init(0, dtype=torch.float64)
    cpu_eps = sample_noise(model, 5, cpu_params, 2, estimator=estimator)
    grad_fn, plan = elbo_grad(model, likelihoods.gaussian(0.5)), make_plan(cpu_params, model.priors, "auto")
    results = {}
    for device in ("cpu", "cuda"):
        params, eps = tree_map(lambda t, device=device: t.to(device), (cpu_params, cpu_eps))
        x, y = _data(device)
        weight = torch.tensor(0.1, dtype=torch.float64, device=device)
        grads, terms, _ = grad_fn(params, None, eps, x, y, weight, plan)
        _assert_on((grads, tuple(terms)), device)
        results[device] = tree_map(lambda t: t.cpu(), (grads, tuple(terms)))
    for a, b in zip(tree_leaves(results["cpu"]), tree_leaves(results["cuda"])):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    params, (x, y) = tree_map(lambda t: t.to("cuda"), cpu_params), _data("cuda")
    optimizer = optim.adam(1e-2)
    stepped = []
    for compile in (False, True):
        step = make_train_step(
            model, likelihoods.gaussian(0.5), optimizer, n_samples=2, estimator=estimator, compile=compile
        )
        stepped.append(step(params, optimizer.init(params), 7, x, y, 0.1))
    _assert_on(stepped[1], "cuda")
    for a, b in zip(tree_leaves(stepped[0]), tree_leaves(stepped[1])):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_mixed_dtypes_are_an_error_not_a_silent_cast():
    model = _model()
    params = model.init(0, dtype=torch.float64)
    x = randn(1, 8, 3)  # float32
    with pytest.raises((FblitzTypeError, FblitzValueError), match="dtype"):
        sample_elbo(model, params, 2, x, x[:, :1].double(), likelihood=likelihoods.gaussian(), n_samples=1)
    assert init_state(model, dtype=torch.float64)["1"]["running_mean"].dtype == torch.float64
