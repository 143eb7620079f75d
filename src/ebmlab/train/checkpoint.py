"""Atomic checkpoints: safetensors for tensors, JSON for everything else.

Nothing here unpickles: a checkpoint is a ``.safetensors`` file (tensors plus
string metadata) and JSON. Every file is written to a temporary name in the
same directory, fsynced and renamed over the target, and the directory is
fsynced, so an interrupted run never leaves a half-written file and a finished
write survives a power loss.
"""

from __future__ import annotations

__all__ = [
    "atomic_save_tensors",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_training_state",
    "save_training_state",
]

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..errors import RunDirError


def _atomic_replace(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
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
    """``safetensors.torch.save_file`` made atomic; tensors are made contiguous CPU copies."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_replace(Path(path), lambda tmp: save_file(flat, tmp, metadata=metadata))


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value
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
        state.setdefault(int(pid), {}).update(extra)
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
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise RunDirError(f"checkpoint {p} not found")
    with safe_open(str(p), framework="pt") as fh:
        meta = fh.metadata() or {}
    tensors = load_file(str(p))
    dev = next((t.device for t in model.parameters()), torch.device("cpu"))
    model.load_state_dict(
        {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    )
    opt_tensors = {
        k: v.to(dev) if k.split(".")[-1] != "step" else v
        for k, v in tensors.items()
        if k.startswith("optimizer.")
    }
    _unflatten_optimizer(optimizer, opt_tensors, json.loads(meta["optimizer"]))
    generator.set_state(tensors["rng"])
    extra_tensors = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    return int(meta["step"]), extra_tensors, json.loads(meta.get("extra", "{}"))
