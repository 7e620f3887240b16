"""Timing and peak-memory measurement for one runner.

**Time.** Each implementation's first call is timed on its own (for
``torch.compile`` it is the compile time, reported as ``compile_s`` and never
mixed into the step times), then ``warmup`` more calls are discarded. Then the
implementations of one case are timed *interleaved*, one call each per round,
with ``time.perf_counter``, so that the load of a shared machine hits them
alike. We report the median and the minimum in milliseconds.

**Memory.** The transient peak of two steady-state calls, measured in process
(no subprocess per case): after the timed rounds (so parameters, optimizer
state and compiled code already exist), unused heap is returned to
the OS (``malloc_trim``), the kernel's peak-RSS mark is reset by writing ``5``
to ``/proc/self/clear_refs``, and after the timed calls ``VmHWM - VmRSS(before)``
from ``/proc/self/status`` is the peak: the S weight samples, activations,
gradients and temporaries of one call, plus allocator slack. Linux only;
elsewhere ``peak_mb`` is NaN.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import re
import statistics
import time

import torch

_STATUS = "/proc/self/status"


def _status_kb(field: str) -> float:
    try:
        with open(_STATUS) as f:
            match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    except OSError:
        return math.nan
    return float(match.group(1)) if match else math.nan


def _trim() -> None:
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def start_peak() -> float:
    """Reset the kernel's peak-RSS mark; return the current RSS in kB (NaN if unsupported)."""
    _trim()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return math.nan
    return _status_kb("VmRSS")


def peak_mb(baseline_kb: float) -> float:
    """Peak RSS since :func:`start_peak`, above ``baseline_kb``, in MB."""
    return max(0.0, (_status_kb("VmHWM") - baseline_kb) / 1024.0)


def _clock(device: str, clock: str):
    """``now()`` in seconds: wall time after the device's queued work is done, or this process's CPU time."""
    if clock == "cpu":
        return time.process_time
    if torch.device(device).type == "cuda":

        def now():
            torch.cuda.synchronize(device)
            return time.perf_counter()

        return now
    return time.perf_counter


def _peak(device: str, runner) -> float:
    """The transient peak memory (MB) of two calls of ``runner``: device memory on CUDA, else process RSS."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        runner.run()
        runner.run()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    baseline = start_peak()
    runner.run()
    runner.run()
    return peak_mb(baseline)


def measure_case(
    runners: list,
    *,
    warmup: int = 2,
    iters: int = 30,
    budget: float = 3.0,
    device: str = "cpu",
    clock: str = "wall",
    announce=None,
) -> list[dict]:
    """Time several runners of one case, interleaved, then measure each one's peak memory.

    After each runner's first call (timed alone: ``first_s``) and ``warmup``
    more calls, the runners are called in rounds -- one call of each per
    round -- until ``iters`` rounds or ``budget`` seconds (at least 3 rounds, or
    ``iters`` if smaller).
    Interleaving spreads the load of a shared machine evenly over the
    implementations being compared. Then each runner makes two more calls with
    the peak-RSS mark reset (see the module docstring); on CUDA, the peak of
    ``torch.cuda.max_memory_allocated`` instead, and every time is taken after
    ``torch.cuda.synchronize``. ``clock="cpu"`` times with the process's CPU
    time (``time.process_time``), which a loaded machine inflates less.

    ``announce(i)``, if given, is called before runner i's first call (which
    may compile for tens of seconds), for a progress display.

    Returns one ``{"first_s", "ms_median", "ms_min", "n", "peak_mb"}`` per runner.
    """
    firsts, times, peaks = [], [[] for _ in runners], []
    now = _clock(device, clock)
    with contextlib.ExitStack() as stack:
        for runner in runners:
            stack.enter_context(runner.context())
        for index, runner in enumerate(runners):
            if announce is not None:
                announce(index)
            start = now()
            runner.run()
            firsts.append(now() - start)
            for _ in range(warmup):
                runner.run()
        deadline = time.perf_counter() + budget
        rounds = 0
        while rounds < iters and (rounds < min(3, iters) or time.perf_counter() < deadline):
            for runner, series in zip(runners, times):
                start = now()
                runner.run()
                series.append(now() - start)
            rounds += 1
        for runner in runners:
            peaks.append(_peak(device, runner))
    return [
        {
            "first_s": first,
            "ms_median": 1e3 * statistics.median(series),
            "ms_min": 1e3 * min(series),
            "n": len(series),
            "peak_mb": peak,
        }
        for first, series, peak in zip(firsts, times, peaks)
    ]
