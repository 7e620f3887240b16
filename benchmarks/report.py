"""Tables, ratios and the README section, from a list of records.

A record is a dict with ``impl`` (``fblitz-eager``, ``fblitz-compiled``,
``fblitz-moments``, ``vmap-one-call``, ``loop``, ``bmm``, ``compat``,
``blitz``, ``bayesian-torch``, ``posteriors``), ``task``, ``model``,
``batch``, ``samples``, ``estimator``, ``device``, ``clock``, ``threads``,
``ms_median``, ``ms_min``, ``peak_mb`` and ``compile_s`` (compiled rows).
Every ratio compares medians from the same run: ``x blitz`` is
``blitz_ms / ms`` (a speed-up; > 1 means faster than BLiTZ), likewise for
the other references. The targets are in :mod:`benchmarks.targets`.
"""

from __future__ import annotations

import math
import os
import platform
import re

import torch

from benchmarks.targets import checklist_text, find, key_of

RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"
REFERENCES = ("blitz", "bayesian-torch", "posteriors", "bmm", "loop")
PEERS = ("blitz", "bayesian-torch", "posteriors", "compat")
# the columns of the summary table: (title, impl, estimator or None for any)
SUMMARY = (
    ("BLiTZ", "blitz", None),
    ("bayesian-torch", "bayesian-torch", None),
    ("posteriors", "posteriors", None),
    ("fblitz.compat", "compat", None),
    ("fblitz eager", "fblitz-eager", "reparameterization"),
    ("eager LRT", "fblitz-eager", "local_reparameterization"),
    ("eager Flipout", "fblitz-eager", "flipout"),
    ("fblitz compiled", "fblitz-compiled", None),
    ("closed-form moments", "fblitz-moments", None),
    ("hand-batched bmm", "bmm", None),
)


def machine(threads: int, device: str = "cpu") -> str:
    """One line: CPU (or GPU) model, cores, torch version, threads, load average."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE).group(1).strip()
    except (OSError, AttributeError):
        pass
    if torch.device(device).type == "cuda":
        cpu = f"{torch.cuda.get_device_name(device)} (host: {cpu})"
    try:
        load = f" (1-min load average {os.getloadavg()[0]:.1f} at the end of the run: the machine is shared)"
    except OSError:
        load = ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, device {device}, {threads} threads{load}"


def speedup(records: list[dict], r: dict, other: str) -> float:
    ref = find(records, key_of(r), other, "reparameterization" if other.startswith("fblitz") else None)
    return ref["ms_median"] / r["ms_median"] if ref and r["impl"] != other else math.nan


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _label(key: tuple) -> str:
    task, model, batch, samples = key
    return f"{'predict ' if task == 'predict' else ''}{model} b{batch} S{samples}"


def _cases(records: list[dict]) -> list[tuple]:
    return list(dict.fromkeys(key_of(r) for r in records))


def summary(records: list[dict]) -> str:
    """One row per case, one column per library (ms median): the issue's table, with the peers."""
    columns = [c for c in SUMMARY if any(r["impl"] == c[1] for r in records)]
    lines = ["| case | " + " | ".join(c[0] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key in _cases(records):
        cells = []
        for _, impl, estimator in columns:
            r = find(records, key, impl, estimator)
            cells.append(fmt(r["ms_median"], 1 if r and r["ms_median"] >= 10 else 2) if r else "-")
        lines.append(f"| {_label(key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def peer_ratios(records: list[dict]) -> str:
    """Each peer's median over fblitz eager's (plain reparameterization) and over the fastest fblitz row."""
    peers = [p for p in PEERS if any(r["impl"] == p for r in records)]
    head = " | ".join(f"{p} / eager | {p} / best" for p in peers)
    lines = [f"| case | best fblitz | {head} |", "|---" * (2 * len(peers) + 2) + "|"]
    for key in _cases(records):
        eager = find(records, key, "fblitz-eager", "reparameterization")
        fblitz = [r for r in records if key_of(r) == key and r["impl"].startswith("fblitz")]
        best = min(fblitz, key=lambda r: r["ms_median"]) if fblitz else None
        cells = []
        for p in peers:
            peer = find(records, key, p)
            for ref in (eager, best):
                cells.append(fmt(peer["ms_median"] / ref["ms_median"]) + "x" if peer and ref else "-")
        where = f"{best['impl']}/{best['estimator']}" if best else "-"
        lines.append(f"| {_label(key)} | {where} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(records: list[dict]) -> str:
    """A markdown table, one row per record, with speed-ups against every reference."""
    head = "| task | model | batch | S | impl | estimator | ms median | ms min | peak MB | "
    head += " | ".join(f"x {ref}" for ref in REFERENCES) + " |"
    lines = [head, "|" + "---|" * (9 + len(REFERENCES))]
    for r in records:
        compile_note = f" ({r['compile_s']:.0f} s compile)" if r.get("compile_s") else ""
        cells = [r["task"], r["model"], str(r["batch"]), str(r["samples"]), r["impl"] + compile_note]
        cells += [r["estimator"], fmt(r["ms_median"]), fmt(r["ms_min"]), fmt(r["peak_mb"], 1)]
        cells += [fmt(speedup(records, r, ref)) for ref in REFERENCES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_section(records: list[dict], threads: int, command: str, device: str = "cpu") -> str:
    """The generated part of ``benchmarks/README.md``."""
    return "\n".join(
        [
            RESULTS_START,
            f"Machine: {machine(threads, device)}. Command: `{command}`.",
            "",
            "Median ms per call, one run (a training step with its optimizer update; for `predict`, 100 draws "
            "and their mean and std):",
            "",
            summary(records),
            "",
            "Each peer's time over fblitz's (> 1: fblitz is faster), eager plain reparameterization and the "
            "fastest fblitz row:",
            "",
            peer_ratios(records),
            "",
            "Target checklist (ratios from this run):",
            "",
            "```",
            checklist_text(records),
            "```",
            "",
            "<details><summary>Every row</summary>",
            "",
            table(records),
            "",
            "</details>",
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
