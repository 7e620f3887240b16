"""fblitz.compat layers as nn.Modules: one copy of each tensor, dtype/device moves, state dicts,
deepcopy, freezing, MOPED, seeding and errors."""

import copy
import io
import pickle

import hypothesis
import hypothesis.strategies as st
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fblitz import kl, layers
from fblitz.compat._module import Draw, sampling
from fblitz.compat.modules import BayesianConv2d, BayesianEmbedding, BayesianGRU, BayesianLinear, BayesianLSTM
from fblitz.compat.utils import Flipout, variational_estimator
from fblitz.distributions import sigma
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import sample_eps
from tests.helpers import randn


@variational_estimator
class Regressor(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        self.hidden = BayesianLinear(3, 8, posterior_rho_init=-3.0, seed=seed)
        self.out = BayesianLinear(8, 1, posterior_rho_init=-3.0, seed=seed + 1)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def _step(model, x, y, lr=0.05):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    optimizer.zero_grad()
    model.sample_elbo(x, y, nn.MSELoss(), 3, complexity_cost_weight=1 / len(x)).backward()
    optimizer.step()


def test_each_tensor_is_held_once_and_named_as_blitz():
    model = Regressor()
    names = [name for name, _ in model.named_parameters()]
    assert names == [
        f"{layer}.{t}_{p}" for layer in ("hidden", "out") for t in ("weight", "bias") for p in ("mu", "rho")
    ]
    assert sorted(model.state_dict()) == sorted(names)  # no sampler copies, no buffers
    storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(storages) == len(names)


def test_double_then_training_changes_what_state_dict_shows():
    model = Regressor().double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = randn(0, 16, 3, dtype=torch.float64), randn(1, 16, 1, dtype=torch.float64)
    _step(model, x, y)
    after = model.state_dict()
    assert all(v.dtype == torch.float64 for v in after.values())
    assert all(not torch.equal(before[k], after[k]) for k in before)
    assert all(after[name].data_ptr() == p.data_ptr() for name, p in model.named_parameters())


def test_state_dict_round_trip_gives_the_same_model():
    source, target = Regressor(seed=0), Regressor(seed=7)
    target.load_state_dict(source.state_dict())
    source.freeze_(), target.freeze_()
    x = randn(2, 5, 3)
    assert torch.equal(source(x), target(x))


def test_deepcopy_is_independent_and_replays_the_noise_stream():
    model = Regressor()
    twin = copy.deepcopy(model)
    x, y = randn(0, 16, 3), randn(1, 16, 1)
    assert torch.equal(model(x), twin(x))  # the key and draw counter are copied
    _step(twin, x, y)
    assert not torch.equal(model.hidden.weight_mu, twin.hidden.weight_mu)
    assert twin.hidden.weight_mu.data_ptr() != model.hidden.weight_mu.data_ptr()


def test_replicas_from_deepcopy_and_data_parallel_wrapper():
    """torch's ``replicate`` needs CUDA; on CPU a replica is a deepcopy, and DataParallel forwards to the module."""
    model = Regressor()
    replica = copy.deepcopy(model).to(torch.float32)
    replica.load_state_dict(model.state_dict())
    model.freeze_(), replica.freeze_()
    x = randn(3, 4, 3)
    assert torch.equal(model(x), replica(x))
    assert torch.equal(nn.DataParallel(model)(x), model(x))


def test_freeze_gives_the_deterministic_mean_network():
    model = Regressor()
    x = randn(0, 6, 3)
    model.freeze_()
    expected = F.linear(torch.relu(F.linear(x, model.hidden.weight_mu, model.hidden.bias_mu)), model.out.weight_mu,
                        model.out.bias_mu)  # fmt: skip
    assert torch.equal(model(x), expected) and torch.equal(model(x), model(x))
    model.unfreeze_()
    assert not torch.equal(model(x), model(x))


def test_moped_from_a_trained_deterministic_network():
    with torch.random.fork_rng():  # nn.Linear initialises from the global RNG
        deterministic = nn.ModuleDict({"hidden": nn.Linear(3, 8), "out": nn.Linear(8, 1)})
    with torch.no_grad():
        for i, p in enumerate(deterministic.parameters()):
            p.copy_(randn(10 + i, *p.shape))
    x, y = randn(0, 32, 3), randn(1, 32, 1)
    optimizer = torch.optim.SGD(deterministic.parameters(), lr=0.05)
    for _ in range(5):  # a little training, so the weights are "trained"
        optimizer.zero_grad()
        F.mse_loss(deterministic["out"](torch.relu(deterministic["hidden"](x))), y).backward()
        optimizer.step()
    model = Regressor()
    model.freeze_()
    model.MOPED_(delta=0.1, weights=deterministic)
    assert not model.hidden.freeze  # MOPED_ unfreezes, as BLiTZ
    assert torch.equal(model.hidden.weight_mu, deterministic["hidden"].weight)
    torch.testing.assert_close(sigma(model.out.weight_rho), 0.1 * deterministic["out"].weight.abs())
    model.freeze_()
    torch.testing.assert_close(model(x), deterministic["out"](torch.relu(deterministic["hidden"](x))))


def test_moped_without_weights_uses_the_current_means():
    model = Regressor()
    mu = model.hidden.weight_mu.detach().clone()
    model.MOPED_(0.2)
    assert torch.equal(model.hidden.weight_mu, mu)
    torch.testing.assert_close(sigma(model.hidden.weight_rho), 0.2 * mu.abs())


def test_seed_makes_init_and_noise_reproducible_without_the_global_rng():
    a, b = BayesianLinear(3, 2, seed=5), BayesianLinear(3, 2, seed=5)
    x = randn(0, 4, 3)
    assert torch.equal(a.weight_mu, b.weight_mu) and torch.equal(a(x), b(x)) and not torch.equal(a(x), b(x) * 0)
    a.reseed_(9), b.reseed_(9)
    assert torch.equal(a(x), b(x))


def test_without_seed_the_global_rng_seeds_the_layer_once():
    with torch.random.fork_rng():
        torch.manual_seed(3)
        first = BayesianLinear(3, 2)
        state = torch.get_rng_state()
        first(randn(0, 4, 3))  # forward passes leave the global RNG alone
        assert torch.equal(state, torch.get_rng_state())
        torch.manual_seed(3)
        second = BayesianLinear(3, 2)
    assert torch.equal(first.weight_mu, second.weight_mu)


@pytest.mark.parametrize(
    "make, x",
    [
        (lambda: BayesianConv2d(2, 3, 3, padding=1, seed=0), randn(0, 2, 2, 5, 5)),
        (lambda: BayesianEmbedding(7, 3, seed=0), torch.tensor([[1, 2], [6, 0]])),
        (lambda: BayesianLSTM(3, 4, seed=0), randn(0, 2, 5, 3)),
        (lambda: BayesianGRU(3, 4, seed=0), randn(0, 2, 5, 3)),
    ],
)
def test_double_and_back_and_state_dict_round_trip(make, x):
    layer = make().double()
    x = x.double() if x.is_floating_point() else x
    copy_ = make()
    copy_.load_state_dict(layer.state_dict())  # float64 values into float32 parameters
    layer.freeze, copy_.freeze = True, True
    first = layer(x)[0] if isinstance(layer(x), tuple) else layer(x)
    second = copy_(x.float() if x.is_floating_point() else x)
    second = second[0] if isinstance(second, tuple) else second
    torch.testing.assert_close(first.float(), second)


def test_errors_name_the_argument():
    with pytest.raises(FblitzTypeError, match="freeze"):
        BayesianLinear(3, 2, freeze=1, seed=0)
    with pytest.raises(FblitzTypeError, match="x must have the params' dtype"):
        BayesianLinear(3, 2, seed=0)(randn(0, 4, 3, dtype=torch.float64))
    with pytest.raises(FblitzTypeError, match="Flipout wraps"):
        Flipout(BayesianEmbedding)
    with pytest.raises(FblitzValueError, match="needs a layer built with sharpen=True"):
        BayesianLSTM(3, 4, seed=0)(randn(0, 2, 5, 3), None, torch.tensor(1.0))
    with pytest.raises(FblitzValueError, match="weights has no entry 'hidden.weight'"):
        Regressor().MOPED_(0.1, weights={})
    with pytest.raises(FblitzValueError, match="sample_nbr"):
        Regressor().sample_elbo(randn(0, 4, 3), randn(1, 4, 1), nn.MSELoss(), 0)


def test_conv_takes_blitz_argument_order_and_frozen_equals_torch_conv():
    """BLiTZ orders (kernel_size, groups, stride, padding, dilation); torch (stride, padding, dilation, groups)."""
    layer = BayesianConv2d(4, 6, (3, 3), 2, 2, 1, 2, seed=0)  # groups=2, stride=2, padding=1, dilation=2
    layer.freeze = True
    with torch.random.fork_rng():
        reference = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2)
    with torch.no_grad():
        reference.weight.copy_(layer.weight_mu), reference.bias.copy_(layer.bias_mu)
    x = randn(1, 2, 4, 9, 9)
    assert torch.equal(layer(x), reference(x))


