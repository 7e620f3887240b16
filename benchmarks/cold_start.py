"""Time from launching the main job to its first training step, with a cold and a warm compile cache.

``python -m benchmarks.cold_start [--runs N] [--json PATH] [-- BOSTON OPTIONS]`` launches
``python -m fblitz.examples.boston`` (with the given options; by default its own,
which compile the training step) in a fresh process, ``N`` times with an
empty compile cache (a new ``TORCHINDUCTOR_CACHE_DIR``: cold) and ``N`` times
with the cache the cold runs filled (warm). The child is the example's own
``main`` run under :func:`child`, which notes the wall-clock time at the
end of the first step and stops there; the parent takes the launch time
before starting the process, so the interval includes the interpreter start,
the imports, loading the data and the first step (compilation included).
Phases are reported too: imports done, first step entered.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MARK = "COLD_START "


class FirstStep(Exception):
    """Raised by the wrapped step after its first call: the child has what it measures."""


def child(argv: list[str]) -> None:
    """Run the Boston example's ``main`` until its first training step ends; print the times (epoch s)."""
    started = time.time()
    import fblitz.train as train
    from fblitz.examples import boston

    imported = time.time()
    times = {"started": started, "imported": imported}
    make = train.make_train_step

    def make_and_watch(*args, **kwargs):
        step = make(*args, **kwargs)

        def first(*a, **k):
            times["step_entered"] = time.time()
            out = step.fn(*a, **k)
            bool(out[-1])  # the step's result is computed (the finiteness flag is read), not just queued
            times["step_done"] = time.time()
            raise FirstStep

        return step._replace(fn=first)

    train.make_train_step = make_and_watch
    try:
        boston.main(argv)
    except FirstStep:
        print(MARK + json.dumps(times), flush=True)
        return
    raise RuntimeError("the example finished without a training step")


def launch(argv: list[str], cache_dir: str) -> dict:
    """One child run with ``cache_dir`` as the compile cache: seconds from launch to each phase."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache_dir, PYTHONPATH=os.getcwd())
    launched = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.cold_start", "--child", "--", *argv],
        env=env, capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith(MARK)), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"the child run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    times = json.loads(line[len(MARK) :])
    return {
        "interpreter_s": times["started"] - launched,
        "imports_s": times["imported"] - launched,
        "step_entered_s": times["step_entered"] - launched,
        "first_step_s": times["step_done"] - launched,
        "step_itself_s": times["step_done"] - times["step_entered"],
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=2, help="runs per cache state (default 2)")
    p.add_argument("--json", metavar="PATH", help="save the records as JSON")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("example_args", nargs="*", help="options of python -m fblitz.examples.boston (after --)")
    args = p.parse_args(argv)
    if args.child:
        child(args.example_args)
        return []
    records = []
    with tempfile.TemporaryDirectory(prefix="fblitz-inductor-") as cache:
        for state in ("cold", "warm"):
            for run in range(args.runs):
                if state == "cold":
                    cache_dir = tempfile.mkdtemp(dir=cache)  # a new, empty cache for every cold run
                    last_cold = cache_dir
                else:
                    cache_dir = last_cold
                record = {"cache": state, "run": run, "args": args.example_args, **launch(args.example_args, cache_dir)}
                records.append(record)
                print(
                    f"{state} run {run}: first step after {record['first_step_s']:.1f} s (imports "
                    f"{record['imports_s']:.1f} s, step entered {record['step_entered_s']:.1f} s, the step itself "
                    f"{record['step_itself_s']:.2f} s)",
                    flush=True,
                )
    for state in ("cold", "warm"):
        values = [r["first_step_s"] for r in records if r["cache"] == state]
        print(f"{state}: median {statistics.median(values):.1f} s to the first step over {len(values)} runs")
    print(f"1-min load average {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return records


if __name__ == "__main__":
    main()
