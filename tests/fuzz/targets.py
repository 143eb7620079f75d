"""Fuzz targets: every reader of a file ebmlab did not write, fed arbitrary bytes.

Each target writes the bytes to a file and calls the reader. The only allowed
outcomes are a result or an :class:`~ebmlab.errors.EbmlabError` whose message
is one line naming the file; anything else (another exception, a traceback, a
multi-line message) fails the target. :data:`TARGETS` maps names to targets;
``tests/fuzz/run.py`` drives them with atheris (``make fuzz``) and
``tests/fuzz/test_fuzz.py`` with Hypothesis (a seeded slice in ``make test``).
The image loaders (``ebmlab.data.load_images``: image arrays in ``.npy`` and
``.npz``, MNIST IDX files plain and gzipped, PNG files) have targets of their own.
"""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ebmlab.errors import EbmlabError

#: A file whose creation would mean that a payload ran (pickle, YAML python tags).
MARKER = Path(tempfile.gettempdir()) / "ebmlab-fuzz-code-execution-marker"
WORK = Path(tempfile.mkdtemp(prefix="ebmlab-fuzz-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)


class UnexpectedOutcomeError(AssertionError):
    """A fuzz input gave an outcome other than a result or a one-line EbmlabError."""


def _check(call: Callable[[], object], path: Path) -> None:
    try:
        call()
    except EbmlabError as exc:
        msg = str(exc)
        if "\n" in msg or not msg:
            raise UnexpectedOutcomeError(f"message is not one line: {msg!r}") from exc
        if path.name not in msg:
            raise UnexpectedOutcomeError(f"message does not name {path.name}: {msg!r}") from exc
    if MARKER.exists():
        raise UnexpectedOutcomeError("a payload in the input ran code")


def _file(data: bytes, name: str) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def fuzz_csv(data: bytes) -> None:
    from ebmlab.data import load_array
    from ebmlab.data.loaders import iter_array_chunks

    p = _file(data, "data.csv")
    _check(lambda: load_array(p), p)
    _check(lambda: list(iter_array_chunks(p, chunk_rows=3, allow_nan=True)), p)


def fuzz_npy(data: bytes) -> None:
    from ebmlab.data import load_array
    from ebmlab.data.loaders import iter_array_chunks
    from ebmlab.runs.denoise import _rows_with_nan

    p = _file(data, "data.npy")
    _check(lambda: load_array(p), p)
    _check(lambda: list(_rows_with_nan(p, 2, 3)), p)  # ebmlab denoise: NaN = missing
    _check(lambda: load_array(p, mmap_above=0), p)
    _check(lambda: list(iter_array_chunks(p, chunk_rows=3)), p)


def fuzz_npz(data: bytes) -> None:
    from ebmlab.data import load_array

    p = _file(data, "data.npz")
    _check(lambda: load_array(p), p)


def fuzz_yaml_config(data: bytes) -> None:
    from ebmlab.config import load_config

    p = _file(data, "config.yaml")
    _check(lambda: load_config(p), p)


# ------------------------------------------------------------------------ image loaders


def _image_target(name: str) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        from ebmlab.data import load_images

        p = _file(data, name)
        _check(lambda: load_images(p), p)
        _check(lambda: load_images(p, allow_nan=True), p)  # ebmlab denoise reads them so

    target.__name__ = f"fuzz_image_{name.replace('.', '_').replace('-', '_')}"
    return target


IMAGE_FILES = {
    "image-npy": "images.npy",
    "image-npz": "images.npz",
    "image-idx": "train-images-idx3-ubyte",
    "image-idx-gz": "train-images-idx3-ubyte.gz",
    "image-png": "digit.png",
}


def _image_seeds(target: str) -> list[bytes]:
    import gzip
    import struct

    from PIL import Image

    u8 = (np.arange(3 * 4 * 5) % 256).astype(np.uint8).reshape(3, 4, 5)
    if target == "image-npy":
        bufs = [io.BytesIO() for _ in range(3)]
        np.save(bufs[0], u8)
        np.save(bufs[1], u8.astype(np.float32)[..., None] / 255.0)  # (N, H, W, C)
        np.save(bufs[2], np.array([_Payload()], dtype=object), allow_pickle=True)
        return [b.getvalue() for b in bufs]
    if target == "image-npz":
        buf, obj = io.BytesIO(), io.BytesIO()
        np.savez_compressed(buf, x=u8, y=np.arange(3))
        np.savez(obj, x=np.array([_Payload()], dtype=object))
        return [buf.getvalue(), obj.getvalue()]
    if target.startswith("image-idx"):
        raw = struct.pack(">BBBB3I", 0, 0, 0x08, 3, 3, 4, 5) + u8.tobytes()
        return [gzip.compress(raw) if target.endswith("gz") else raw]
    png = io.BytesIO()
    Image.fromarray(u8[0]).save(png, format="PNG")
    return [png.getvalue()]


# ------------------------------------------------------------------------ run directories

_RUN: list[Path] = []


def seed_run() -> Path:
    """A small trained run directory (made once per process)."""
    if not _RUN:
        from ebmlab.config import parse_config
        from ebmlab.runs import train_run

        cfg = parse_config(
            {
                "model": {"hidden": [8]},
                "objective": {"n_steps": 2},
                "train": {"steps": 4, "batch_size": 16, "log_every": 2, "checkpoint_every": 2},
                "data": {"n_train": 64, "n_test": 16},
            }
        )
        out = WORK / "seed-run"
        train_run(cfg, out, progress=False, evaluate=False)
        _RUN.append(out)
    return _RUN[0]


def _run_with(name: str, data: bytes) -> Path:
    run = WORK / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(seed_run(), run)
    (run / name).write_bytes(data)
    return run


def _load_checkpoint(run: Path) -> None:
    from ebmlab.runs.build import _read_config, build_energy
    from ebmlab.runs.training import _check_recorded_sha256
    from ebmlab.train.checkpoint import load_training_state

    cfg = _read_config(run)
    _check_recorded_sha256(run, "train_state.safetensors")
    energy = build_energy(cfg, (2,))
    opt = torch.optim.Adam(energy.parameters())
    load_training_state(
        run / "train_state.safetensors", model=energy, optimizer=opt, generator=torch.Generator()
    )


def _run_target(name: str) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        from ebmlab.runs import load_run

        run = _run_with(name, data)
        if name == "train_state.safetensors":
            _check(lambda: _load_checkpoint(run), run / name)
        else:
            _check(lambda: load_run(run), run / name)

    target.__name__ = f"fuzz_run_{name.replace('.', '_')}"
    return target


TARGETS: dict[str, Callable[[bytes], None]] = {
    "csv": fuzz_csv,
    "npy": fuzz_npy,
    "npz": fuzz_npz,
    "yaml": fuzz_yaml_config,
    **{t: _image_target(name) for t, name in IMAGE_FILES.items()},
    **{
        f"run-{n.split('.')[0]}": _run_target(n)
        for n in ("config.yaml", "state.json", "model.safetensors", "train_state.safetensors")
    },
}


def seeds(target: str) -> list[bytes]:
    """Valid and hostile starting inputs for ``target``."""
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    if target == "csv":
        return [b"a,b\n1,2\n3,4\n", b"1.5,nan\n", b"\xef\xbb\xbf1,2\n\n3,4\n", b'"1",2\n']
    if target == "npy":
        buf, obj = io.BytesIO(), io.BytesIO()
        np.save(buf, x)
        np.save(obj, np.array([_Payload()], dtype=object), allow_pickle=True)
        return [buf.getvalue(), obj.getvalue(), b"\x93NUMPY\x01\x00"]
    if target == "npz":
        buf = io.BytesIO()
        np.savez_compressed(buf, x=x)
        obj = io.BytesIO()
        np.savez(obj, x=np.array([_Payload()], dtype=object))
        bad = io.BytesIO()
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("x.npy", b"not an array")
        return [buf.getvalue(), obj.getvalue(), bad.getvalue()]
    if target == "yaml":
        return [
            b"train: {steps: 10}\nmodel: {hidden: [8, 8]}\n",
            b"seed: !!python/object/apply:os.system ['touch " + bytes(MARKER) + b"']\n",
            b"a: &a [1, 2]\nb: &b [*a, *a]\nc: &c [*b, *b]\ntrain: {steps: *c}\n",
        ]
    if target in IMAGE_FILES:
        return _image_seeds(target)
    name = {
        "run-config": "config.yaml",
        "run-state": "state.json",
        "run-model": "model.safetensors",
        "run-train_state": "train_state.safetensors",
    }[target]
    return [(seed_run() / name).read_bytes()]


class _Payload:
    """Unpickling this would create the marker file."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {MARKER}",))
