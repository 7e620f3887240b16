"""Reading regression tables: the UCI benchmark layout and CSV/whitespace files, with errors naming line and column."""

import os
import pathlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fblitz.errors import FblitzValueError
from fblitz.experiments.tables import load_table, read_benchmark_directory, read_table

# the benchmark's data sit beside the repository on CI machines (../shared/data/uci); FBLITZ_UCI_DATA overrides
SHARED = pathlib.Path(
    os.environ.get("FBLITZ_UCI_DATA", pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci")
)


def write(path, text):
    path.write_text(text)
    return path


def test_csv_with_a_header_selects_columns_by_name_or_index(tmp_path):
    path = write(tmp_path / "houses.csv", 'size,"rooms",price\n50, 2, 100\n\n70,3,150\n90,4,210\n')
    table = read_table(path, target_column="price")
    assert table.name == "houses" and table.feature_names == ("size", "rooms") and table.target_name == "price"
    assert table.features.dtype == torch.float64 and table.features.tolist() == [[50, 2], [70, 3], [90, 4]]
    assert table.target.tolist() == [[100], [150], [210]]
    by_index = read_table(path, target_column=-1, feature_columns=["1", 0])
    assert by_index.feature_names == ("rooms", "size") and by_index.features[:, 0].tolist() == [2, 3, 4]
    assert torch.equal(by_index.target, table.target)


def test_whitespace_table_without_header_names_columns_by_index(tmp_path):
    path = write(tmp_path / "data.txt", "1.0\t2e1  3\n\n4 5 6.5\n  7 8 9\n\n")
    table = read_table(path, target_column=0)
    assert table.feature_names == ("column 1", "column 2") and table.target_name == "column 0"
    assert table.features.tolist() == [[20, 3], [5, 6.5], [8, 9]] and table.target.flatten().tolist() == [1, 4, 7]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,y\n1,2,3\n4,5\n", r"t\.csv, line 3: expected 3 cells \(as on line 1\), got 2"),
        ("a,b,y\n1,2,3\n4,five,6\n", r"t\.csv, line 3, column 1 \('b'\): 'five' is not a number"),
        ("a,b,y\n1,2,3\n4,,6\n", r"line 3, column 1 \('b'\): is empty"),
        ("a,b,y\n1,2,3\n\n4,nan,6\n", r"line 4, column 1 \('b'\): 'nan' is not a finite number \(missing values"),
        ("1,2,3\n4,5,-inf\n", r"line 2, column 2: '-inf' is not a finite number"),
        ("a,b,y\n1,2,3\n4,5,3\n", r"the target column 2 \('y'\) of .*t\.csv is constant \(3\.0 on every row\)"),
        ("a,b,y\n", "has a header line but no data rows"),
        ("\n  \n", "holds no data"),
        ("a,b,y\n1,2,3\n", "at least 2 data rows"),
    ],
)
def test_malformed_tables_are_reported_with_file_line_and_column(tmp_path, text, message):
    path = write(tmp_path / "t.csv", text)
    with pytest.raises(FblitzValueError, match=message):
        read_table(path, target_column=-1)


@pytest.mark.parametrize(
    ("target", "features", "message"),
    [
        ("z", None, r"the target column 'z' is not in the header .*\['a', 'b', 'y'\]"),
        (3, None, r"the target column 3 is out of range: .* has 3 columns \(0\.\.2\)"),
        ("y", ["a", "y"], "is both the target and a feature"),
        ("y", ["a", 0], "list a column twice"),
        ("y", ["1.5"], "must be a column name or a whole-number index, got '1.5'"),
    ],
)
def test_bad_column_choices_are_refused(tmp_path, target, features, message):
    path = write(tmp_path / "t.csv", "a,b,y\n1,2,3\n4,5,6\n")
    with pytest.raises(FblitzValueError, match=message):
        read_table(path, target_column=target, feature_columns=features)


