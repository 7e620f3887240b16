"""Gradient variance and step time of each estimator (issue: estimators).

``python -m benchmarks.estimators [--quick] [--write-readme]`` measures, for a
784-400-400-10 MLP (batch 128, generated non-negative inputs) and a LeNet on scikit-learn's
8x8 digits (batch 128):

* the total variance of the one-sample gradient (at posterior rho = -4) of the negative ELBO over
  ``--draws`` noise draws at fixed parameters (summed over all parameters),
  as a ratio to plain reparameterization;
* the median time of an eager training step (gradient + Adam update) with
  one weight sample.

Ratios are measured in one run; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.func import grad

from fblitz import layers, likelihoods, models, optim
from fblitz._task_progress import TaskProgress
from fblitz.estimators import ESTIMATORS
from fblitz.layers import sample_noise
from fblitz.objectives import negative_elbo
from fblitz.random import Key, normal
from fblitz.train import make_train_step
from fblitz.tree import tree_leaves

# sigma = softplus(-4) = 0.018: the spread of a partly trained posterior (BLiTZ's init, rho -7,
# gives sigma 0.0009, where weight noise hardly matters and all estimators look alike)
RHO = -4.0
MARK_BEGIN, MARK_END = "<!-- estimators:begin -->", "<!-- estimators:end -->"


def mlp_case(key: Key):
    model = layers.serial(
        layers.linear(784, 400), layers.relu, layers.linear(400, 400), layers.relu, layers.linear(400, 10)
    )
    k_init, k_x, k_y = key.split(3)
    # non-negative like pixel intensities: examples correlate as real images do (random Gaussian
    # inputs in 784 dimensions are nearly orthogonal, which hides what the estimators change)
    x = normal(k_x, (128, 784)).abs()
    y = torch.randint(0, 10, (128,), generator=torch.Generator().manual_seed(k_y.seed % 2**63))
    return "784-400-400-10", model, model.init(k_init), x, y


def cnn_case(key: Key):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images[:128] / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target[:128], dtype=torch.int64)
    model = models.lenet(1, 10, input_size=8, padding=2, posterior_rho_init=RHO)
    return "LeNet 8x8", model, model.init(key), x, y


def gradient_variance(model, params, x, y, estimator: str, draws: int, key: Key) -> float:
    """Sum over parameters of the variance of one-sample gradients (``draws`` draws)."""
    likelihood = likelihoods.categorical()

    def loss(p, eps):
        return negative_elbo(
            model, p, eps, x, y, likelihood=likelihood, complexity_cost_weight=1 / 60000, kl_mode="closed_form"
        ).loss

    flat = []
    for i in range(draws):
        eps = sample_noise(model, key.fold_in(i), params, 1, estimator=estimator)
        flat.append(torch.cat([g.reshape(-1) for g in tree_leaves(grad(loss)(params, eps))]))
    return float(torch.stack(flat).var(dim=0).sum())


def step_ms(model, params, x, y, estimator: str, repeats: int, key: Key) -> float:
    opt = optim.adam(1e-3)
    step = make_train_step(
        model, likelihoods.categorical(), opt, n_samples=1, kl_mode="closed_form", estimator=estimator
    )
    state = opt.init(params)
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        params, state, _ = step(params, state, key.fold_in(i), x, y, 1 / 60000)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[2:])


def run(quick: bool, threads: int, progress: bool = True) -> list[dict]:
    torch.set_num_threads(threads)
    draws, repeats = (20, 5) if quick else (100, 20)
    rows = []
    with TaskProgress(2 * len(ESTIMATORS), "estimator cases", enabled=progress) as tasks:
        for make in (mlp_case, cnn_case):
            name, model, params, x, y = make(Key(0))
            base = None
            for estimator in ESTIMATORS:
                tasks.start(f"{name} {estimator}: {draws} gradient draws, {repeats} timed steps")
                variance = gradient_variance(model, params, x, y, estimator, draws, Key(1))
                base = variance if base is None else base
                ms = step_ms(model, params, x, y, estimator, repeats, Key(2))
                rows.append(
                    {
                        "model": name,
                        "estimator": estimator,
                        "variance": variance,
                        "variance_ratio": variance / base,
                        "ms": ms,
                    }
                )
                tasks.write(
                    f"{name:16s} {estimator:26s} grad variance {variance:10.4g} ({variance / base:5.2f}x)  "
                    f"step {ms:7.1f} ms"
                )
                tasks.done()
    return rows


def table(rows: list[dict], threads: int, draws_note: str) -> str:
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} thread(s); "
        f"{draws_note}; one weight sample per step, batch 128, KL closed form, posterior rho {RHO:g} "
        "(sigma 0.018).",
        "",
        "| model | estimator | gradient variance (sum) | vs reparameterization | eager step (ms) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['estimator']} | {r['variance']:.4g} | {r['variance_ratio']:.2f}x | {r['ms']:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


def write_readme(text: str, path: Path | None = None) -> None:
    """Replace the text between the estimator markers of ``path`` (appending them if absent)."""
    path = Path(__file__).with_name("README.md") if path is None else path
    block = f"{MARK_BEGIN}\n{text}\n{MARK_END}"
    current = path.read_text() if path.exists() else ""
    if MARK_BEGIN in current and MARK_END in current:
        head, rest = current.split(MARK_BEGIN, 1)
        current = head + block + rest.split(MARK_END, 1)[1]
    else:
        current = current.rstrip() + f"\n\n## Estimators: gradient variance and step time\n\n{block}\n"
    path.write_text(current)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer draws and repeats")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write-readme", action="store_true", help="update the table in benchmarks/README.md")
    parser.add_argument("--quiet", action="store_true", help="no progress display on stderr")
    args = parser.parse_args(argv)
    rows = run(args.quick, args.threads, progress=not args.quiet)
    text = table(rows, args.threads, f"{20 if args.quick else 100} gradient draws")
    print(text)
    if args.write_readme:
        write_readme(text)
    return rows


if __name__ == "__main__":
    main()
