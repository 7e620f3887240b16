"""The performance targets, checked on the records of one run (see :mod:`benchmarks.report`).

Targets 1-5 are issue 21's (the eager step against every peer, per-example
noise, prediction); 6-9 are the earlier ones. A target whose cases were not
measured in the run is ``n/a``.
"""

from __future__ import annotations

import math

REP, LRT, FLIP = "reparameterization", "local_reparameterization", "flipout"
SMALL = ("step", "13-512-1", 16)
BIG = ("step", "784-400-400-10", 128, 16)


def key_of(r: dict) -> tuple:
    """The case of a record: ``(task, model, batch, samples)``."""
    return (r["task"], r["model"], r["batch"], r["samples"])


def find(records: list[dict], key: tuple, impl: str, estimator: str | None = None) -> dict | None:
    """The record of ``impl`` (with ``estimator``, or the fastest of any) for the case ``key``."""
    rows = [r for r in records if key_of(r) == key and r["impl"] == impl]
    if estimator is not None:
        rows = [r for r in rows if r["estimator"] == estimator]
    return min(rows, key=lambda r: r["ms_median"]) if rows else None


def _ms(r: dict | None) -> float:
    return r["ms_median"] if r else math.nan


def _ratio(a: dict | None, b: dict | None) -> float:
    return _ms(a) / _ms(b)


def _ok(*conditions) -> bool | None:
    values = [c for c in conditions]
    if any(v is None for v in values):
        return None
    return all(values)


def _le(value: float, bound: float) -> bool | None:
    return None if math.isnan(value) else value <= bound


def _eager(records, key, estimator=REP):
    return find(records, key, "fblitz-eager", estimator)


def _best(records, key, sampling_only=False):
    rows = [r for r in records if key_of(r) == key and r["impl"].startswith("fblitz")]
    if sampling_only:
        rows = [r for r in rows if r["impl"] != "fblitz-moments"]
    return min(rows, key=lambda r: r["ms_median"]) if rows else None


def _name(r: dict | None) -> str:
    return f"{r['impl']}/{r['estimator']}" if r else "n/a"


def issue_21(records: list[dict]) -> list[tuple[str, str, bool | None]]:
    items = []
    s1, s16 = (*SMALL, 1), (*SMALL, 16)
    eager1 = _eager(records, s1)
    vs_bt, vs_bmm = _ratio(eager1, find(records, s1, "bayesian-torch")), _ratio(eager1, find(records, s1, "bmm"))
    items.append(
        (
            "1a. eager S=1 step (13-512-1 b16): <= bayesian-torch's and <= 1.2x the bmm reference",
            f"{vs_bt:.2f}x bayesian-torch's time, {vs_bmm:.2f}x bmm's",
            _ok(_le(vs_bt, 1.0), _le(vs_bmm, 1.2)),
        )
    )
    vs_post = _ratio(_eager(records, s16), find(records, s16, "posteriors"))
    items.append(("1b. eager S=16 step (13-512-1 b16): <= posteriors' / 2", f"{vs_post:.2f}x posteriors' time",
                  _le(vs_post, 0.5)))  # fmt: skip
    worst, where = math.nan, ""
    for key in dict.fromkeys(key_of(r) for r in records if r["task"] == "step"):
        ratio = _ratio(find(records, key, "compat"), _eager(records, key))
        if not math.isnan(ratio) and not ratio <= worst:
            worst, where = ratio, f"{key[1]} b{key[2]} S{key[3]}"
    items.append(("1c. compat step <= 1.1x the functional eager step (every step case)",
                  f"worst {worst:.2f}x ({where})" if where else "n/a", _le(worst, 1.1)))  # fmt: skip
    small = []
    for samples in (1, 16, 64):
        key = (*SMALL, samples)
        for est in (LRT, FLIP):
            ratio = _ratio(_eager(records, key, est), _eager(records, key))
            if not math.isnan(ratio):
                small.append((f"S{samples} {'LRT' if est == LRT else 'Flipout'} {ratio:.2f}x", ratio <= 1.0))
    big = [(est, _ratio(_eager(records, BIG, est), _eager(records, BIG))) for est in (LRT, FLIP)]
    big = [(f"784 {'LRT' if e == LRT else 'Flipout'} {r:.2f}x", r < 1.0) for e, r in big if not math.isnan(r)]
    everything = small + big
    items.append(
        (
            "2. eager LRT and Flipout step / plain reparameterization: <= 1 on 13-512-1, < 1 on 784-400-400-10",
            ", ".join(text for text, _ in everything) or "n/a",
            None if not everything else all(ok for _, ok in everything),
        )
    )
    rows = [r["batch"] for r in records if r["task"] == "predict" and r["model"] == "13-512-1"]
    key = ("predict", "13-512-1", max(rows, default=10_000), 100)
    blitz = find(records, key, "blitz")
    best, sampling = _best(records, key), _best(records, key, sampling_only=True)
    r_best, r_sampling = _ratio(blitz, best), _ratio(blitz, sampling)
    items.append(
        (
            "3. predict 100 draws x 10k rows (13-512-1): >= 10x BLiTZ's mfvi_forward",
            f"{r_best:.2f}x ({_name(best)}); with draws {r_sampling:.2f}x ({_name(sampling)}); on {key[2]} rows",
            None if math.isnan(r_best) else r_best >= 10,
        )
    )
    return items


