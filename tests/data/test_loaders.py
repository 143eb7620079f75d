"""Tests for the user-data loaders: round trips and one-line errors with positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ebmlab.data import load_array, load_tensor, validate_array
from ebmlab.errors import DataError


def data_error(path: Path, *parts: str, **kwargs: object) -> str:
    """Load ``path``, expect a one-line DataError naming the file and ``parts``."""
    with pytest.raises(DataError) as info:
        load_array(path, **kwargs)  # type: ignore[arg-type]
    msg = str(info.value)
    print(msg)
    assert "\n" not in msg
    assert path.name in msg
    for part in parts:
        assert part in msg
    return msg


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- good files ---------------------------------------------------------------------------


def test_npy_round_trip(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    np.save(tmp_path / "a.npy", x)
    y = load_array(tmp_path / "a.npy", dtype=np.float64)
    np.testing.assert_array_equal(y, x)
    assert load_array(str(tmp_path / "a.npy"), dim=3).dtype == np.float32


def test_npy_1d_becomes_column(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.array([1.0, 2.0, 3.0]))
    y = load_array(tmp_path / "a.npy")
    assert y.shape == (3, 1)
    np.testing.assert_array_equal(y[:, 0], [1, 2, 3])


def test_npy_integer_and_bool_are_converted(tmp_path: Path) -> None:
    np.save(tmp_path / "i.npy", np.array([[1, 2], [3, 4]], dtype=np.int64))
    np.save(tmp_path / "b.npy", np.array([[True, False]]))
    np.testing.assert_array_equal(load_array(tmp_path / "i.npy"), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(load_array(tmp_path / "b.npy"), [[1, 0]])


def test_npz_round_trip_and_key_choice(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(5, 2))
    np.savez(tmp_path / "single.npz", whatever=x)
    np.savez(tmp_path / "keyed.npz", x=x, y=np.zeros(5))
    np.savez(tmp_path / "data.npz", data=x, labels=np.zeros(5))
    for name in ("single.npz", "keyed.npz", "data.npz"):
        np.testing.assert_array_equal(load_array(tmp_path / name, dtype=np.float64), x)


def test_csv_round_trip_with_header_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "x, y\n1.5, -2\n\n3e-1,4\n   \n")
    y = load_array(path, dtype=np.float64)
    np.testing.assert_array_equal(y, [[1.5, -2.0], [0.3, 4.0]])
    write(tmp_path / "b.csv", "\ufeffx\n1\n2\n")  # BOM, one column
    assert load_array(tmp_path / "b.csv").shape == (2, 1)


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    assert load_array(write(tmp_path / "A.CSV", "1,2\n")).shape == (1, 2)


def test_load_tensor(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "1,2\n3,4\n")
    t = load_tensor(tmp_path / "a.csv", dim=2)
    assert isinstance(t, torch.Tensor)
    assert t.dtype == torch.float32 and t.shape == (2, 2)
    t64 = load_tensor(tmp_path / "a.csv", dtype=torch.float64, device="cpu")
    assert t64.dtype == torch.float64
    with pytest.raises(ValueError, match="dtype"):
        load_tensor(tmp_path / "a.csv", dtype=torch.int64)


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 20), st.integers(1, 5)),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    ),
    header=st.booleans(),
)
def test_csv_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, x: np.ndarray, header: bool
) -> None:
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    lines = [",".join(f"f{j}" for j in range(x.shape[1]))] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in x]
    write(path, "\n".join(lines) + "\n")
    y = load_array(path, dtype=np.float64, dim=x.shape[1])
    np.testing.assert_array_equal(y, x)


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int32]),
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6),
        elements={"allow_nan": False, "allow_infinity": False},
    )
)
def test_validate_array_accepts_finite_numeric(x: np.ndarray) -> None:
    y = validate_array(x, name="X")
    assert y.ndim == 2 and y.shape[0] == x.shape[0]
    assert y.dtype.kind == "f"
    np.testing.assert_array_equal(y.ravel(), x.ravel())


# --- failures, each naming the file and the position --------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    data_error(tmp_path / "nope.csv", "not found")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    data_error(tmp_path / "dir.csv", "directory")


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    data_error(write(tmp_path / "a.txt", "1,2\n"), "'.txt'", ".csv", ".npy", ".npz")
    data_error(write(tmp_path / "noext", "1,2\n"), "(none)")


@pytest.mark.parametrize("ext", [".csv", ".npy", ".npz"])
def test_empty_file(tmp_path: Path, ext: str) -> None:
    data_error(write(tmp_path / f"empty{ext}", ""), "empty")


def test_zero_rows(tmp_path: Path) -> None:
    data_error(write(tmp_path / "h.csv", "a,b\n"), "no data rows", "header")
    data_error(write(tmp_path / "blank.csv", "\n  \n"), "no data rows")
    np.save(tmp_path / "z.npy", np.zeros((0, 3)))
    data_error(tmp_path / "z.npy", "no rows", "(0, 3)")
    np.save(tmp_path / "c.npy", np.zeros((3, 0)))
    data_error(tmp_path / "c.npy", "no columns")
    np.savez(tmp_path / "none.npz")
    data_error(tmp_path / "none.npz", "no arrays")


def test_csv_ragged(tmp_path: Path) -> None:
    data_error(write(tmp_path / "r.csv", "1,2\n3,4\n5\n"), "line 3", "1 column", "expected 2")
    data_error(write(tmp_path / "r2.csv", "a,b,c\n1,2\n"), "line 2", "expected 3", "line 1")


def test_csv_non_numeric(tmp_path: Path) -> None:
    data_error(write(tmp_path / "n.csv", "1,2\n3,abc\n"), "line 2", "column 2", "'abc'")
    # With a header the header is line 1, so the third physical line is line 3.
    data_error(write(tmp_path / "h.csv", "x,y\n1,2\noops,4\n"), "line 3", "column 1", "'oops'")
    # A mixed first line is data, not a header.
    data_error(write(tmp_path / "m.csv", "x,1\n2,3\n"), "line 1", "column 1", "'x'")
    data_error(write(tmp_path / "e.csv", "1,2\n3,\n"), "empty cell", "line 2", "column 2")
    msg = data_error(write(tmp_path / "s.csv", "1;2\n3;4\n"), "line 2", "column 1")
    assert "comma-separated" in msg


def test_csv_blank_lines_keep_physical_numbers(tmp_path: Path) -> None:
    data_error(write(tmp_path / "b.csv", "1,2\n\n\n3,x\n"), "line 4", "column 2")


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", "NaN"])
def test_csv_non_finite(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path / "f.csv", f"x,y\n1,2\n3,4\n5,{bad}\n")
    data_error(path, "non-finite", "line 4", "column 2")


def test_csv_overflow_in_float32(tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", "1,2\n1e300,4\n")
    data_error(path, "overflows float32", "line 2", "column 1")
    assert load_array(path, dtype=np.float64)[1, 0] == 1e300


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(b"1,2\n\xff\xfe,3\n")
    data_error(path, "UTF-8")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npy_non_finite(tmp_path: Path, bad: float) -> None:
    x = np.ones((4, 3))
    x[2, 1] = bad
    np.save(tmp_path / "f.npy", x)
    data_error(tmp_path / "f.npy", "non-finite", "row 3", "column 2")
    np.savez(tmp_path / "f.npz", x=x, y=np.ones(2))
    data_error(tmp_path / "f.npz", "non-finite", "row 3", "column 2", "'x'")


def test_wrong_dim(tmp_path: Path) -> None:
    data_error(write(tmp_path / "d.csv", "1,2\n"), "expected 3 columns", "got 2", dim=3)
    np.save(tmp_path / "d.npy", np.ones(4))
    data_error(tmp_path / "d.npy", "expected 2 columns", "got 1", dim=2)


def test_not_1d_or_2d(tmp_path: Path) -> None:
    np.save(tmp_path / "3d.npy", np.ones((2, 3, 4)))
    data_error(tmp_path / "3d.npy", "(2, 3, 4)", "1-D", "2-D")
    np.save(tmp_path / "0d.npy", np.float64(1.0))
    data_error(tmp_path / "0d.npy", "shape ()")


def test_object_array_refused_without_unpickling(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([[1.0, "a"]], dtype=object), allow_pickle=True)
    data_error(tmp_path / "o.npy", "object array")
    np.savez(tmp_path / "o.npz", x=np.array([1, None], dtype=object))
    data_error(tmp_path / "o.npz", "object array", "'x'")


def test_complex_and_text_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "c.npy", np.ones((2, 2), dtype=complex))
    data_error(tmp_path / "c.npy", "complex", "complex128")
    np.save(tmp_path / "t.npy", np.array([["a", "b"]]))
    data_error(tmp_path / "t.npy", "text array")


def test_npz_ambiguous_keys_listed(tmp_path: Path) -> None:
    np.savez(tmp_path / "k.npz", a=np.ones(2), b=np.ones(2))
    data_error(tmp_path / "k.npz", "2 arrays", "a, b", "'x'", "'data'")


def test_corrupt_and_mislabelled_binary_files(tmp_path: Path) -> None:
    data_error(write(tmp_path / "text.npy", "1,2\n3,4\n"), "not a .npy file")
    data_error(write(tmp_path / "text.npz", "1,2\n3,4\n"), "not a .npz file")
    np.savez(tmp_path / "arch.npz", x=np.ones(2))
    (tmp_path / "arch.npy").write_bytes((tmp_path / "arch.npz").read_bytes())
    data_error(tmp_path / "arch.npy", ".npz archive")
    np.save(tmp_path / "arr.npy", np.ones(2))
    (tmp_path / "arr.npz").write_bytes((tmp_path / "arr.npy").read_bytes())
    data_error(tmp_path / "arr.npz", ".npy array")
    np.save(tmp_path / "trunc.npy", np.ones((100, 3)))
    raw = (tmp_path / "trunc.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(raw[: len(raw) // 2])
    data_error(tmp_path / "trunc.npy", "not a valid .npy file")


def test_bad_arguments(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "1,2\n")
    with pytest.raises(ValueError, match="dtype"):
        load_array(path, dtype=np.int64)
    with pytest.raises(ValueError, match="dim"):
        load_array(path, dim=0)


# --- validate_array -----------------------------------------------------------------------


def test_validate_array_in_memory() -> None:
    x = np.ones((3, 2), dtype=np.float32)
    assert validate_array(x, name="X") is x
    assert validate_array([1, 2, 3], name="X").shape == (3, 1)
    assert validate_array(np.ones((2, 2), dtype=np.int8), name="X").dtype == np.float64
    bad = np.ones((3, 2))
    bad[1, 0] = np.nan
    with pytest.raises(DataError, match=r"^train: non-finite value nan at row 2, column 1$"):
        validate_array(bad, name="train")
    with pytest.raises(DataError, match="expected 3 columns"):
        validate_array(x, name="X", dim=3)
    with pytest.raises(DataError, match="cannot be read as an array"):
        validate_array([[1, 2], [3]], name="X")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="object array"):
        validate_array(np.array([None, 1.0]), name="X")
