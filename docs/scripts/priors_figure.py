"""The numbers and the figure of docs/guides/priors.md: predictive spread vs prior sigma and initial rho.

A 1-d regression (40 points on [-1, 1], y = sin(3x) + N(0, 0.1²) noise) fitted by
a 1-32-1 tanh network for each combination of prior sigma and initial rho; the
predictive standard deviation is read inside the data (x = 0) and away from it
(x = 2.5). ``python docs/scripts/priors_figure.py`` prints the table of the guide
and, with matplotlib installed (``pip install -e ".[figures]"``), writes
docs/img/priors.png. tests/test_docs_figures.py checks the guide's table against
:func:`rows`.
"""

from __future__ import annotations

import pathlib
import sys

import torch

from fblitz import layers, likelihoods, optim
from fblitz.prediction import predict, predictive_mean_std
from fblitz.random import Key, normal
from fblitz.train import fit

PRIOR_SIGMAS = (0.1, 1.0)
RHO_INITS = (-7.0, -3.0)
EPOCHS = 300
LEARNING_RATE = 0.03
PROBES = (0.0, 2.5)
FIGURE = pathlib.Path(__file__).resolve().parent.parent / "img" / "priors.png"


def data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(-1, 1, 40).unsqueeze(1)
    return x, torch.sin(3 * x) + 0.1 * normal(Key(7), x.shape)


def trained(prior_sigma: float, rho_init: float):
    """The model and its params after ``EPOCHS`` full-batch Adam steps."""
    spec = dict(prior_sigma_1=prior_sigma, posterior_rho_init=rho_init)
    model = layers.serial(layers.linear(1, 32, **spec), layers.tanh, layers.linear(32, 1, **spec))
    x, y = data()
    result = fit(
        model,
        model.init(Key(0)),
        x,
        y,
        likelihood=likelihoods.gaussian(0.1),
        optimizer=optim.adam(LEARNING_RATE),
        key=Key(1),
        epochs=EPOCHS,
        batch_size=len(x),
        n_samples=4,
        progress=False,
    )
    return model, result.params


CONFIGS = tuple((prior_sigma, rho_init) for prior_sigma in PRIOR_SIGMAS for rho_init in RHO_INITS)
HEADER = "| prior sigma | initial rho (sigma) | std at x = 0 (data) | std at x = 2.5 (no data) |\n|---|---|---|---|"


def curves(grid: torch.Tensor, configs=CONFIGS) -> dict:
    """``{(prior_sigma, rho_init): (mean, std)}`` of 200 predictive draws on ``grid`` (G, 1)."""
    out = {}
    for prior_sigma, rho_init in configs:
        model, params = trained(prior_sigma, rho_init)
        samples = predict(model, params, grid, key=Key(2), n_samples=200)
        out[prior_sigma, rho_init] = tuple(t.squeeze(-1) for t in predictive_mean_std(samples))
    return out


def rows(configs=CONFIGS) -> list[str]:
    """The guide's table rows (predictive std at the probe points), one per configuration."""
    lines = []
    for (prior_sigma, rho_init), (_, std) in curves(torch.tensor(PROBES).unsqueeze(1), configs).items():
        sigma0 = torch.nn.functional.softplus(torch.tensor(rho_init)).item()
        lines.append(f"| {prior_sigma:g} | {rho_init:g} ({sigma0:.4f}) | {std[0]:.3f} | {std[1]:.3f} |")
    return lines


def table() -> str:
    """The guide's whole Markdown table."""
    return "\n".join([HEADER, *rows()])


def figure(path: pathlib.Path = FIGURE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = torch.linspace(-3, 3, 121).unsqueeze(1)
    x, y = data()
    fig, axes = plt.subplots(len(PRIOR_SIGMAS), len(RHO_INITS), figsize=(9, 6), sharex=True, sharey=True)
    for (prior_sigma, rho_init), (mean, std) in curves(grid).items():
        ax = axes[PRIOR_SIGMAS.index(prior_sigma), RHO_INITS.index(rho_init)]
        g = grid.squeeze(1)
        ax.fill_between(g, mean - 2 * std, mean + 2 * std, alpha=0.3, label="mean ± 2 std")
        ax.plot(g, mean, lw=1.5, label="predictive mean")
        ax.scatter(x.squeeze(1), y.squeeze(1), s=6, color="black", label="data")
        ax.set_title(f"prior sigma {prior_sigma:g}, initial rho {rho_init:g}", fontsize=10)
        ax.set_ylim(-4, 4)
    axes[0, 0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(table())
    if "--no-figure" not in sys.argv:
        figure()
        print(f"wrote {FIGURE}")