def earlier(records: list[dict]) -> list[tuple[str, str, bool | None]]:
    items = []
    s1, s16, s64 = ((*SMALL, s) for s in (1, 16, 64))
    best = _best(records, s16)
    vs_blitz, vs_bmm = _ratio(find(records, s16, "blitz"), best), _ratio(best, find(records, s16, "bmm"))
    items.append(
        (
            "6. 13-512-1 b16 S16 step: >= 6x faster than BLiTZ, <= 1.2x the bmm reference",
            f"{vs_blitz:.2f}x faster than BLiTZ, {vs_bmm:.2f}x the bmm time ({_name(best)})",
            None if math.isnan(vs_blitz) or math.isnan(vs_bmm) else vs_blitz >= 6 and vs_bmm <= 1.2,
        )
    )
    scaling = {}
    for est in (REP, LRT, FLIP):
        ratio = _ratio(_eager(records, s64, est), _eager(records, s1, est))
        if not math.isnan(ratio):
            scaling[est] = ratio
    blitz_scaling = _ratio(find(records, s64, "blitz"), find(records, s1, "blitz"))
    detail = ", ".join(f"eager/{k} {v:.1f}x" for k, v in scaling.items())
    items.append(("7. 13-512-1 b16: S=64 step <= 6x the S=1 step", f"{detail or 'n/a'} (BLiTZ {blitz_scaling:.1f}x)",
                  None if not scaling else min(scaling.values()) <= 6))  # fmt: skip
    best = _best(records, BIG)
    r3 = _ratio(find(records, BIG, "blitz"), best)
    items.append(("8. 784-400-400-10 b128 S16 step, best estimator: >= 5x faster than BLiTZ",
                  f"{r3:.2f}x ({_name(best)})", None if math.isnan(r3) else r3 >= 5))  # fmt: skip
    worst, worst_row = math.inf, None
    for r in records:
        if r["impl"].startswith("fblitz") and r["impl"] != "fblitz-moments":
            speed = _ratio(find(records, key_of(r), "loop"), r)
            if not math.isnan(speed) and speed < worst:
                worst, worst_row = speed, r
    where = (
        f"{worst_row['task']} {worst_row['model']} b{worst_row['batch']} S{worst_row['samples']}" if worst_row else ""
    )
    items.append(("9. no fblitz case slower than the Python loop",
                  f"slowest vs loop: {worst:.2f}x ({_name(worst_row)}, {where})" if worst_row else "n/a",
                  None if worst_row is None else worst >= 1.0))  # fmt: skip
    return items


def checklist(records: list[dict]) -> list[tuple[str, str, bool | None]]:
    """``(target, measured, met)`` for every target (``met`` None: not measured in this run)."""
    return issue_21(records) + earlier(records)


def checklist_text(records: list[dict]) -> str:
    """The checklist as text lines (``[met]``, ``[NOT met]`` or ``[n/a]``)."""
    marks = {True: "[met]    ", False: "[NOT met]", None: "[n/a]    "}
    return "\n".join(f"{marks[ok]} {target}: {measured}" for target, measured, ok in checklist(records))