@hypothesis.given(
    n_in=st.integers(1, 5), n_out=st.integers(1, 5), batch=st.integers(1, 4), bias=st.booleans(), seed=st.integers(0, 9)
)
def test_linear_is_the_functional_layer_on_its_parameters(n_in, n_out, batch, bias, seed):
    layer = BayesianLinear(n_in, n_out, bias, posterior_rho_init=-2.0, seed=seed)
    functional = layers.linear(n_in, n_out, bias)
    params = layer.variational_params()
    eps = sample_eps(seed + 100, params)
    x = randn(seed, batch, n_in)
    with sampling({layer: Draw(eps)}) as context:
        out = layer(x)
    assert torch.equal(out, functional.apply(params, x, eps))
    log_q, log_p = context.log_terms[layer]
    expected = kl.kl_divergence(params, functional.priors, eps, mode="monte_carlo")
    torch.testing.assert_close(log_q - log_p, expected)


def test_prior_dist_is_used_for_the_complexity_cost_also_under_vmap():
    """A torch.distributions prior (BLiTZ's ``prior_dist``) gives the same cost as the equal scale mixture."""
    normal = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(0.5))  # validates its arguments
    with_dist = BayesianLinear(3, 2, prior_dist=normal, posterior_rho_init=-2.0, seed=0)
    with_sigma = BayesianLinear(3, 2, prior_sigma_1=0.5, posterior_rho_init=-2.0, seed=0)
    noise = with_dist.draw_noise(4)
    x = randn(0, 5, 3)
    costs = []
    for layer in (with_dist, with_sigma):
        costs.append(torch.func.vmap(lambda e, layer=layer: _cost(layer, x, e))(noise))
    torch.testing.assert_close(costs[0], costs[1])


