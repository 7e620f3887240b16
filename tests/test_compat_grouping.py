"""compat evaluates many draws in groups (the same draws as one vectorized call), and one draw without vmap."""

import torch
from torch import nn

from fblitz.compat._sampling import run_samples
from fblitz.compat.modules import BayesianLinear
from fblitz.compat.utils import variational_estimator
from tests.helpers import randn


@variational_estimator
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = BayesianLinear(3, 8, seed=1, posterior_rho_init=-3.0), BayesianLinear(8, 2, seed=2)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def reseeded(net):
    net.a.reseed_(11)
    net.b.reseed_(12)
    return net


def test_groups_of_draws_are_the_draws_of_one_call():
    net, x = Net().double(), randn(1, 5, 3, dtype=torch.float64)
    whole = run_samples(reseeded(net), x, 7).outputs
    for group in (1, 2, 3, 7, 100):
        torch.testing.assert_close(run_samples(reseeded(net), x, 7, group=group).outputs, whole, rtol=1e-12, atol=1e-14)


def test_mfvi_forward_over_many_rows_is_grouped_and_agrees_with_one_call():
    net, x = Net().double(), randn(2, 3000, 3, dtype=torch.float64)
    mean, std = reseeded(net).mfvi_forward(x, 6)  # 3000 rows: one draw per call
    outputs = run_samples(reseeded(net), x, 6).outputs
    torch.testing.assert_close(mean, outputs.mean(dim=0), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(std, outputs.std(dim=0), rtol=1e-10, atol=1e-14)


def test_one_draw_runs_without_vmap_and_equals_the_vectorized_draw(monkeypatch):
    net, x, y = Net().double(), randn(3, 4, 3, dtype=torch.float64), randn(4, 4, 2, dtype=torch.float64)
    one = run_samples(reseeded(net), x, 1, nn.MSELoss(), y)
    reseeded(net)
    for layer in (net.a, net.b):  # the same single draw, twice: the vectorized path
        draw = layer.draw_noise(1)
        doubled = {name: torch.cat([t, t]) for name, t in draw.items()}
        monkeypatch.setattr(layer, "draw_noise", lambda count, doubled=doubled: doubled)
    two = run_samples(net, x, 2, nn.MSELoss(), y)
    for a, b in zip((one.outputs[0], one.data[0], one.kl[0]), (two.outputs[1], two.data[1], two.kl[1])):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
