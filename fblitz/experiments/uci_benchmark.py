"""Run the UCI runner on the five benchmark data sets and write one results table beside the published rows.

``python -m fblitz.experiments.uci_benchmark --data-root ../shared/data/uci``
runs :mod:`fblitz.experiments.uci` with its defaults (the recommended recipe) on
Boston (built in) and on the ``concrete``, ``energy``, ``yacht`` and
``wine-quality-red`` benchmark directories under ``--data-root``, one split at a
time, or ``--workers N`` splits at a time in N single-thread processes
(:mod:`fblitz.experiments.uci_jobs`; the same scores either way). Each finished
split is saved as JSON under ``--results`` (so an interrupted run resumes where
it stopped); each data set's summary goes to
``RESULTS/<name>.json``. The markdown table is then written between the
markers ``<!-- uci-results:start -->`` and ``<!-- uci-results:end -->`` of every
``--page`` (README.md and docs/guides/uci-benchmark.md by default), and the
calibration table (coverage at every level, the KL weights and noise factors
chosen) between ``<!-- uci-calibration:start -->`` and ``<!-- uci-calibration:end -->``
of the pages that have those markers.
``--render-only`` rewrites the table from the saved summaries without training.
``--verify-split K`` reruns the saved split K of each data set and fails when
today's code gives other scores (a resumed run mixes splits of the code that ran
each; training is chaotic enough that a change in floating-point rounding moves
a split's scores).
Progress: one line (or a bar, on a terminal) per split to train, and, in one
process, the runner's training progress; ``--quiet`` turns both off.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import pathlib
import shlex
import sys

import torch

from fblitz._argtypes import integer
from fblitz._task_progress import TaskProgress
from fblitz.errors import FblitzValueError
from fblitz.experiments import uci
from fblitz.experiments.uci_jobs import (
    data_arguments,
    run_and_save,
    run_in_processes,
    run_runner,
    split_path,
    write_atomically,
)
from fblitz.experiments.uci_table import render_table, update_page

DATASETS = ("boston", "concrete", "energy", "yacht", "wine-quality-red")
DEFAULT_PAGES = ("README.md", "docs/guides/uci-benchmark.md")


def _config_of(extra: list[str]) -> dict:
    """The configuration the runner uses with ``extra`` arguments (its defaults may have changed since a saved run)."""
    return json.loads(json.dumps(uci.config_from_args(uci.parse_args(extra))._asdict()))


def _matches(saved: dict, extra: list[str], config: dict) -> bool:
    """A saved split counts when it ran with the same extra arguments and configuration (wherever the data were)."""
    return saved.get("runner_args") == extra and saved.get("config") == config


def _to_run(name: str, results: pathlib.Path, splits: range, extra: list[str]) -> list[int]:
    """The splits of ``name`` in ``splits`` with no saved result of this configuration."""
    config = _config_of(extra)
    saved = [split_path(results, name, k) for k in splits]
    return [
        k
        for k, path in zip(splits, saved)
        if not (path.exists() and _matches(json.loads(path.read_text()), extra, config))
    ]


def run_all(
    names: list[str],
    data_root: pathlib.Path,
    results: pathlib.Path,
    splits: range,
    extra: list[str],
    *,
    workers: int = 1,
    quiet: bool = False,
) -> None:
    """Run (or resume) ``splits`` of every data set of ``names``, then save each data set's merged summary.

    With ``workers`` > 1 the missing splits run in that many single-thread
    processes (a line as each finishes; no training progress), else one after
    the other in this process (the runner's training progress unless ``quiet``,
    its JSON summary of each split on stdout).
    """
    jobs = [(name, k) for name in names for k in _to_run(name, results, splits, extra)]
    for name in {name for name, _ in jobs}:
        data_arguments(name, data_root)  # a missing data set stops the run before any split runs
    with TaskProgress(len(jobs), "UCI splits", enabled=not quiet, out=sys.stderr) as tasks:
        if workers > 1 and jobs:
            if not quiet:
                print(f"{len(jobs)} splits to run in {workers} processes", file=sys.stderr, flush=True)

            def finished(name: str, k: int, scores: dict) -> None:
                tasks.write(f"{name} split {k}: {scores}")
                tasks.done()

            run_in_processes(jobs, data_root, results, extra, workers, finished)
        else:
            previous = None
            for name, k in jobs:
                if name != previous:
                    # torch.compile keeps every shape it compiled the training step for; a fresh cache per data
                    # set stays under its recompile limit (past it, steps silently run eagerly, ~5x slower)
                    torch._dynamo.reset()
                    previous = name
                tasks.start(f"{name} split {k}")
                scores = run_and_save(name, data_root, results, k, extra, quiet=not tasks.enabled)
                tasks.write(f"{name} split {k}: {scores}")
                tasks.done()
    for name in names:
        write_atomically(results / f"{name}.json", json.dumps(merge_dataset(name, results, extra), indent=1))


def merge_dataset(name: str, results: pathlib.Path, extra: list[str]) -> dict:
    """Combine the saved splits of ``name`` run with ``extra`` arguments into one summary like ``uci.main``'s."""
    parts = [json.loads(path.read_text()) for path in sorted((results / "splits" / name).glob("split_*.json"))]
    config = _config_of(extra)
    parts = [part for part in parts if _matches(part, extra, config)]
    if not parts:
        raise FblitzValueError(f"no split of {name} under {results / 'splits' / name} was run with {extra}")
    per_split = [part["per_split"][0] for part in parts]
    names = tuple(per_split[0])
    observed = [part["calibration"]["observed"] for part in parts]
    return {
        "dataset": parts[0]["dataset"],
        "n_rows": parts[0]["n_rows"],
        "n_features": parts[0]["n_features"],
        "n_splits": len(parts),
        "splits": [part["first_split"] for part in parts],
        "split_source": parts[0]["split_source"],
        "evaluated_on": parts[0]["evaluated_on"],
        "config": parts[0]["config"],
        "runner_args": extra,
        "seconds": sum(part["seconds"] for part in parts),
        **uci.summarize(per_split, names),
        "per_split": per_split,
        "calibration": {
            "nominal": parts[0]["calibration"]["nominal"],
            "observed": [sum(column) / len(column) for column in zip(*observed)],
        },
    }


