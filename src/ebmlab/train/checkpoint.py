"""Atomic checkpoints: safetensors for tensors, JSON for everything else.

Nothing here unpickles: a checkpoint is a ``.safetensors`` file (tensors plus
string metadata) and JSON. Every file is written to a temporary name in the
same directory, fsynced and renamed over the target, and the directory is
fsynced, so an interrupted run never leaves a half-written file and a finished
write survives a power loss. A write that fails (full disk, read-only
directory) raises :class:`~ebmlab.errors.RunDirError` saying the previous file
is kept. Every ``.safetensors`` file carries a SHA-256 of its tensors and
metadata (metadata key ``sha256``), checked by :func:`load_tensors`: a
truncated or bit-flipped file is named as corrupt, never loaded, and so is one
holding a NaN or infinity. :func:`run_lock` keeps two processes from writing
one run directory at once.
"""

from __future__ import annotations

__all__ = [
    "atomic_save_npy_chunks",
    "atomic_save_tensors",
    "atomic_write_bytes",
    "atomic_write_chunks",
    "atomic_write_json",
    "atomic_write_text",
    "file_sha256",
    "load_tensors",
    "load_training_state",
    "run_lock",
    "save_training_state",
]

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from ..errors import EbmlabError, RunDirError


def _atomic_replace(path: Path, write: Any) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, EbmlabError):
            kept = "the previous file is kept unchanged" if path.exists() else "nothing written"
            why = exc.strerror or str(exc).splitlines()[0]
            raise RunDirError(f"{path}: cannot write ({why}); {kept}") from exc
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where it cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    _atomic_replace(Path(path), write)


def atomic_write_chunks(path: str | os.PathLike[str], chunks: Iterable[bytes]) -> int:
    """Write the byte strings of ``chunks`` to ``path`` atomically, one at a time.

    Constant memory for a stream of any length; an error while producing the
    chunks leaves ``path`` as it was. Returns the number of chunks.
    """
    count = [0]

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            for c in chunks:
                fh.write(c)
                count[0] += 1

    _atomic_replace(Path(path), write)
    return count[0]


