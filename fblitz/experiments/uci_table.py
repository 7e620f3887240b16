"""The markdown tables of the UCI benchmark: results beside the published rows, and calibration.

:func:`render_table` turns the runner's summaries (one per data set, as saved by
:mod:`fblitz.experiments.uci_benchmark`) into the results table and
:func:`render_calibration` into the calibration table (coverage at every level,
the KL weight and noise factor chosen per split); :func:`replace_between_markers`
puts a table into a page between its markers.
"""

from __future__ import annotations

import pathlib
import statistics
from typing import NamedTuple

from fblitz.errors import FblitzValueError

RESULTS = "uci-results"
CALIBRATION = "uci-calibration"
START_MARKER = f"<!-- {RESULTS}:start -->"
END_MARKER = f"<!-- {RESULTS}:end -->"
LEVELS = (50, 80, 90, 95)
TOLERANCE = 0.03  # the target: observed coverage within 3 points of nominal


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the table called ``name`` (:data:`RESULTS` or :data:`CALIBRATION`)."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


class Published(NamedTuple):
    """A published row: method (with its source), test RMSE (None where not given) and test log-likelihood."""

    method: str
    rmse: float | None
    log_likelihood: float


MC_DROPOUT_TUNED = "MC dropout, tuned (Mukhoti et al. 2018)"
DEEP_ENSEMBLES = "Deep ensembles (Lakshminarayanan et al. 2017)"
PUBLISHED = {
    "boston": [Published(MC_DROPOUT_TUNED, 2.90, -2.40), Published(DEEP_ENSEMBLES, 3.28, -2.41)],
    "concrete": [Published(MC_DROPOUT_TUNED, 4.82, -2.93)],
    "energy": [Published(MC_DROPOUT_TUNED, 0.54, -1.21)],
    "yacht": [Published(MC_DROPOUT_TUNED, 0.67, -1.25), Published(DEEP_ENSEMBLES, None, -1.18)],
    "wine-quality-red": [Published("MC dropout (Gal & Ghahramani 2016)", 0.62, -0.93)],
}
TITLES = {
    "boston": "Boston",
    "concrete": "Concrete",
    "energy": "Energy",
    "yacht": "Yacht",
    "wine-quality-red": "Wine (red)",
}
HEADER = (
    "| data set | method | splits | test RMSE | test log-likelihood | 90% coverage | coverage at 50 / 80 / 95% |\n"
    "|---|---|---|---|---|---|---|"
)


def _mean_se(entry: dict, digits: int, scale: float = 1.0) -> str:
    return f"{scale * entry['mean']:.{digits}f} ± {scale * entry['stderr']:.{digits}f}"


def _signed(text: str) -> str:
    return text.replace("-", "−")


def _check_known(summaries: dict[str, dict]) -> None:
    unknown = sorted(set(summaries) - set(PUBLISHED))
    if unknown:
        raise FblitzValueError(f"no published rows for {unknown}; known data sets: {sorted(PUBLISHED)}")


def fblitz_label(summary: dict) -> str:
    """ "fblitz BBB (runner defaults)", or with the runner arguments the benchmark added."""
    changed = summary.get("runner_args", [])
    return "fblitz BBB (" + (" ".join(changed) if changed else "runner defaults") + ")"


def fblitz_row(summary: dict) -> str:
    """The table row of one runner summary (mean ± standard error over its splits)."""
    coverage = " / ".join(f"{100 * summary[f'coverage_{level}']['mean']:.0f}" for level in (50, 80, 95))
    cells = [
        f"**{fblitz_label(summary)}**",
        str(summary["n_splits"]),
        _signed(_mean_se(summary["rmse"], 2)),
        _signed(_mean_se(summary["log_likelihood"], 2)),
        f"{_mean_se(summary['coverage_90'], 1, 100)}%",
        f"{coverage}%",
    ]
    return "| " + " | ".join(cells) + " |"


