"""The markdown results table of the UCI benchmark, beside the published rows.

:func:`render_table` turns the runner's summaries (one per data set, as saved by
:mod:`fblitz.experiments.uci_benchmark`) into one table;
:func:`replace_between_markers` puts it into a page.
"""

from __future__ import annotations

import pathlib
from typing import NamedTuple

from fblitz.errors import FblitzValueError

START_MARKER = "<!-- uci-results:start -->"
END_MARKER = "<!-- uci-results:end -->"


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
    unknown = sorted(set(summaries) - set(PUBLISHED))
    if unknown:
        raise FblitzValueError(f"no published rows for {unknown}; known data sets: {sorted(PUBLISHED)}")
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


def replace_between_markers(text: str, table: str, page: str | pathlib.Path = "the page") -> str:
    """``text`` with everything between :data:`START_MARKER` and :data:`END_MARKER` replaced by ``table``."""
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start or text.count(START_MARKER) != 1 or text.count(END_MARKER) != 1:
        raise FblitzValueError(f"{page} must hold {START_MARKER} once, followed by {END_MARKER} once")
    return text[: start + len(START_MARKER)] + "\n" + table + "\n" + text[end:]
