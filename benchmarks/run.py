"""Entry point: ``python -m benchmarks.run [--quick] [--json PATH] [--threads N] [--cases PATTERN]``.

Runs every implementation of :mod:`benchmarks.impls` on every case of
:mod:`benchmarks.cases` in this one process, on the same data, then prints
the results table and the target checklist. ``--write-readme`` regenerates
the results section of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from benchmarks import impls, report, timing
from benchmarks.cases import all_cases, select
from fblitz._argtypes import integer, output_file, real
from fblitz._task_progress import TaskProgress

README = os.path.join(os.path.dirname(__file__), "README.md")


IMPL_NAMES = (
    "fblitz-eager", "fblitz-compiled", "fblitz-moments", "vmap-one-call", "loop", "bmm", "compat", "blitz",
    "bayesian-torch", "posteriors",
)  # fmt: skip


def default_device() -> str:
    """``cuda`` when a GPU is usable, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def parse(argv=None) -> argparse.Namespace:
    """Command-line options; an invalid value is a usage error naming the option (exit status 2)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="the target cases with fewer iterations (about 6 min on an idle 2-core machine)",
    )
    p.add_argument("--json", metavar="PATH", type=output_file, help="save the records as JSON")
    p.add_argument("--threads", type=integer(1), default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--cases", metavar="PATTERN", help="comma-separated filter, e.g. '13-512-1,S16' or 'predict'")
    p.add_argument("--impls", metavar="NAMES", help=f"subset of {','.join(IMPL_NAMES)}")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled fblitz rows")
    p.add_argument("--no-blitz", action="store_true", help="skip BLiTZ even when it is installed")
    p.add_argument("--no-peers", action="store_true", help="skip bayesian-torch and posteriors even when installed")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (steadier on a loaded machine, CPU only)",
    )
    p.add_argument("--iters", type=integer(1), help="timed rounds (default 30, quick 10)")
    p.add_argument("--warmup", type=integer(0), help="discarded calls after the first (default 3, quick 1)")
    p.add_argument(
        "--budget",
        type=real(0.0, open_minimum=True),
        help="seconds of timed rounds once 3 are done (default 4, quick 2)",
    )
    p.add_argument("--write-readme", action="store_true", help="regenerate the results in benchmarks/README.md")
    p.add_argument("--quiet", action="store_true", help="no progress display on stderr (results still print)")
    args = p.parse_args(argv)
    unknown = sorted(set(args.impls.split(",")) - set(IMPL_NAMES)) if args.impls else []
    if unknown:
        p.error(f"argument --impls: unknown implementation(s) {unknown}; choose from {','.join(IMPL_NAMES)}")
    if args.cases and not select(all_cases(args.quick), args.cases):
        p.error(f"argument --cases: {args.cases!r} matches no case{' of --quick' if args.quick else ''}")
    args.device = default_device() if args.device is None else args.device
    try:
        torch.empty(0, device=args.device)
    except (RuntimeError, AssertionError) as error:
        p.error(f"argument --device: {args.device!r} is not usable here ({str(error).splitlines()[0]})")
    if args.clock == "cpu" and torch.device(args.device).type != "cpu":
        p.error("argument --clock: cpu time measures CPU work only; use --clock wall on an accelerator")
    return args


def _compile_this(case, quick: bool) -> bool:
    # compiling costs seconds to tens of seconds per case; quick mode compiles the target cases only
    if case.task == "predict":
        return True
    targets = {("13-512-1", 16, 16), ("784-400-400-10", 128, 16)}
    return not quick or (case.net.name, case.batch, case.samples) in targets


def run(args: argparse.Namespace, out=sys.stdout) -> list[dict]:
    """Measure every selected case and implementation; return the records."""
    torch.set_num_threads(args.threads)
    quick = args.quick
    iters = args.iters or (10 if quick else 30)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    budget = args.budget or (2.0 if quick else 4.0)
    wanted = set(args.impls.split(",")) if args.impls else None
    blitz = impls.blitz_available() and not args.no_blitz
    peer_names = () if args.no_peers else ("bayesian-torch", "posteriors")
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    records = []
    cases = select(all_cases(quick), args.cases)
    with TaskProgress(len(cases), "cases", enabled=not getattr(args, "quiet", False), out=out) as tasks:
        for case in cases:
            compile_ = not args.no_compile and _compile_this(case, quick)
            chosen = []
            for impl in impls.implementations(case, compile=compile_, blitz=blitz, peer_names=peer_names):
                name = impl.name if impl.name != "fblitz" else f"fblitz-{'compiled' if impl.compiled else 'eager'}"
                if wanted is None or name in wanted:
                    chosen.append((name, impl))
            tasks.start(f"{case.label}: {len(chosen)} implementations")
            torch._dynamo.reset()  # each case compiles from a clean slate (no stale guards or recompile limits)
            runners = [impl.build(case, device=args.device) for _, impl in chosen]

            def announce(index, chosen=chosen, case=case):
                name, impl = chosen[index]
                if impl.compiled:
                    tasks.start(f"{case.label}: compiling {name} (tens of seconds the first time)")

            results = timing.measure_case(
                runners,
                warmup=warmup,
                iters=iters,
                budget=budget,
                device=args.device,
                clock=args.clock,
                announce=announce,
            )
            for (name, impl), result in zip(chosen, results):
                record = {
                    "impl": name,
                    "task": case.task,
                    "model": case.net.name,
                    "batch": case.batch,
                    "samples": case.samples,
                    "estimator": impl.estimator,
                    "device": str(args.device),
                    "clock": args.clock,
                    "threads": args.threads,
                    "ms_median": result["ms_median"],
                    "ms_min": result["ms_min"],
                    "peak_mb": result["peak_mb"],
                    "compile_s": result["first_s"] if impl.compiled else None,
                    "n": result["n"],
                }
                records.append(record)
                tasks.write(
                    f"{case.label:<32} {name:<16} {impl.estimator:<18} {record['ms_median']:9.2f} ms"
                    f"  peak {record['peak_mb']:7.1f} MB"
                    + (f"  compile {record['compile_s']:.1f} s" if record["compile_s"] else "")
                )
            tasks.done()
    return records


def main(argv=None) -> None:
    args = parse(argv)
    records = run(args)
    print("\n" + report.table(records))
    print("\nMedian ms per call:\n\n" + report.summary(records))
    print("\nEach peer's time over fblitz's:\n\n" + report.peer_ratios(records))
    print("\nTarget checklist (ratios from this run):\n" + report.checklist_text(records))
    print("\n" + report.machine(args.threads, args.device))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": report.machine(args.threads, args.device), "records": records}, f, indent=1)
    if args.write_readme:
        command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
        report.write_readme(README, report.results_section(records, args.threads, command.strip(), args.device))


if __name__ == "__main__":
    main()
