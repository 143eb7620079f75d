"""Load user data files (``.npy``, ``.npz``, ``.csv``) and validate in-memory arrays.

Every loader returns a 2-D floating array ``(N, D)``: one row per data point.
Anything wrong with the data raises :class:`ebmlab.errors.DataError` with one
line naming the file (or array) and, where it applies, the position:

- CSV positions say ``line L, column C``: ``L`` is the physical line of the
  file as an editor numbers it (1-based, header and blank lines included), and
  ``C`` the 1-based field.
- Array positions (``.npy``, ``.npz``, in-memory) say ``row R, column C``:
  the 0-based index plus one.

Pickled data is never loaded (``np.load(..., allow_pickle=False)``): object
arrays are refused with a message, not a traceback.

Bounded memory: :func:`iter_array_chunks` yields a file's rows in chunks (CSV
parsed line by line, ``.npy`` memory-mapped), so a file larger than memory is
processed in constant memory; :func:`load_array` memory-maps a ``.npy`` file
larger than ``mmap_above`` bytes and checks it chunk by chunk instead of reading
a second copy.

Example:
    >>> import numpy as np
    >>> validate_array(np.arange(3), name="x").shape
    (3, 1)
"""

from __future__ import annotations

__all__ = ["MMAP_ABOVE_BYTES", "iter_array_chunks", "load_array", "load_tensor", "validate_array"]

import csv
import os
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from .._types import PathLike
from ..errors import DataError

_EXTENSIONS = (".csv", ".npy", ".npz")
_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float
_KIND_NAMES = {
    "O": "an object array",
    "c": "a complex array",
    "U": "a text array",
    "S": "a bytes array",
    "V": "a structured array",
    "M": "a datetime array",
    "m": "a timedelta array",
}
_NPZ_KEYS = ("x", "data")
# What np.load raises on a malformed file (found by fuzzing): a bad header reaches
# Python's tokenizer, a bad archive zipfile and zlib (unsupported methods, encryption).
_NPLOAD_ERRORS = (
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    tokenize.TokenError,
    SyntaxError,
    NotImplementedError,
    RuntimeError,
    KeyError,
    OverflowError,
)
#: ``.npy`` files larger than this many bytes are memory-mapped by :func:`load_array`.
MMAP_ABOVE_BYTES = 256 * 2**20
#: Rows per chunk of :func:`iter_array_chunks` (and of the streaming commands).
CHUNK_ROWS = 65536
_TORCH_TO_NUMPY = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
}