IGNORED_IN_VERIFY = ("train_seconds",)  # wall-clock time, not a result


def differences(saved: dict, now: dict, *, rtol: float = 1e-9) -> list[str]:
    """The scores of one split that differ between a saved run and a new one, as ``"metric saved -> now"``."""
    changed = []
    for metric in sorted(set(saved) | set(now)):
        before, after = saved.get(metric), now.get(metric)
        if metric in IGNORED_IN_VERIFY:
            continue
        if before is None or after is None or not math.isclose(before, after, rel_tol=rtol, abs_tol=rtol):
            changed.append(f"{metric} {before!r} -> {after!r}")
    return changed


def verify_split(name: str, data_root: pathlib.Path, results: pathlib.Path, k: int, extra: list[str]) -> list[str]:
    """Rerun the saved split ``k`` of ``name`` with this code; the scores that differ from the saved ones.

    Raises:
        FblitzValueError: no split ``k`` of ``name`` is saved under ``results``,
            or it was run with other runner arguments or defaults.
    """
    path = split_path(results, name, k)
    if not path.exists():
        raise FblitzValueError(f"--verify-split {k}: no saved split of {name} at {path}")
    saved = json.loads(path.read_text())
    if not _matches(saved, extra, _config_of(extra)):
        raise FblitzValueError(
            f"--verify-split {k}: {path} was run with other runner arguments or defaults "
            f"(runner_args {saved.get('runner_args')}, now {extra}); there is nothing to compare"
        )
    with contextlib.redirect_stdout(io.StringIO()):  # the runner's JSON; the comparison is the output
        summary = run_runner(name, data_root, k, extra)
    return differences(saved["per_split"][0], summary["per_split"][0])


def verify(
    names: list[str], data_root: pathlib.Path, results: pathlib.Path, k: int, extra: list[str], *, quiet: bool = False
) -> str:
    """Rerun saved split ``k`` of every data set of ``names``; a line per data set, an error when any differs.

    Unless ``quiet``, a line on stderr names each split as its rerun starts.
    """
    lines, failed = [], []
    for name in names:
        if not quiet:
            print(f"{name} split {k}: running it again to compare", file=sys.stderr, flush=True)
        torch._dynamo.reset()
        changed = verify_split(name, data_root, results, k, extra)
        lines.append(f"{name} split {k}: " + ("differs: " + "; ".join(changed) if changed else "reproduced"))
        print(lines[-1], flush=True)
        if changed:
            failed.append(name)
    if failed:
        raise FblitzValueError(
            f"--verify-split {k}: this code gives other scores than the saved splits of {failed}; "
            f"delete their split files under {results / 'splits'} and run again for a table of one code version"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="../shared/data/uci", help="folder holding the four benchmark folders")
    parser.add_argument("--results", default="benchmarks/uci", help="folder of the saved splits and summaries")
    parser.add_argument("--page", action="append", help=f"markdown page(s) to update (default: {DEFAULT_PAGES})")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset to run")
    parser.add_argument("--n-splits", type=integer(1), default=20, help="splits per data set")
    parser.add_argument("--first-split", type=integer(0), default=0, help="run splits first .. first + n - 1 only")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--render-only", action="store_true", help="rewrite the table from the saved summaries")
    mode.add_argument(
        "--verify-split",
        type=integer(0),
        metavar="K",
        help="rerun saved split K of each data set and fail when this code gives other scores",
    )
    parser.add_argument(
        "--workers", type=integer(1), default=1, help="run the splits in this many single-thread processes"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display on stderr")
    parser.add_argument(
        "--runner-args", default="", help="extra arguments for every run of the runner, e.g. '--epochs 500'"
    )
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    names = [name.strip() for name in args.datasets.split(",")]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise FblitzValueError(f"--datasets must name some of {DATASETS}, got {unknown}")
    first, count = args.first_split, args.n_splits
    results = pathlib.Path(args.results)
    if args.verify_split is not None:
        extra = shlex.split(args.runner_args)
        return verify(names, pathlib.Path(args.data_root), results, args.verify_split, extra, quiet=args.quiet)
    if not args.render_only:
        splits = range(first, first + count)
        extra = shlex.split(args.runner_args)
        run_all(names, pathlib.Path(args.data_root), results, splits, extra, workers=args.workers, quiet=args.quiet)
    summaries = {}
    for name in DATASETS:
        path = results / f"{name}.json"
        if path.exists():
            summaries[name] = json.loads(path.read_text())
    table = render_table(summaries)
    for page in args.page or DEFAULT_PAGES:
        page = pathlib.Path(page)
        page.write_text(update_page(page.read_text(), summaries, page))
    print(table)
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