def _cost(layer, x, eps):
    """``log q - log p`` of one forward pass of ``layer`` with noise ``eps``."""
    with sampling({layer: Draw(eps)}) as context:
        layer(x)
    log_q, log_p = context.log_terms[layer]
    return log_q - log_p


def test_data_parallel_replicas_advance_the_original_noise_stream():
    """DataParallel replicates the module (shallow copies) at every call: each call must still draw new noise."""
    layer = BayesianLinear(3, 2, posterior_rho_init=-2.0, seed=0)
    x = randn(0, 4, 3)
    first, second = _replica(layer)(x), _replica(layer)(x)
    assert not torch.equal(first, second)
    twin = BayesianLinear(3, 2, posterior_rho_init=-2.0, seed=0)
    assert torch.equal(first, twin(x)) and torch.equal(second, twin(x))


def _replica(module):
    """What ``torch.nn.parallel.replicate`` builds for one device (CPU here): a shallow copy given the tensors."""
    replica = module._replicate_for_data_parallel()
    for name, parameter in module._parameters.items():
        setattr(replica, name, parameter.detach())  # replicate sets broadcast copies, not Parameters
    return replica


def test_whole_models_pickle_and_torch_save():
    """``torch.save(model)`` pickles the module itself; its fblitz layer is rebuilt on loading."""
    model = Regressor()
    model.hidden = BayesianLinear(3, 8, prior_dist=torch.distributions.Normal(0.0, 0.5), seed=3)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = randn(0, 4, 3)
    assert torch.equal(loaded(x), model(x))  # same parameters, same position in the noise stream
    rnn = pickle.loads(pickle.dumps(BayesianGRU(3, 4, seed=0)))
    assert rnn(randn(1, 2, 5, 3))[0].shape == (2, 5, 4)