def _one_line(text: object, limit: int = 200) -> str:
    """``text`` on one line, shortened to ``limit`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _float_dtype(dtype: npt.DTypeLike) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise ValueError(f"dtype must be a floating NumPy dtype, got {dtype!r}") from err
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating NumPy dtype, got {dt}")
    return dt


def _check_dim(dim: int | None) -> None:
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise ValueError(f"dim must be an int >= 1 or None, got {dim!r}")


def _validate(
    x: np.ndarray,
    *,
    name: str,
    dim: int | None,
    dtype: np.dtype | None,
    where: Callable[[int], str],
) -> np.ndarray:
    """Shared checks: numeric, 1-D/2-D, non-empty, ``dim`` columns, finite in ``dtype``.

    ``where(i)`` names row ``i`` (0-based) in messages. ``dtype=None`` keeps
    floating input as is and converts the rest to float64.
    """
    kind = x.dtype.kind
    if kind not in _NUMERIC_KINDS:
        what = _KIND_NAMES.get(kind, "a non-numeric array")
        raise DataError(f"{name}: got {what} (dtype={x.dtype}); expected real numbers")
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    elif x.ndim != 2:
        raise DataError(
            f"{name}: got an array of shape {x.shape}; expected 1-D (N,) or 2-D (N, D)"
        )
    if x.shape[0] == 0:
        raise DataError(f"{name}: has no rows (shape {x.shape})")
    if x.shape[1] == 0:
        raise DataError(f"{name}: has no columns (shape {x.shape})")
    if dim is not None and x.shape[1] != dim:
        raise DataError(f"{name}: expected {_plural(dim, 'column')} (dim={dim}), got {x.shape[1]}")
    target = dtype if dtype is not None else (x.dtype if kind == "f" else np.dtype(np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(target, copy=False)
    bad = ~np.isfinite(y)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        value = x[i, j]
        if kind == "f" and not np.isfinite(value):
            raise DataError(f"{name}: non-finite value {value} at {where(i)}, column {j + 1}")
        raise DataError(f"{name}: value {value} at {where(i)}, column {j + 1} overflows {target}")
    return y


def _row(i: int) -> str:
    return f"row {i + 1}"


def validate_array(x: np.ndarray, *, name: str, dim: int | None = None) -> np.ndarray:
    """Check an in-memory data array and return it as a 2-D floating array.

    Accepts anything :func:`numpy.asarray` turns into a real numeric array. A
    1-D array of length ``N`` is read as ``N`` points of one feature,
    ``(N, 1)``. Floating input keeps its dtype (no copy when already 2-D);
    integer and boolean input becomes float64.

    Arguments:
        x: Data, shape ``(N, D)`` or ``(N,)``.
        name: What to call the array in messages, e.g. ``"X"``.
        dim: Required number of columns ``D``, or None for any.

    Returns:
        The data, shape ``(N, D)``, floating, all finite.

    Raises:
        DataError: Not numeric (object, complex, text), not 1-D/2-D, no rows or
            columns, ``D != dim``, or a NaN/inf (message gives row and column,
            1-based).

    Example:
        >>> import numpy as np
        >>> validate_array(np.ones((4, 2)), name="X", dim=2).shape
        (4, 2)
        >>> validate_array(np.array([[1.0, np.nan]]), name="X")
        Traceback (most recent call last):
        ...
        ebmlab.errors.DataError: X: non-finite value nan at row 1, column 2
    """
    _check_dim(dim)
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as err:
        raise DataError(f"{name}: cannot be read as an array ({_one_line(err)})") from err
    return _validate(arr, name=name, dim=dim, dtype=None, where=_row)


def load_array(
    path: PathLike,
    *,
    dim: int | None = None,
    dtype: npt.DTypeLike = np.float32,
    mmap_above: int | None = MMAP_ABOVE_BYTES,
) -> np.ndarray:
    """Load a data file as a 2-D floating array ``(N, D)``.

    Formats, chosen by extension (case-insensitive):

    - ``.npy``: one array, 1-D (read as ``(N, 1)``) or 2-D.
    - ``.npz``: the only array in the archive, else the one named ``"x"``,
      else the one named ``"data"``.
    - ``.csv``: comma-separated numbers, one point per line. An optional first
      line of non-numeric names (a header) is skipped, and so are blank lines.
      Every line must have the same number of fields.

    Arguments:
        path: File to read.
        dim: Required number of columns ``D``, or None for any.
        dtype: Floating NumPy dtype of the result.
        mmap_above: A ``.npy`` file larger than this many bytes is memory-mapped
            (copy-on-write) and checked in chunks; when it already holds
            ``dtype`` the result is the memory map itself, not a copy. None:
            never.

    Returns:
        The data, shape ``(N, D)``, in ``dtype``, all finite.

    Raises:
        DataError: Missing file, unsupported extension, empty file or no data
            rows, ragged CSV lines, a non-numeric cell, NaN/inf (or a value
            overflowing ``dtype``), ``D != dim``, an array that is not 1-D/2-D,
            an object or complex array, or a corrupt file. One line naming the
            file and, where it applies, line (CSV) or row (arrays) and column.
        ValueError: ``dim`` or ``dtype`` themselves are invalid.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = pathlib.Path(tmp) / "points.csv"
        ...     _ = path.write_text("x,y\\n1.0,2.0\\n3.0,4.0\\n")
        ...     load_array(path).shape
        (2, 2)
    """
    target = _float_dtype(dtype)
    _check_dim(dim)
    label = os.fspath(path)
    p = Path(path)
    if not p.exists():
        raise DataError(f"{label}: file not found")
    if p.is_dir():
        raise DataError(f"{label}: is a directory, expected a {', '.join(_EXTENSIONS)} file")
    ext = p.suffix.lower()
    if ext not in _EXTENSIONS:
        raise DataError(
            f"{label}: unsupported extension {ext or '(none)'!r}; "
            f"supported: {', '.join(_EXTENSIONS)}"
        )
    try:
        if p.stat().st_size == 0:
            raise DataError(f"{label}: file is empty")
        if ext == ".csv":
            return _load_csv(p, label, dim, target)
        if ext == ".npy":
            if mmap_above is not None and p.stat().st_size > mmap_above:
                arr = _open_npy(p, label, mmap=True)
                for _ in _npy_chunks(arr, label, dim, target, CHUNK_ROWS):
                    pass  # checks every chunk (finite, in range)
                if arr.dtype == target and arr.ndim == 2:
                    return arr
                return _validate(arr, name=label, dim=dim, dtype=target, where=_row)
            return _load_npy(p, label, dim, target)
        return _load_npz(p, label, dim, target)
    except OSError as err:
        raise DataError(f"{label}: cannot read file ({_one_line(err)})") from err


def iter_array_chunks(
    path: PathLike,
    *,
    dim: int | None = None,
    dtype: npt.DTypeLike = np.float32,
    chunk_rows: int = CHUNK_ROWS,
    allow_nan: bool = False,
) -> Iterator[np.ndarray]:
    """The rows of a data file in chunks of at most ``chunk_rows``, in file order.

    Checks as :func:`load_array` does (same messages, CSV lines counted across
    chunks), but holds one chunk at a time: CSV is parsed line by line and a
    ``.npy`` file is memory-mapped. An ``.npz`` archive (compressed members
    cannot be mapped) is read whole and then split.

    Arguments:
        path: File to read.
        dim: Required number of columns ``D``, or None for any.
        dtype: Floating NumPy dtype of the chunks.
        chunk_rows: Rows per chunk (>= 1).
        allow_nan: Let NaN through (missing entries, ``ebmlab denoise``);
            infinities are still refused.

    Yields:
        Arrays ``(n, D)`` in ``dtype``, ``1 <= n <= chunk_rows``.

    Raises:
        DataError: As :func:`load_array`, raised when the bad chunk is reached.
    """
    target = _float_dtype(dtype)
    _check_dim(dim)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be an int >= 1, got {chunk_rows!r}")
    label = os.fspath(path)
    p = Path(path)
    ext = p.suffix.lower()
    if not p.is_file() or ext not in (".csv", ".npy") or (p.stat().st_size == 0):
        arr = load_array(p, dim=dim, dtype=target, mmap_above=None)  # raises the usual error
        for i in range(0, arr.shape[0], chunk_rows):
            yield arr[i : i + chunk_rows]
        return
    try:
        if ext == ".csv":
            yield from _csv_chunks(p, label, dim, target, chunk_rows, allow_nan)
        else:
            arr = _open_npy(p, label, mmap=True)
            yield from _npy_chunks(arr, label, dim, target, chunk_rows, allow_nan)
    except OSError as err:
        raise DataError(f"{label}: cannot read file ({_one_line(err)})") from err


def _open_npy(p: Path, label: str, *, mmap: bool) -> np.ndarray:
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="c" if mmap else None)
    except _NPLOAD_ERRORS as err:
        raise _npload_error(label, err, ".npy") from err
    if not isinstance(arr, np.ndarray):  # an .npz archive under a .npy name
        arr.close()
        raise DataError(f"{label}: is an .npz archive, not a .npy array; rename it to .npy")
    return arr


def _npy_chunks(
    arr: np.ndarray,
    label: str,
    dim: int | None,
    dtype: np.dtype,
    chunk_rows: int,
    allow_nan: bool = False,
) -> Iterator[np.ndarray]:
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    n = arr.shape[0] if arr.ndim else 0
    if arr.ndim != 2 or n == 0:  # the usual message
        yield _validate(arr, name=label, dim=dim, dtype=dtype, where=_row)
        return
    for i in range(0, n, chunk_rows):
        block = np.asarray(arr[i : i + chunk_rows])
        where = _offset_rows(i)
        if allow_nan and block.dtype.kind == "f":
            nan = np.isnan(block)
            if nan.any():
                checked = _validate(
                    np.where(nan, 0, block),
                    name=label,
                    dim=dim,
                    dtype=dtype,
                    where=where,
                )
                yield np.where(nan, np.nan, checked).astype(dtype, copy=False)
                continue
        yield _validate(block, name=label, dim=dim, dtype=dtype, where=where)


def _offset_rows(start: int) -> Callable[[int], str]:
    def where(i: int) -> str:
        return _row(start + i)

    return where


def load_tensor(
    path: PathLike,
    *,
    dim: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Load a data file as a tensor ``(N, D)``; see :func:`load_array`.

    Arguments:
        path: File to read (``.npy``, ``.npz`` or ``.csv``).
        dim: Required number of columns ``D``, or None for any.
        dtype: ``torch.float16``, ``torch.float32`` or ``torch.float64``.
        device: Device of the result (CPU when None).

    Returns:
        The data, shape ``(N, D)``.

    Raises:
        DataError: As :func:`load_array`.
    """
    if dtype not in _TORCH_TO_NUMPY:
        valid = ", ".join(str(d) for d in _TORCH_TO_NUMPY)
        raise ValueError(f"dtype must be one of {valid}, got {dtype!r}")
    arr = load_array(path, dim=dim, dtype=_TORCH_TO_NUMPY[dtype])
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t if device is None else t.to(device)


