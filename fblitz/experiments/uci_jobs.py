"""One split of the UCI benchmark, run and saved: in this process, or many in a pool of processes.

A split of data set ``name`` is one call of the runner (:func:`fblitz.experiments.uci.main`
with ``--n-splits 1 --first-split K``), saved as JSON at
``RESULTS/splits/<name>/split_KK.json`` with the extra runner arguments it ran with.
The benchmark (:mod:`fblitz.experiments.uci_benchmark`) runs the missing splits
one after the other, or with ``--workers N`` in N single-thread processes: a split
gives the same scores in either (its keys depend on the split number only).
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import pathlib
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

import torch

from fblitz.errors import FblitzValueError
from fblitz.experiments import uci


def data_arguments(name: str, data_root: pathlib.Path) -> list[str]:
    """The runner's data arguments for benchmark data set ``name`` (Boston is built in)."""
    if name == "boston":
        return ["--dataset", "boston"]
    directory = data_root / name
    if not directory.is_dir():
        raise FblitzValueError(f"--data-root {data_root} has no {name}/ directory (data.txt, index_*.txt)")
    return ["--data", str(directory)]


def split_path(results: pathlib.Path, name: str, k: int) -> pathlib.Path:
    """Where split ``k`` of ``name`` is saved."""
    return results / "splits" / name / f"split_{k:02d}.json"


def run_arguments(name: str, data_root: pathlib.Path, extra: list[str]) -> list[str]:
    """The runner's arguments for every split of ``name`` (the split number is added per split)."""
    return [*data_arguments(name, data_root), "--n-splits", "1", "--json", *extra]


def write_atomically(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so that a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


def run_runner(name: str, data_root: pathlib.Path, k: int, extra: list[str], *, quiet: bool = True) -> dict:
    """The runner's summary of split ``k`` of ``name`` (its JSON also on stdout; its training progress on
    stderr unless ``quiet``)."""
    return uci.main([*run_arguments(name, data_root, extra), *(["--quiet"] if quiet else []), "--first-split", str(k)])


def run_and_save(
    name: str, data_root: pathlib.Path, results: pathlib.Path, k: int, extra: list[str], *, quiet: bool = True
) -> dict:
    """Run split ``k`` of ``name`` with the runner (:func:`run_runner`) and save it; its scores (``per_split[0]``)."""
    summary = run_runner(name, data_root, k, extra, quiet=quiet)
    write_atomically(split_path(results, name, k), json.dumps({"runner_args": extra, **summary}, indent=1))
    return summary["per_split"][0]


_compiled_for: str | None = None  # the data set this worker process last compiled training steps for


def _worker_split(name: str, data_root: pathlib.Path, results: pathlib.Path, k: int, extra: list[str]) -> dict:
    global _compiled_for
    if _compiled_for != name:
        torch._dynamo.reset()  # a fresh compile cache per data set, as the benchmark does in one process
        _compiled_for = name
    with contextlib.redirect_stdout(io.StringIO()):  # the runner's JSON is saved, not printed
        return run_and_save(name, data_root, results, k, extra)


def run_in_processes(
    jobs: list[tuple[str, int]],
    data_root: pathlib.Path,
    results: pathlib.Path,
    extra: list[str],
    workers: int,
    finished: Callable[[str, int, dict], None],
) -> None:
    """Run and save the splits ``jobs`` (``(name, k)`` pairs) in ``workers`` fresh processes.

    ``finished(name, k, scores)`` is called in this process as each split is saved.
    The first split that fails cancels the ones not started and raises its error here.
    """
    context = multiprocessing.get_context("spawn")  # no forked copy of this process's torch state
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(_worker_split, name, data_root, results, k, extra): (name, k) for name, k in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                name, k = pending.pop(future)
                if future.exception() is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise future.exception()
                finished(name, k, future.result())
