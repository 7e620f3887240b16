"""Profile one implementation of one case with ``torch.profiler``.

``python -m benchmarks.prototypes.profile_step --cases 13-512-1,b16,S16 --impl fblitz-eager``
prints the ops by self CPU time and the number of ops per call.
"""

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks import impls
from benchmarks.cases import all_cases, select


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cases", required=True)
    p.add_argument("--impl", default="fblitz-eager")
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--rows", type=int, default=18)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    case = select(all_cases(False), args.cases)[0]
    builders = {
        "fblitz-eager": impls.fblitz_step,
        "fblitz-compiled": lambda c: impls.fblitz_step(c, compile=True),
        "loop": impls.loop_step,
        "bmm": impls.bmm_step,
        "blitz": impls.blitz_step,
        "fblitz-predict": impls.fblitz_predict,
        "loop-predict": impls.loop_predict,
        "bmm-predict": impls.bmm_predict,
    }
    runner = builders[args.impl](case)
    with runner.context():
        for _ in range(3):
            runner.run()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.calls):
                runner.run()
    events = prof.key_averages()
    total_ops = sum(e.count for e in events if not e.key.startswith("ProfilerStep"))
    self_us = sum(e.self_cpu_time_total for e in events)
    print(
        f"{case.label} {args.impl}: {total_ops / args.calls:.0f} op calls per call, "
        f"{self_us / args.calls / 1e3:.2f} ms self CPU per call"
    )
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