def _npload_error(label: str, err: Exception, what: str) -> DataError:
    msg = str(err)
    if "Object arrays" in msg:
        return DataError(
            f"{label}: got an object array (dtype=object); expected real numbers "
            "(pickled data is never loaded)"
        )
    if "pickle" in msg:  # no .npy/.npz magic: NumPy would fall back to unpickling
        return DataError(f"{label}: not a {what} file (no NumPy header; pickled data is refused)")
    return DataError(f"{label}: not a valid {what} file ({_one_line(msg)})")


def _load_npy(p: Path, label: str, dim: int | None, dtype: np.dtype) -> np.ndarray:
    arr = _open_npy(p, label, mmap=False)
    return _validate(arr, name=label, dim=dim, dtype=dtype, where=_row)


def _load_npz(p: Path, label: str, dim: int | None, dtype: np.dtype) -> np.ndarray:
    try:
        archive = np.load(p, allow_pickle=False)
    except _NPLOAD_ERRORS as err:
        raise _npload_error(label, err, ".npz") from err
    if isinstance(archive, np.ndarray):
        raise DataError(f"{label}: is a .npy array, not an .npz archive; rename it to .npy")
    with archive:
        keys = list(archive.files)
        if not keys:
            raise DataError(f"{label}: archive holds no arrays")
        if len(keys) == 1:
            key = keys[0]
        else:
            found = [k for k in _NPZ_KEYS if k in keys]
            if not found:
                raise DataError(
                    f"{label}: archive holds {len(keys)} arrays ({', '.join(keys)}); "
                    "expected a single array or one named 'x' or 'data'"
                )
            key = found[0]
        name = f"{label} (array {key!r})"
        try:
            arr = archive[key]
        except _NPLOAD_ERRORS as err:
            raise _npload_error(name, err, ".npz") from err
        if not isinstance(arr, np.ndarray):  # a member that is not a .npy array
            raise DataError(f"{name}: not a .npy array inside the archive")
    return _validate(arr, name=name, dim=dim, dtype=dtype, where=_row)