def _npy_header(shape: tuple[int, ...], descr: str, size: int = 0) -> bytes:
    """A version 1.0 ``.npy`` header, padded to ``size`` bytes (0: the next multiple of 64)."""
    d = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    base = 10 + len(d) + 1
    size = size or -(-base // 64) * 64
    d = d + " " * (size - base) + "\n"
    return b"\x93NUMPY\x01\x00" + len(d).to_bytes(2, "little") + d.encode("latin1")


def atomic_save_npy_chunks(
    path: str | os.PathLike[str], chunks: Iterable[Any], *, dtype: Any
) -> int:
    """Save row chunks ``(n_i, D)`` as one ``.npy`` array ``(sum n_i, D)``, atomically.

    The rows go to disk as they come (constant memory); the header, written
    first with room for any row count, is completed at the end. Returns the
    number of rows.
    """
    import numpy as np

    dt = np.dtype(dtype)
    descr = str(np.lib.format.dtype_to_descr(dt))  # a plain string for a float dtype
    size = len(_npy_header((10**18, 10**18), descr))
    rows = [0]

    def write(tmp: str) -> None:
        dim = 0
        with open(tmp, "wb") as fh:
            fh.write(b"\0" * size)
            for c in chunks:
                a = np.ascontiguousarray(np.asarray(c, dtype=dt))
                if a.ndim != 2 or (rows[0] and a.shape[1] != dim):
                    raise ValueError(f"chunks must be (n, {dim or 'D'}), got {a.shape}")
                dim = a.shape[1]
                fh.write(a.tobytes())
                rows[0] += a.shape[0]
            fh.seek(0)
            fh.write(_npy_header((rows[0], dim), descr, size))

    _atomic_replace(Path(path), write)
    return rows[0]


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save_tensors(
    path: str | os.PathLike[str],
    tensors: dict[str, Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """``safetensors.torch.save_file`` made atomic; tensors are made contiguous CPU copies.

    The metadata gains ``sha256``, the digest :func:`load_tensors` checks.
    """
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {k: v for k, v in (metadata or {}).items() if k != "sha256"}
    meta["sha256"] = _digest(flat, meta)
    _atomic_replace(Path(path), lambda tmp: save_file(flat, tmp, metadata=meta))


def _digest(tensors: dict[str, Tensor], metadata: dict[str, str]) -> str:
    """SHA-256 of the names, dtypes, shapes and bytes of ``tensors`` and of ``metadata``."""
    h = hashlib.sha256(json.dumps(sorted(metadata.items())).encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (recorded in ``state.json``)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_tensors(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    require_digest: bool = True,
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a ``.safetensors`` file written by :func:`atomic_save_tensors`, checked.

    Arguments:
        path: The file.
        device: Where the tensors go.
        require_digest: Refuse a file without the ``sha256`` metadata (False
            accepts files written by other tools, checking the rest).

    Returns:
        ``(tensors, metadata)``.

    Raises:
        RunDirError: Missing, unreadable, truncated or bit-flipped (the stored
            SHA-256 does not match), or holding a non-finite floating value.
    """
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise RunDirError(f"{p}: not found")
    try:
        with safe_open(str(p), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types and OSError
        why = " ".join(str(exc).split())[:120]
        raise RunDirError(f"{p}: corrupt or unreadable safetensors file ({why})") from None
    stored = meta.pop("sha256", None)
    if stored is None and require_digest:
        raise RunDirError(
            f"{p}: no SHA-256 record (damaged, or written by an older ebmlab); not loaded"
        )
    if stored is not None and _digest(tensors, meta) != stored:
        raise RunDirError(f"{p}: corrupt file (SHA-256 of its contents does not match)")
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise RunDirError(f"{p}: tensor {name!r} holds NaN or infinity; refusing to load it")
    return {k: v.to(device) for k, v in tensors.items()}, meta


@contextlib.contextmanager
def run_lock(directory: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on a run directory while training or resuming it.

    The lock is an ``flock`` on the directory itself (released by the kernel
    when the process dies, even by SIGKILL); it is a no-op where ``fcntl`` is
    missing (Windows). Once held, temporary files left by a killed writer
    (``.NAME.*.tmp``) are removed.

    Raises:
        RunDirError: Another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunDirError(
                f"{directory}: another ebmlab process is training or resuming this run "
                "directory; wait for it to finish or use another --out"
            ) from None
        for stale in Path(directory).glob(".*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
        yield
    finally:
        os.close(fd)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value
            elif isinstance(value, list):  # L-BFGS keeps its history as lists of tensors
                kinds = []
                for i, item in enumerate(value):
                    if isinstance(item, Tensor):
                        tensors[f"optimizer.{pid}.{key}.{i}"] = item
                        kinds.append("tensor")
                    else:
                        kinds.append(item)
                scalars.setdefault(str(pid), {})[key] = {"__list__": kinds}
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("optimizer."):
            continue
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, extra in meta["scalars"].items():
        pstate = state.setdefault(int(pid), {})
        for key, value in extra.items():
            if isinstance(value, dict) and "__list__" in value:
                pstate[key] = [
                    pstate.pop(f"{key}.{i}") if kind == "tensor" else kind
                    for i, kind in enumerate(value["__list__"])
                ]
            else:
                pstate[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training_state(
    path: str | os.PathLike[str],
    *,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    extra_tensors: dict[str, Tensor] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write everything needed to continue training, in one atomic file.

    The file holds the model weights (``model.*``), the optimizer state
    (``optimizer.*``), the generator state (``rng``), any ``extra_tensors``
    (``extra.*``, e.g. the replay buffer) and, as JSON metadata, the step and
    ``extra``. Being one file, it is always self-consistent.
    """
    tensors: dict[str, Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = _flatten_optimizer(optimizer)
    tensors.update(opt_tensors)
    tensors["rng"] = generator.get_state()
    for k, v in (extra_tensors or {}).items():
        tensors[f"extra.{k}"] = v
    meta = {"step": str(step), "optimizer": json.dumps(opt_meta), "extra": json.dumps(extra or {})}
    atomic_save_tensors(path, tensors, meta)


def load_training_state(
    path: str | os.PathLike[str],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> tuple[int, dict[str, Tensor], dict[str, Any]]:
    """Restore model, optimizer and generator from :func:`save_training_state`.

    Returns:
        ``(step, extra_tensors, extra)``.
    """
    p = Path(path)
    if not p.is_file():
        raise RunDirError(f"checkpoint {p} not found")
    tensors, meta = load_tensors(p)
    dev = next((t.device for t in model.parameters()), torch.device("cpu"))
    try:
        model.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
    except RuntimeError as exc:
        why = " ".join(str(exc).split())[:160]
        raise RunDirError(f"{p}: does not fit this run's model ({why})") from None
    opt_tensors = {
        k: v.to(dev) if k.split(".")[-1] != "step" else v
        for k, v in tensors.items()
        if k.startswith("optimizer.")
    }
    _unflatten_optimizer(optimizer, opt_tensors, json.loads(meta["optimizer"]))
    generator.set_state(tensors["rng"])
    extra_tensors = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    return int(meta["step"]), extra_tensors, json.loads(meta.get("extra", "{}"))
