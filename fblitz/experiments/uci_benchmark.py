"""Run the UCI runner on the five benchmark data sets and write one results table beside the published rows.

``python -m fblitz.experiments.uci_benchmark --data-root ../shared/data/uci``
runs :mod:`fblitz.experiments.uci` with its defaults (the recommended recipe) on
Boston (built in) and on the ``concrete``, ``energy``, ``yacht`` and
``wine-quality-red`` benchmark directories under ``--data-root``, one split at a
time. Each finished split is saved as JSON under ``--results`` (so an
interrupted run resumes where it stopped, and two processes can share a run
with ``--first-split``/``--n-splits``); each data set's summary goes to
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
Progress: one line (or a bar, on a terminal) per split to train, and the
runner's training progress; ``--quiet`` turns both off.
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
from fblitz.experiments.uci_table import render_table, update_page

DATASETS = ("boston", "concrete", "energy", "yacht", "wine-quality-red")
DEFAULT_PAGES = ("README.md", "docs/guides/uci-benchmark.md")


def _data_arguments(name: str, data_root: pathlib.Path) -> list[str]:
    if name == "boston":
        return ["--dataset", "boston"]
    directory = data_root / name
    if not directory.is_dir():
        raise FblitzValueError(f"--data-root {data_root} has no {name}/ directory (data.txt, index_*.txt)")
    return ["--data", str(directory)]


def _split_path(results: pathlib.Path, name: str, k: int) -> pathlib.Path:
    return results / "splits" / name / f"split_{k:02d}.json"


def _run_arguments(name: str, data_root: pathlib.Path, extra: list[str]) -> list[str]:
    """The runner's arguments for every split of ``name`` (the split number is added per split)."""
    return [*_data_arguments(name, data_root), "--n-splits", "1", "--json", *extra]


def _config_of(extra: list[str]) -> dict:
    """The configuration the runner uses with ``extra`` arguments (its defaults may have changed since a saved run)."""
    return json.loads(json.dumps(uci.config_from_args(uci.parse_args(extra))._asdict()))


def _matches(saved: dict, extra: list[str], config: dict) -> bool:
    """A saved split counts when it ran with the same extra arguments and configuration (wherever the data were)."""
    return saved.get("runner_args") == extra and saved.get("config") == config


def _write_atomically(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


def _to_run(name: str, results: pathlib.Path, splits: range, extra: list[str]) -> list[int]:
    """The splits of ``name`` in ``splits`` with no saved result of this configuration."""
    config = _config_of(extra)
    saved = [_split_path(results, name, k) for k in splits]
    return [
        k
        for k, path in zip(splits, saved)
        if not (path.exists() and _matches(json.loads(path.read_text()), extra, config))
    ]


def run_dataset(
    name: str,
    data_root: pathlib.Path,
    results: pathlib.Path,
    splits: range,
    extra: list[str],
    tasks: TaskProgress | None = None,
) -> None:
    """Run (or resume) splits ``splits`` of data set ``name``, one JSON file per split.

    ``tasks`` names each split as it starts and counts it when done (its
    display off: the runner's training progress is off too).
    """
    tasks = TaskProgress(len(splits), "UCI splits", enabled=False) if tasks is None else tasks
    arguments = [*_run_arguments(name, data_root, extra), *([] if tasks.enabled else ["--quiet"])]
    for k in _to_run(name, results, splits, extra):
        tasks.start(f"{name} split {k}")
        summary = uci.main([*arguments, "--first-split", str(k)])
        _write_atomically(_split_path(results, name, k), json.dumps({"runner_args": extra, **summary}, indent=1))
        tasks.write(f"{name} split {k}: {summary['per_split'][0]}")
        tasks.done()


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
    path = _split_path(results, name, k)
    if not path.exists():
        raise FblitzValueError(f"--verify-split {k}: no saved split of {name} at {path}")
    saved = json.loads(path.read_text())
    if not _matches(saved, extra, _config_of(extra)):
        raise FblitzValueError(
            f"--verify-split {k}: {path} was run with other runner arguments or defaults "
            f"(runner_args {saved.get('runner_args')}, now {extra}); there is nothing to compare"
        )
    with contextlib.redirect_stdout(io.StringIO()):  # the runner's JSON; the comparison is the output
        summary = uci.main([*_run_arguments(name, data_root, extra), "--quiet", "--first-split", str(k)])
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
        data_root = pathlib.Path(args.data_root)
        extra = shlex.split(args.runner_args)
        splits = range(first, first + count)
        total = sum(len(_to_run(name, results, splits, extra)) for name in names)
        with TaskProgress(total, "UCI splits", enabled=not args.quiet, out=sys.stderr) as tasks:
            for name in names:
                # torch.compile keeps every shape it compiled the training step for; a fresh cache per data
                # set stays under its recompile limit (past it, steps silently run eagerly, ~5x slower)
                torch._dynamo.reset()
                run_dataset(name, data_root, results, splits, extra, tasks)
                summary = merge_dataset(name, results, extra)
                _write_atomically(results / f"{name}.json", json.dumps(summary, indent=1))
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
