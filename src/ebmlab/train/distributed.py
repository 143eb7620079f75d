"""Thin helpers over ``torch.distributed`` for multi-process training.

ebmlab scales past one process with PyTorch's own machinery: launch with
``torchrun`` (or ``ebmlab train --nproc N``, which calls it), one process per
rank; gloo on CPU, nccl on GPU. Each rank draws its own data batches and
negatives from its own RNG stream and keeps its own shard of the replay
buffer; gradients are averaged by ``DistributedDataParallel``; rank 0 writes
files. Every helper is a no-op in a single process.
"""

from __future__ import annotations

__all__ = [
    "all_gather_tensor",
    "all_reduce_mean",
    "average_",
    "barrier",
    "broadcast_",
    "init_from_env",
    "is_distributed",
    "is_main_process",
    "rank",
    "rank_seed",
    "shutdown",
    "world_size",
]

import atexit
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialized process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0: the process that writes files and prints.

    Before the process group exists (a command under ``torchrun`` that has not built
    its run yet), the rank comes from torchrun's ``RANK`` variable, so that only one
    process writes the run directory from the very first file.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


def rank_seed(seed: int, rank_: int | None = None) -> int:
    """Seed of one rank's RNG stream: ``seed`` itself on rank 0, distinct elsewhere."""
    r = rank() if rank_ is None else rank_
    return seed + 1_000_003 * r


def init_from_env(device: str = "cpu") -> str:
    """Join the process group described by torchrun's environment, if any.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (set by ``torchrun``). Uses
    nccl for CUDA devices and gloo otherwise.

    Returns:
        The device this rank should use (``cuda:LOCAL_RANK`` for CUDA).
    """
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    is_cuda = torch.device(device).type == "cuda"
    if is_cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if is_cuda else "gloo")
        # Leave the group before the interpreter tears down: a gloo group left to the
        # C++ destructors at exit can abort a rank ("terminate called without an active
        # exception") after its work is done, failing the whole torchrun job.
        atexit.register(shutdown)
    return device


def shutdown() -> None:
    """Leave the process group (no-op when there is none).

    No barrier here: a rank that stops on an error must exit, so that torchrun ends the
    others, rather than wait for ranks that are still inside a collective.
    """
    global _cpu_group
    if not dist.is_available() or not dist.is_initialized():
        return
    _cpu_group = None
    dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if is_distributed():
        dist.barrier()


#: (default group, gloo group over the same ranks) once a CPU collective needed one.
_cpu_group: tuple[Any, Any] | None = None


def _group_for(t: Tensor) -> Any:
    """The group for a collective on ``t``: the default group, except for a CPU tensor
    when that group is NCCL (CUDA tensors only): then a gloo group over the same ranks,
    created once (every rank reaches the same collectives in the same order)."""
    global _cpu_group
    if t.device.type != "cpu" or dist.get_backend() != "nccl":
        return None
    world = dist.group.WORLD
    if _cpu_group is None or _cpu_group[0] is not world:
        _cpu_group = (world, dist.new_group(backend="gloo"))
    return _cpu_group[1]


def all_reduce_mean(t: Tensor) -> Tensor:
    """Mean of ``t`` over ranks (returns ``t`` unchanged in one process)."""
    if not is_distributed():
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM, group=_group_for(out))
    return out / world_size()


def all_gather_tensor(t: Tensor) -> list[Tensor]:
    """Every rank's ``t`` (same shape on all ranks), in rank order.

    CPU tensors (a generator's state) work under NCCL too, through a gloo group.
    """
    if not is_distributed():
        return [t]
    parts = [torch.empty_like(t) for _ in range(world_size())]
    dist.all_gather(parts, t.contiguous(), group=_group_for(t))
    return parts


def broadcast_(tensors: Sequence[Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values (no-op in one process)."""
    if not is_distributed():
        return
    for t in tensors:
        data = t.data.view(torch.uint8) if t.dtype == torch.bool else t.data  # gloo has no bool
        dist.broadcast(data, src=src, group=_group_for(t))


def average_(tensors: Sequence[Tensor]) -> None:
    """Replace each of ``tensors`` in place by its mean over ranks (no-op in one process)."""
    if not is_distributed():
        return
    for t in tensors:
        dist.all_reduce(t.data, op=dist.ReduceOp.SUM, group=_group_for(t))
        t.data.div_(world_size())
