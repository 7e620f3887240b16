"""Tables, ratios, the target checklist and the README section, from a list of records.

A record is a dict with ``impl`` (``fblitz-eager``, ``fblitz-compiled``, ``vmap-one-call``, ``loop``,
``bmm``, ``blitz``), ``task``, ``model``, ``batch``, ``samples``, ``estimator``,
``threads``, ``ms_median``, ``ms_min``, ``peak_mb`` and ``compile_s`` (compiled
rows). Every ratio compares medians from the same run. ``x blitz`` is
``blitz_ms / ms`` (a speed-up; > 1 means faster than BLiTZ), likewise
``x loop`` and ``x bmm``.
"""

from __future__ import annotations

import math
import os
import platform
import re

import torch

RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"


def machine(threads: int) -> str:
    """One line: CPU model, cores, torch version, threads, load average."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE).group(1).strip()
    except (OSError, AttributeError):
        pass
    try:
        load = f" (1-min load average {os.getloadavg()[0]:.1f} at the end of the run: the machine is shared)"
    except OSError:
        load = ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads{load}"


def _key(r: dict) -> tuple:
    return (r["task"], r["model"], r["batch"], r["samples"])


def _find(records: list[dict], key: tuple, impl: str) -> dict | None:
    return next((r for r in records if _key(r) == key and r["impl"] == impl), None)


def _speedup(records: list[dict], r: dict, other: str) -> float:
    ref = _find(records, _key(r), other)
    return ref["ms_median"] / r["ms_median"] if ref and r["impl"] != other else math.nan


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def table(records: list[dict]) -> str:
    """A markdown table, one row per record, with speed-ups vs BLiTZ, the loop and bmm."""
    head = "| task | model | batch | S | impl | estimator | ms median | ms min | peak MB | x blitz | x loop | x bmm |"
    lines = [head, "|" + "---|" * 12]
    for r in records:
        compile_note = f" ({r['compile_s']:.0f} s compile)" if r.get("compile_s") else ""
        cells = [
            r["task"],
            r["model"],
            str(r["batch"]),
            str(r["samples"]),
            r["impl"] + compile_note,
            r["estimator"],
            _fmt(r["ms_median"]),
            _fmt(r["ms_min"]),
            _fmt(r["peak_mb"], 1),
            _fmt(_speedup(records, r, "blitz")),
            _fmt(_speedup(records, r, "loop")),
            _fmt(_speedup(records, r, "bmm")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _best_fblitz(records: list[dict], key: tuple) -> dict | None:
    rows = [r for r in records if _key(r) == key and r["impl"].startswith("fblitz")]
    return min(rows, key=lambda r: r["ms_median"]) if rows else None


def _ratio(a: dict | None, b: dict | None) -> float:
    return a["ms_median"] / b["ms_median"] if a and b else math.nan


def _label(r: dict | None) -> str:
    return f"{r['impl']}/{r['estimator']}" if r else "n/a"


def checklist(records: list[dict]) -> list[tuple[str, str, bool | None]]:
    """``(target, measured, met)`` for the five performance targets (``met`` None: not measured)."""
    items = []
    key1 = ("step", "13-512-1", 16, 16)
    best = _best_fblitz(records, key1)
    vs_blitz = _ratio(_find(records, key1, "blitz"), best)
    vs_bmm = _ratio(best, _find(records, key1, "bmm"))
    ok = None if math.isnan(vs_blitz) or math.isnan(vs_bmm) else vs_blitz >= 6 and vs_bmm <= 1.2
    items.append(
        (
            "1. 13-512-1 b16 S16 step: >= 6x faster than BLiTZ, <= 1.2x the bmm reference",
            f"{vs_blitz:.2f}x faster than BLiTZ, {vs_bmm:.2f}x the bmm time ({_label(best)})",
            ok,
        )
    )
    lo, hi = ("step", "13-512-1", 16, 1), ("step", "13-512-1", 16, 64)
    scaling = {}
    for r in records:
        if _key(r) == lo and r["impl"].startswith("fblitz"):
            scaling[_label(r)] = _ratio(next((h for h in records if _key(h) == hi and _label(h) == _label(r)), None), r)
    blitz_scaling = _ratio(_find(records, hi, "blitz"), _find(records, lo, "blitz"))
    finite = {k: v for k, v in scaling.items() if not math.isnan(v)}
    best_scaling = min(finite.values()) if finite else math.nan
    detail = ", ".join(f"{k} {v:.1f}x" for k, v in finite.items())
    items.append(
        (
            "2. 13-512-1 b16: S=64 step <= 6x the S=1 step",
            f"{detail or 'n/a'} (BLiTZ {blitz_scaling:.1f}x)",
            None if not finite else best_scaling <= 6,
        )
    )
    key3 = ("step", "784-400-400-10", 128, 16)
    best3 = _best_fblitz(records, key3)
    r3 = _ratio(_find(records, key3, "blitz"), best3)
    items.append(
        (
            "3. 784-400-400-10 b128 S16 step, best estimator: >= 5x faster than BLiTZ",
            f"{r3:.2f}x ({_label(best3)})",
            None if math.isnan(r3) else r3 >= 5,
        )
    )
    batches = [r["batch"] for r in records if r["task"] == "predict" and r["model"] == "13-512-1"]
    key4 = ("predict", "13-512-1", max(batches, default=10_000), 100)
    best4 = _best_fblitz(records, key4)
    r4 = _ratio(_find(records, key4, "blitz"), best4)
    items.append(
        (
            "4. predict 100 samples x 10k rows (13-512-1): >= 10x faster than BLiTZ's mfvi_forward",
            f"{r4:.2f}x (on {key4[2]} rows)",
            None if math.isnan(r4) else r4 >= 10,
        )
    )
    worst, worst_row = math.inf, None
    for r in records:
        if r["impl"].startswith("fblitz"):
            speed = _speedup(records, r, "loop")
            if not math.isnan(speed) and speed < worst:
                worst, worst_row = speed, r
    where = ""
    if worst_row:
        where = f"{worst_row['task']} {worst_row['model']} b{worst_row['batch']} S{worst_row['samples']}"
    items.append(
        (
            "5. no fblitz case slower than the Python loop",
            f"slowest vs loop: {worst:.2f}x ({_label(worst_row)}, {where})" if worst_row else "n/a",
            None if worst_row is None else worst >= 1.0,
        )
    )
    return items


def checklist_text(records: list[dict]) -> str:
    """The checklist as text lines (``[met]``, ``[NOT met]`` or ``[n/a]``)."""
    marks = {True: "[met]    ", False: "[NOT met]", None: "[n/a]    "}
    return "\n".join(f"{marks[ok]} {target}: {measured}" for target, measured, ok in checklist(records))


def results_section(records: list[dict], threads: int, command: str) -> str:
    """The generated part of ``benchmarks/README.md``."""
    return "\n".join(
        [
            RESULTS_START,
            f"Machine: {machine(threads)}. Command: `{command}`.",
            "",
            table(records),
            "",
            "Target checklist (ratios from this run):",
            "",
            "```",
            checklist_text(records),
            "```",
            RESULTS_END,
        ]
    )


def write_readme(path: str, section: str) -> None:
    """Replace the text between the result markers of ``path`` with ``section`` (append if absent)."""
    text = open(path).read() if os.path.exists(path) else ""
    if RESULTS_START in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_START, 1)
        text = head + section + rest.split(RESULTS_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)
