"""Regression tables from disk: the UCI benchmark's directory layout, or one CSV/whitespace table.

Nothing here touches the network: every path is given by the caller.

* A **benchmark directory** (Hernandez-Lobato & Adams 2015) holds ``data.txt``
  (whitespace-separated numeric rows), ``index_features.txt`` (0-based feature
  columns, one per line) and ``index_target.txt`` (the target column).
* A **table** is a text file with one row per line, cells separated by commas
  (when the first line holds one) or by whitespace, optionally with a header
  line of column names. The target column is chosen by 0-based index (negative
  counts from the end) or header name; the features are every other column
  unless chosen too.

Blank lines are skipped; every other line must have as many cells as the
first. A malformed table raises :class:`~fblitz.errors.FblitzValueError`
naming the file, its line (1-based, as an editor shows it) and the column.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
    >>> _ = path.write_text("x1,x2,y\\n1,2,3\\n4,5,6\\n7,8,10\\n")
    >>> table = read_table(path, target_column="y")
    >>> table.features.shape, table.target.tolist(), table.feature_names
    (torch.Size([3, 2]), [[3.0], [6.0], [10.0]], ('x1', 'x2'))
"""

from __future__ import annotations

import csv
import math
import pathlib
from collections.abc import Sequence
from typing import NamedTuple

import torch

from fblitz.errors import FblitzValueError

BENCHMARK_FILES = ("data.txt", "index_features.txt", "index_target.txt")


class Table(NamedTuple):
    """A regression data set: float64 ``features`` (N, D) and ``target`` (N, 1), with names."""

    name: str
    features: torch.Tensor
    target: torch.Tensor
    feature_names: tuple[str, ...]
    target_name: str


def _lines(path: pathlib.Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise FblitzValueError(f"{path} is not a file")
    text = path.read_text(encoding="utf-8-sig")
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line]
    if not lines:
        raise FblitzValueError(f"{path} holds no data (every line is blank)")
    return lines


def _split_cells(path: pathlib.Path, lines: list[tuple[int, str]]) -> list[tuple[int, list[str]]]:
    comma = "," in lines[0][1]
    if comma:
        rows = csv.reader([line for _, line in lines], skipinitialspace=True)
        return [(number, [cell.strip() for cell in cells]) for (number, _), cells in zip(lines, rows)]
    return [(number, line.split()) for number, line in lines]


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _column_label(names: Sequence[str] | None, column: int) -> str:
    return f"column {column}" + (f" ({names[column]!r})" if names else "")


def _parse(path: pathlib.Path) -> tuple[torch.Tensor, tuple[str, ...] | None]:
    """All cells of ``path`` as a float64 (N, C) tensor, and the header names if it has a header."""
    rows = _split_cells(path, _lines(path))
    names = None
    first_number, first_cells = rows[0]
    if all(_number(cell) is None for cell in first_cells):
        names, rows = tuple(first_cells), rows[1:]
        if not rows:
            raise FblitzValueError(f"{path} has a header line but no data rows")
    width = len(first_cells)
    values = []
    for number, cells in rows:
        if len(cells) != width:
            raise FblitzValueError(
                f"{path}, line {number}: expected {width} cells (as on line {first_number}), got {len(cells)}"
            )
        row = []
        for column, cell in enumerate(cells):
            value = _number(cell)
            if value is None:
                problem = "is empty" if not cell else f"{cell!r} is not a number"
                raise FblitzValueError(f"{path}, line {number}, {_column_label(names, column)}: {problem}")
            if not math.isfinite(value):
                raise FblitzValueError(
                    f"{path}, line {number}, {_column_label(names, column)}: {cell!r} is not a finite number "
                    "(missing values are not supported: drop or impute the row first)"
                )
            row.append(value)
        values.append(row)
    return torch.tensor(values, dtype=torch.float64), names


def _column_index(path: pathlib.Path, spec: int | str, names: tuple[str, ...] | None, width: int, what: str) -> int:
    if isinstance(spec, str) and _number(spec) is None:
        if names is None:
            raise FblitzValueError(f"{what} {spec!r} is a name, but {path} has no header line: give a 0-based index")
        if names.count(spec) != 1:
            found = "is not" if spec not in names else "appears more than once"
            raise FblitzValueError(f"{what} {spec!r} {found} in the header of {path}: {list(names)}")
        return names.index(spec)
    number = _number(str(spec))
    if number is None or number != int(number):
        raise FblitzValueError(f"{what} must be a column name or a whole-number index, got {spec!r}")
    index = int(number)
    if not -width <= index < width:
        raise FblitzValueError(f"{what} {index} is out of range: {path} has {width} columns (0..{width - 1})")
    return index % width


