"""How much of compat's step is BLiTZ's Monte Carlo KL: the functional eager step with each KL mode, and compat.

``python -m benchmarks.compat_kl [--model 784-400-400-10] [--batch 128] [--samples 16] [--rounds 8]``
calls the three steps interleaved, one call each per round (one thread, CPU
time), and prints each median and its ratio to the closed-form step.
"""

import argparse
import statistics
import time

import torch

from benchmarks import impls
from benchmarks.cases import NETS, Case
from benchmarks.runner import KL_WEIGHT, LEARNING_RATE, Runner, setup
from fblitz import optim
from fblitz.random import Key
from fblitz.training import make_train_step


def functional_step(case: Case, kl_mode: str) -> Runner:
    """``make_train_step`` (eager) with ``kl_mode``, the benchmark's data and initial params."""
    model, params, x, y = setup(case, 0, "cpu")
    opt = optim.adam(LEARNING_RATE)
    step = make_train_step(model, case.net.likelihood, opt, n_samples=case.samples, kl_mode=kl_mode)
    carry = {"params": params, "opt": opt.init(params), "i": 0}
    weight = torch.tensor(KL_WEIGHT)

    def run():
        carry["i"] += 1
        key = Key(2).fold_in(carry["i"])
        out = step(carry["params"], carry["opt"], key, x, y, weight)
        carry["params"], carry["opt"] = out.params, out.opt_state

    return Runner(run)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="784-400-400-10", choices=sorted(NETS))
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    case = Case(NETS[args.model], args.batch, args.samples)
    runners = {
        "eager, closed-form KL": functional_step(case, "closed_form"),
        "eager, Monte Carlo KL": functional_step(case, "monte_carlo"),
        "compat (BLiTZ's KL)": impls.twin_step(case, library="compat"),
    }
    times = {name: [] for name in runners}
    for runner in runners.values():  # warm-up
        with runner.context():
            runner.run()
    for _ in range(args.rounds):
        for name, runner in runners.items():
            with runner.context():
                start = time.process_time()
                runner.run()
                times[name].append(time.process_time() - start)
    base = statistics.median(times["eager, closed-form KL"])
    print(case.label)
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} {median * 1e3:8.1f} ms  {median / base:.2f}x")


if __name__ == "__main__":
    main()