def render_table(summaries: dict[str, dict]) -> str:
    """One markdown table: for each data set of :data:`PUBLISHED`, its published rows and fblitz's row.

    Args:
        summaries: ``{name: summary}`` with the runner's JSON summary of each
            data set run so far (missing data sets get a "not run" row).
    """
    _check_known(summaries)
    lines = [HEADER]
    for name, rows in PUBLISHED.items():
        summary = summaries.get(name)
        shape = f" ({summary['n_rows']} × {summary['n_features']})" if summary else ""
        label = f"{TITLES[name]}{shape}"
        for row in rows:
            rmse = "–" if row.rmse is None else f"{row.rmse:.2f}"
            cells = [label, row.method, "20", rmse, _signed(f"{row.log_likelihood:.2f}"), "–", "–"]
            lines.append(("| " + " | ".join(cells) + " |").replace("|  |", "| |"))
            label = ""
        if summary is None:
            lines.append("| | fblitz BBB (runner defaults) | not run yet | | | | |")
        else:
            lines.append(fblitz_row(summary).replace("| **fblitz", "| | **fblitz", 1))
    return "\n".join(lines)


CALIBRATION_HEADER = (
    "| data set | splits | 50% | 80% | 90% | 95% | KL weight kept (splits) | noise factor, median (range) |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _coverage_cell(entry: dict, level: int) -> str:
    """Observed coverage in percent, mean ± standard error; bold when the mean misses nominal by over 3 points."""
    text = _mean_se(entry, 1, 100)
    return f"**{text}**" if abs(entry["mean"] - level / 100) > TOLERANCE + 1e-12 else text


def _weights_kept(per_split: list[dict]) -> str:
    counts: dict[float, int] = {}
    for part in per_split:
        counts[part["kl_weight"]] = counts.get(part["kl_weight"], 0) + 1
    return ", ".join(f"{weight:g}: {count}" for weight, count in sorted(counts.items(), reverse=True))


def _factor_summary(per_split: list[dict]) -> str:
    factors = [part["noise_factor"] for part in per_split]
    return f"{statistics.median(factors):.2f} ({min(factors):.2f}–{max(factors):.2f})"


def render_calibration(summaries: dict[str, dict]) -> str:
    """The calibration table: per data set run so far, the observed coverage of the central 50/80/90/95% intervals.

    Each coverage is mean ± standard error over the splits, in percent of the
    test rows, bold where the mean is more than 3 points from nominal; beside it
    how often each KL weight was kept and the noise factors fitted on the
    held-out training rows.
    """
    _check_known(summaries)
    lines = [CALIBRATION_HEADER]
    for name in PUBLISHED:
        summary = summaries.get(name)
        if summary is None:
            continue
        per_split = summary["per_split"]
        cells = [TITLES[name], str(summary["n_splits"])]
        cells += [_coverage_cell(summary[f"coverage_{level}"], level) for level in LEVELS]
        cells += [_weights_kept(per_split), _factor_summary(per_split)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_between_markers(text: str, table: str, page: str | pathlib.Path = "the page", name: str = RESULTS) -> str:
    """``text`` with everything between the start and end markers of ``name`` replaced by ``table``."""
    start_marker, end_marker = markers(name)
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start or text.count(start_marker) != 1 or text.count(end_marker) != 1:
        raise FblitzValueError(f"{page} must hold {start_marker} once, followed by {end_marker} once")
    return text[: start + len(start_marker)] + "\n" + table + "\n" + text[end:]


def update_page(text: str, summaries: dict[str, dict], page: str | pathlib.Path = "the page") -> str:
    """``text`` with the results table and, where the page has its markers, the calibration table rewritten."""
    text = replace_between_markers(text, render_table(summaries), page)
    if markers(CALIBRATION)[0] in text:
        text = replace_between_markers(text, render_calibration(summaries), page, CALIBRATION)
    return text