def _parse_cell(cell: str) -> float | None:
    """The number in ``cell``, or None when it is not one."""
    try:
        return float(cell)
    except ValueError:
        return None


def _load_csv(p: Path, label: str, dim: int | None, dtype: np.dtype) -> np.ndarray:
    chunks = list(_csv_chunks(p, label, dim, dtype, 1 << 62))
    return chunks[0]


def _csv_chunks(
    p: Path,
    label: str,
    dim: int | None,
    dtype: np.dtype,
    chunk_rows: int,
    allow_nan: bool = False,
) -> Iterator[np.ndarray]:
    """Checked chunks of a CSV file's rows; positions are physical lines of the file."""
    rows: list[list[float]] = []
    lines: list[int] = []  # physical line of each row, for messages
    width: int | None = None
    width_line = 0
    has_header = False
    n_rows = 0

    def flush() -> np.ndarray:
        arr = np.array(rows, dtype=np.float64)
        at = list(lines)
        nan = np.isnan(arr) if allow_nan else None
        if nan is not None and nan.any():
            arr = np.where(nan, 0.0, arr)
        out = _validate(arr, name=label, dim=dim, dtype=dtype, where=lambda i: f"line {at[i]}")
        if nan is not None and nan.any():
            out = np.where(nan, np.nan, out).astype(dtype, copy=False)
        rows.clear()
        lines.clear()
        return out

    with p.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            for cells in reader:
                line = reader.line_num
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue  # blank line
                values = [_parse_cell(c) for c in cells]
                is_names = all(v is None for v in values) and all(c.strip() for c in cells)
                if width is None and is_names:
                    has_header = True  # first line, all names: a header
                    width, width_line = len(cells), line
                    continue
                if width is None:
                    width, width_line = len(cells), line
                elif len(cells) != width:
                    raise DataError(
                        f"{label}: line {line} has {_plural(len(cells), 'column')}, "
                        f"expected {width} (as on line {width_line})"
                    )
                row: list[float] = []
                for j, (v, c) in enumerate(zip(values, cells, strict=True)):
                    if v is None:
                        raise DataError(_bad_cell_message(label, line, j, c))
                    row.append(v)
                rows.append(row)
                lines.append(line)
                n_rows += 1
                if len(rows) >= chunk_rows:
                    yield flush()
        except UnicodeDecodeError as err:
            raise DataError(
                f"{label}: not UTF-8 text; expected a comma-separated text file"
            ) from err
        except csv.Error as err:
            raise DataError(
                f"{label}: malformed CSV at line {reader.line_num} ({_one_line(err)})"
            ) from err
    if not n_rows:
        raise DataError(f"{label}: no data rows" + (" (only a header line)" if has_header else ""))
    if rows:
        yield flush()


def _bad_cell_message(label: str, line: int, j: int, cell: str) -> str:
    where = f"at line {line}, column {j + 1}"
    if not cell.strip():
        return f"{label}: empty cell {where}; expected a number"
    hint = ""
    if any(sep in cell for sep in (";", "\t")):
        hint = " (only comma-separated files are supported)"
    return f"{label}: non-numeric value {_one_line(repr(cell), 60)} {where}{hint}"