def test_names_need_a_header_and_must_be_unique(tmp_path):
    with pytest.raises(FblitzValueError, match="is a name, but .* has no header line"):
        read_table(write(tmp_path / "plain.txt", "1 2\n3 4\n"), target_column="y")
    with pytest.raises(FblitzValueError, match="'a' appears more than once"):
        read_table(write(tmp_path / "twice.csv", "a,a,y\n1,2,3\n4,5,6\n"), target_column="a")
    with pytest.raises(FblitzValueError, match="leaves no feature column"):
        read_table(write(tmp_path / "one.csv", "y\n1\n2\n"), target_column=0)


@settings(max_examples=25, deadline=None)
@given(
    values=arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(2, 5)), elements=st.floats(-1e6, 1e6, width=64)),
    comma=st.booleans(),
)
def test_written_tables_read_back_exactly(tmp_path_factory, values, comma):
    values[:, -1] = np.arange(len(values))  # a non-constant target
    path = tmp_path_factory.mktemp("roundtrip") / "t.txt"
    np.savetxt(path, values, delimiter="," if comma else " ", fmt="%.17g")
    table = read_table(path, target_column=-1)
    assert np.array_equal(table.features.numpy(), values[:, :-1])
    assert np.array_equal(table.target.numpy()[:, 0], values[:, -1])


def write_benchmark(directory, data="1 2 3\n4 5 6\n7 8 10\n\n", features="0\n1\n", target="2\n"):
    directory.mkdir()
    for name, text in (("data.txt", data), ("index_features.txt", features), ("index_target.txt", target)):
        write(directory / name, text)
    return directory


def test_benchmark_directory_uses_its_index_files(tmp_path):
    table = read_benchmark_directory(write_benchmark(tmp_path / "toy", features="1\n"))
    assert (
        table.name == "toy"
        and table.features.tolist() == [[2], [5], [8]]
        and table.target.flatten().tolist() == [3, 6, 10]
    )
    assert load_table(tmp_path / "toy").feature_names == ("column 1",)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"features": "0\n7\n"}, r"index_features\.txt names column 7, but data\.txt has 3 columns"),
        ({"target": "1\n2\n"}, r"index_target\.txt must name exactly one column, got \[1, 2\]"),
        ({"target": "-1\n"}, r"line 1: '-1' is not a 0-based column index"),
        ({"data": "a b c\n1 2 3\n4 5 6\n"}, "must hold numbers only"),
        ({"data": "1 2 3\n4 5\n"}, r"data\.txt, line 2: expected 3 cells"),
    ],
)
def test_bad_benchmark_directories_are_refused(tmp_path, files, message):
    write_benchmark(tmp_path / "bad", **files)
    with pytest.raises(FblitzValueError, match=message):
        read_benchmark_directory(tmp_path / "bad")


def test_load_table_tells_directories_from_files(tmp_path):
    directory = write_benchmark(tmp_path / "toy")
    with pytest.raises(FblitzValueError, match="index files choose the columns"):
        load_table(directory, target_column=0)
    (directory / "index_target.txt").unlink()
    with pytest.raises(FblitzValueError, match=r"not a UCI benchmark directory: index_target\.txt missing"):
        load_table(directory)
    with pytest.raises(FblitzValueError, match="give its target column"):
        load_table(directory / "data.txt")
    with pytest.raises(FblitzValueError, match="does not exist"):
        load_table(tmp_path / "absent.csv", target_column=0)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared UCI data (../shared/data/uci) is not on this machine")
@pytest.mark.parametrize(
    ("name", "shape", "first"),
    [
        ("concrete", (1030, 8), 79.99),
        ("energy", (768, 8), 15.55),
        ("yacht", (308, 6), 0.11),
        ("wine-quality-red", (1599, 11), 5.0),
    ],
)
def test_the_shared_benchmark_directories(name, shape, first):
    table = load_table(SHARED / name)
    assert tuple(table.features.shape) == shape and tuple(table.target.shape) == (shape[0], 1)
    assert table.target[0, 0] == first and bool(torch.isfinite(table.features).all())