def _select(
    path: pathlib.Path,
    values: torch.Tensor,
    names: tuple[str, ...] | None,
    target_column: int | str,
    feature_columns: Sequence[int | str] | None,
) -> Table:
    width = values.shape[1]
    target = _column_index(path, target_column, names, width, "the target column")
    if feature_columns is None:
        features = [c for c in range(width) if c != target]
    else:
        features = [_column_index(path, spec, names, width, "feature column") for spec in feature_columns]
        if len(set(features)) != len(features):
            raise FblitzValueError(f"the feature columns of {path} list a column twice: {features}")
        if target in features:
            raise FblitzValueError(f"column {target} of {path} is both the target and a feature")
    if not features:
        raise FblitzValueError(f"{path} leaves no feature column besides the target column {target}")
    if values.shape[0] < 2:
        raise FblitzValueError(f"{path} must hold at least 2 data rows to split, got {values.shape[0]}")
    column = values[:, target]
    if bool((column == column[0]).all()):
        raise FblitzValueError(
            f"the target {_column_label(names, target)} of {path} is constant ({float(column[0])} on every row): "
            "there is nothing to regress"
        )
    label = (lambda c: names[c]) if names else (lambda c: f"column {c}")
    return Table(
        path.stem if path.name != "data.txt" else path.parent.name,
        values[:, features],
        column.reshape(-1, 1),
        tuple(label(c) for c in features),
        label(target),
    )


def read_table(
    path: str | pathlib.Path,
    *,
    target_column: int | str,
    feature_columns: Sequence[int | str] | None = None,
) -> Table:
    """Read a CSV or whitespace-separated table of numbers.

    Args:
        path: the file; comma-separated when its first line holds a comma,
            whitespace-separated otherwise. A first line without any number is
            the header of column names.
        target_column: 0-based index (negative counts from the end) or header name.
        feature_columns: indices or names of the features, in this order;
            default every column except the target.

    Returns:
        A :class:`Table` named after the file's stem.

    Raises:
        FblitzValueError: naming the file, line and column, for a missing or
            empty file, a row with a different number of cells than the first
            (ragged), a non-numeric, NaN or infinite cell, an unknown or
            repeated column, or a constant target.
    """
    path = pathlib.Path(path)
    values, names = _parse(path)
    return _select(path, values, names, target_column, feature_columns)


def _read_columns(path: pathlib.Path) -> list[int]:
    columns = []
    for number, line in _lines(path):
        for cell in line.split():
            value = _number(cell)
            if value is None or value != int(value) or value < 0:
                raise FblitzValueError(f"{path}, line {number}: {cell!r} is not a 0-based column index")
            columns.append(int(value))
    return columns


def read_benchmark_directory(directory: str | pathlib.Path) -> Table:
    """Read a UCI benchmark directory (``data.txt``, ``index_features.txt``, ``index_target.txt``).

    Returns:
        A :class:`Table` named after the directory, columns named ``column K``.

    Raises:
        FblitzValueError: a missing file, a malformed ``data.txt`` (see
            :func:`read_table`), index files that are not 0-based column
            indices within the table, or not exactly one target column.
    """
    directory = pathlib.Path(directory)
    missing = [name for name in BENCHMARK_FILES if not (directory / name).is_file()]
    if missing:
        raise FblitzValueError(
            f"{directory} is not a UCI benchmark directory: {', '.join(missing)} missing "
            f"(expected {', '.join(BENCHMARK_FILES)})"
        )
    values, names = _parse(directory / "data.txt")
    if names is not None:
        raise FblitzValueError(f"{directory / 'data.txt'} must hold numbers only, got a first line {list(names)}")
    target = _read_columns(directory / "index_target.txt")
    if len(target) != 1:
        raise FblitzValueError(f"{directory / 'index_target.txt'} must name exactly one column, got {target}")
    features = _read_columns(directory / "index_features.txt")
    width = values.shape[1]
    for name, columns in (("index_features.txt", features), ("index_target.txt", target)):
        if max(columns) >= width:
            raise FblitzValueError(f"{directory / name} names column {max(columns)}, but data.txt has {width} columns")
    return _select(directory / "data.txt", values, None, target[0], features)


def load_table(
    path: str | pathlib.Path,
    *,
    target_column: int | str | None = None,
    feature_columns: Sequence[int | str] | None = None,
) -> Table:
    """A benchmark directory (:func:`read_benchmark_directory`) or one table file (:func:`read_table`).

    ``target_column`` is required for a file and not allowed for a directory
    (its ``index_target.txt`` names the target), likewise ``feature_columns``.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        if target_column is not None or feature_columns is not None:
            raise FblitzValueError(
                f"{path} is a benchmark directory: its index files choose the columns, "
                "so --target-column/--feature-columns are only for a single table file"
            )
        return read_benchmark_directory(path)
    if not path.exists():
        raise FblitzValueError(f"--data {path} does not exist (give a benchmark directory or a table file)")
    if target_column is None:
        raise FblitzValueError(f"{path} is a table file: give its target column (--target-column NAME_OR_INDEX)")
    return read_table(path, target_column=target_column, feature_columns=feature_columns)
