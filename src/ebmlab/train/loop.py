"""The training loop: optimizer, seeds, progress, metrics, checkpoints, resume,
divergence guard, stop on SIGTERM/SIGINT.

``fit`` works with any objective that maps ``(energy, batch, state,
generator=...)`` to ``(loss, diagnostics, state)``; ``state`` (a replay
buffer, or ``None``) is checkpointed through its ``state_dict``. An objective
that is an ``nn.Module`` with parameters of its own (noise-contrastive
estimation's ``log_z``) has them trained alongside the energy's and
checkpointed; across processes they start from rank 0's values, their
gradients are averaged, and they are averaged once after the first update
(which may initialize them from each rank's own batch). Diagnostics fields that
an objective lacks (score matching has no negatives) are logged as NaN. With a
run directory, SIGTERM or SIGINT (Ctrl-C) finishes the current step, writes a
checkpoint and raises :class:`~ebmlab.errors.TrainingInterruptedError`; resuming
then gives the same weights as never stopping (one process; under ``torchrun``
the signals keep their default action).
"""

from __future__ import annotations

__all__ = ["FitResult", "Objective", "TrainSettings", "fit", "learning_rate"]

import csv
import io
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..errors import RunDirError, TrainingDivergedError, TrainingInterruptedError
from ._optim import keep_new_settings, make_optimizer
from .checkpoint import atomic_write_text, load_training_state, save_training_state
from .distributed import (
    all_gather_tensor,
    all_reduce_mean,
    average_,
    barrier,
    broadcast_,
    is_distributed,
    is_main_process,
    rank,
    rank_seed,
    world_size,
)

CHECKPOINT_NAME = "train_state.safetensors"
METRICS_NAME = "metrics.csv"
#: The metrics of each logged row (means over the steps since the last row).
METRIC_KEYS = ("loss", "energy_pos", "energy_neg", "energy_gap", "acceptance_rate", "grad_norm")
#: A step's metric vector (one tensor): the returned loss, then the diagnostics.
#: Its first four entries are what the divergence guard checks, named as here.
_GUARDED = ("loss", "negative-sample energy", "data energy", "gradient norm")
#: Where each of METRIC_KEYS sits in a step's vector.
_ROW_FROM_VECTOR = (4, 2, 1, 5, 6, 3)
#: The diagnostics read from an objective, by position in a step's vector.
_DIAG_AT = {1: "energy_neg", 2: "energy_pos", 4: "loss", 5: "energy_gap", 6: "acceptance_rate"}


class Objective(Protocol):
    """What :func:`fit` needs from an objective."""

    def __call__(
        self, energy: Any, x_pos: Any, state: Any, /, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Any, Any]: ...


@dataclass
class TrainSettings:
    """Hyperparameters of the loop (not of the model or the objective).

    Attributes:
        steps: Total parameter updates.
        batch_size: Data points per update.
        lr: Peak learning rate.
        betas: Adam's betas.
        weight_decay: Decoupled weight decay (AdamW) when > 0; with
            ``optimizer="sgd"``, the L2 penalty of ``torch.optim.SGD`` (added to
            the gradient before momentum).
        weight_decay_matrices_only: Decay only parameters with two or more
            dimensions (weight matrices, kernels), never biases or scales
            (two parameter groups).
        lr_schedule: ``constant``, ``cosine`` or ``linear`` decay to 0.
        warmup_steps: Linear warm-up from 0.
        grad_clip: Clip the global gradient norm (``None``: no clipping).
        log_every: Steps between metric rows.
        checkpoint_every: Steps between checkpoints (0: only at the end).
        seed: Seed of the one generator that drives batches and sampling.
        device: Torch device.
        ema: Decay of an exponential moving average of the weights (``None``:
            off). The average is checkpointed with the raw weights (so resume
            is exact) and copied into the energy when training ends.
        batches: ``"random"``: each batch drawn with replacement;
            ``"epochs"``: passes over the data in a fresh random order each
            (the last batch of a pass holds the remainder), the order of pass
            ``k`` seeded by ``(seed, k)`` so a resume mid-pass is exact;
            ``"full"``: every step sees all the data (``batch_size`` unused).
        optimizer: ``"adam"`` (AdamW with ``weight_decay``), ``"sgd"``
            (``torch.optim.SGD`` with ``momentum``: ``buf = momentum * buf +
            grad``, ``p -= lr * buf``; contrastive divergence for RBMs), or
            ``"lbfgs"``: one L-BFGS iteration per step (strong-Wolfe line
            search, history ``lbfgs_history``), for deterministic full-batch
            objectives such as a closed-form negative log-likelihood (each step
            may evaluate the objective several times; no weight decay or
            gradient clipping).
        lbfgs_history: Curvature pairs L-BFGS keeps.
        momentum: Momentum of ``optimizer="sgd"``, in ``[0, 1)``.
    """

    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    grad_clip: float | None = None
    log_every: int = 50
    checkpoint_every: int = 200
    seed: int = 0
    device: str = "cpu"
    ema: float | None = None
    batches: str = "random"
    optimizer: str = "adam"
    lbfgs_history: int = 20
    momentum: float = 0.0
    weight_decay_matrices_only: bool = False

    def __post_init__(self) -> None:
        if self.batches not in ("random", "epochs", "full"):
            raise ValueError(f"batches must be 'random', 'epochs' or 'full', got {self.batches!r}")
        if self.optimizer not in ("adam", "sgd", "lbfgs"):
            raise ValueError(f"optimizer must be 'adam', 'sgd' or 'lbfgs', got {self.optimizer!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.momentum > 0 and self.optimizer != "sgd":
            raise ValueError("momentum is a setting of optimizer 'sgd'")
        if self.optimizer == "lbfgs" and (self.weight_decay > 0 or self.grad_clip is not None):
            raise ValueError("optimizer 'lbfgs' takes no weight_decay and no grad_clip")
        if self.lbfgs_history < 1:
            raise ValueError(f"lbfgs_history must be >= 1, got {self.lbfgs_history}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema must be in (0, 1) or None, got {self.ema}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.lr_schedule not in ("constant", "cosine", "linear"):
            raise ValueError(
                f"lr_schedule must be one of ['constant', 'cosine', 'linear'], "
                f"got {self.lr_schedule!r}"
            )
        if self.log_every < 1 or self.checkpoint_every < 0 or self.warmup_steps < 0:
            raise ValueError("log_every must be >= 1, checkpoint_every and warmup_steps >= 0")


def learning_rate(settings: TrainSettings, step: int) -> float:
    """Learning rate at ``step`` (0-based): warm-up, then the chosen decay."""
    warm = min(1.0, (step + 1) / settings.warmup_steps) if settings.warmup_steps else 1.0
    frac = step / max(settings.steps, 1)
    if settings.lr_schedule == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * frac))
    elif settings.lr_schedule == "linear":
        decay = 1.0 - frac
    else:
        decay = 1.0
    return settings.lr * warm * decay


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
        step: Updates done in all (including before a resume).
        seconds: Wall-clock seconds of this call.
        metrics: The logged rows of this call (dicts of floats).
        state: Final objective state (e.g. the replay buffer).
        optimizer_state: The optimizer's ``state_dict()`` at the end (momentum
            buffers, Adam's moments): pass it as ``fit(optimizer_state=...)``
            to continue training where this call stopped.
    """

    step: int
    seconds: float
    metrics: list[dict[str, float]]
    state: Any
    optimizer_state: dict[str, Any] | None = None


def _objective_module(objective: Any) -> nn.Module | None:
    """The objective as a module when it has trainable parameters of its own."""
    if isinstance(objective, nn.Module) and any(p.requires_grad for p in objective.parameters()):
        return objective
    return None


def _diag_value(diag: Any, name: str) -> Tensor | None:
    value = getattr(diag, name, None)
    return value if isinstance(value, Tensor) else None


def _read_metrics(path: Path, up_to: int) -> tuple[list[str] | None, list[list[str]]]:
    """Header and rows up to step ``up_to``; rows cut short by a kill or damaged are dropped."""
    if not path.is_file():
        return None, []
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        try:
            rows = list(csv.reader(fh))
        except csv.Error:
            return None, []
    if not rows:
        return None, []
    header, body = rows[0], rows[1:]

    def whole(r: list[str]) -> bool:
        try:
            values = [float(v) for v in r]
        except ValueError:
            return False
        return len(values) == len(header) and values[0] > 0

    return header, [r for r in body if whole(r) and float(r[0]) <= up_to]


def _reuse_first(
    loss: Tensor,
    objective: Any,
    model: nn.Module,
    batch: Any,
    state: Any,
    generator: torch.Generator,
    optimizer: torch.optim.Optimizer,
) -> Callable[[], Tensor]:
    """An L-BFGS closure whose first call returns ``loss`` (its gradients are already in
    place) and whose later calls (the line search) evaluate the objective on ``batch``
    again (the state they return is dropped: L-BFGS is for deterministic objectives)."""
    calls = [0]

    def closure() -> Tensor:
        calls[0] += 1
        if calls[0] == 1:
            return loss.detach()
        optimizer.zero_grad(set_to_none=True)
        value: Tensor = objective(model, batch, state, generator=generator)[0]
        value.backward()
        return value.detach()

    return closure


def _catch_stop_signals(stop: list[int]) -> dict[int, Any]:
    """Make SIGTERM/SIGINT append to ``stop`` (a second one acts at once); old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    old: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if stop:  # asked twice: stop now
            raise KeyboardInterrupt
        stop.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        old[sig] = signal.signal(sig, handler)
    return old


def fit(
    energy: nn.Module,
    data: Tensor,
    objective: Objective,
    settings: TrainSettings,
    *,
    state: Any = None,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    on_log: Callable[[dict[str, float]], None] | None = None,
    labels: Tensor | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``energy`` on ``data`` with ``objective``.

    One ``torch.Generator`` seeded with ``settings.seed`` drives batch
    selection, sampling and the replay buffer, and its state is checkpointed,
    so a resumed run gives the same weights as an uninterrupted one.

    Arguments:
        energy: The model; moved to ``settings.device``.
        data: Training set, shape ``(N, *event_shape)``.
        objective: E.g. :class:`~ebmlab.objectives.ContrastiveDivergence`.
        settings: Loop hyperparameters.
        state: Objective state (replay buffer) or ``None``; anything with
            ``state_dict()``/``load_state_dict()`` is checkpointed.
        run_dir: Where ``metrics.csv`` and ``train_state.safetensors`` go
            (``None``: nothing is written).
        resume: Continue from ``run_dir``'s checkpoint.
        progress: Show a tqdm progress bar.
        on_log: Called (on the main process) with each logged metrics row, e.g.
            :meth:`~ebmlab.train.tensorboard.TensorBoardLogger.log_metrics`.
        labels: Labels of the rows, shape ``(N,)`` (``None``: unlabelled);
            when given, each batch is the pair ``(x, y)`` (e.g. for
            :class:`~ebmlab.objectives.JointEnergyObjective`).
        optimizer_state: An earlier call's ``FitResult.optimizer_state``:
            the optimizer continues from it (momentum, moments) with this
            call's settings. A checkpoint's state wins on ``resume``.

    Returns:
        A :class:`FitResult`.

    Raises:
        TrainingDivergedError: On a non-finite loss, energy or gradient; the
            last good checkpoint is kept and the message says what to change.
    """
    dev = torch.device(settings.device)
    energy.to(dev)
    data = data.to(dev)
    if data.shape[0] < 1:
        raise ValueError("data is empty")
    if labels is not None:
        labels = labels.to(dev)
        if labels.shape[0] != data.shape[0]:
            raise ValueError(f"labels has {labels.shape[0]} rows, data {data.shape[0]}")
    world, my_rank, main = world_size(), rank(), is_main_process()
    if settings.batch_size % world:
        raise ValueError(
            f"batch_size {settings.batch_size} must be divisible by the {world} processes"
        )
    local_batch = settings.batch_size // world
    generator = torch.Generator(device=dev).manual_seed(rank_seed(settings.seed))
    own = _objective_module(objective)
    if own is not None:
        own.to(dev)
        # Every rank starts from rank 0's values, as DistributedDataParallel does for the energy.
        broadcast_([*own.parameters(), *own.buffers()])
    optimizer = make_optimizer(energy, settings, own)
    if optimizer_state is not None and not resume:
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        optimizer.load_state_dict(optimizer_state)
        keep_new_settings(optimizer, fresh)
    # DistributedDataParallel averages gradients over ranks (and starts every
    # rank from rank 0's weights); objectives sample with its ``.module``.
    model: nn.Module = energy
    if is_distributed():
        model = DistributedDataParallel(
            energy, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    out = Path(run_dir) if run_dir is not None else None
    ckpt = out / CHECKPOINT_NAME if out is not None else None
    start = 0
    # Running sums of the step vectors since the last logged row (checkpointed with
    # the rest, by the names of METRIC_KEYS), and the entries some step lacked.
    sums: Tensor | None = None
    n_sum = 0
    absent: set[int] = set()
    ema_resumed: dict[str, Tensor] = {}
    if resume:
        if ckpt is None:
            raise ValueError("resume needs a run_dir")
        new_settings = [
            {k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups
        ]
        start, extra_tensors, extra_meta = load_training_state(
            ckpt, model=energy, optimizer=optimizer, generator=generator
        )
        changed = keep_new_settings(optimizer, new_settings)
        if changed and main:
            warnings.warn(
                f"resuming with optimizer settings that differ from the checkpoint's "
                f"({'; '.join(changed)}): the new ones are used",
                UserWarning,
                stacklevel=2,
            )
        if "metrics.n" in extra_tensors:
            n_sum = int(extra_tensors["metrics.n"])
            saved_sums = [extra_tensors[f"metrics.{k}"].double() for k in METRIC_KEYS]
            sums = torch.zeros(7, dtype=torch.float64)
            sums[list(_ROW_FROM_VECTOR)] = torch.stack(saved_sums)
            sums = sums.to(dev)
        ema_resumed = extra_tensors
        saved_world = int(extra_meta.get("world_size", 1))
        if saved_world == world and f"rng.{my_rank}" in extra_tensors:
            generator.set_state(extra_tensors[f"rng.{my_rank}"])
        elif saved_world != world:
            # A different number of processes cannot replay the old streams:
            # continue with fresh, deterministic ones (statistically equivalent).
            generator.manual_seed(rank_seed(settings.seed) + 7919 * start)
        if own is not None:
            saved = {
                k[len("objective.") :]: v.to(dev)
                for k, v in extra_tensors.items()
                if k.startswith("objective.")
            }
            if saved:
                own.load_state_dict(saved)
        ctrl = getattr(objective, "sampler", None)  # e.g. OnlineStepSize: its step size
        if hasattr(ctrl, "load_state_dict"):
            tail = f".{my_rank if saved_world == world else 0}"
            saved = {
                k.split(".")[1]: v
                for k, v in extra_tensors.items()
                if k.startswith("sampler.") and k.endswith(tail)
            }
            if saved:
                ctrl.load_state_dict(saved)  # type: ignore[union-attr]
        if state is not None and "buffer" in extra_tensors:
            full = extra_tensors["buffer"].to(dev)
            cap = state.state_dict()["buffer"].shape[0]
            if full.shape[0] != cap * world:
                reps = -(-cap * world // full.shape[0])
                full = full.repeat((reps,) + (1,) * (full.dim() - 1))
            state.load_state_dict(
                {
                    "buffer": full[my_rank * cap : (my_rank + 1) * cap],
                    "n_seen": int(extra_tensors["n_seen"]) // max(saved_world, 1),
                }
            )

    # EMA of the weights: (average, live tensor) pairs; the live tensors share
    # storage with the parameters, which the optimizer updates in place.
    ema_pairs: list[tuple[str, Tensor, Tensor]] = []
    if settings.ema is not None:
        for k, v in energy.state_dict().items():
            if v.is_floating_point():
                ema_saved = ema_resumed.get(f"ema.{k}")
                avg = ema_saved.to(v.device, v.dtype) if ema_saved is not None else v.detach()
                avg = avg.clone()
                ema_pairs.append((k, avg, v))

    def checkpoint(step: int) -> None:
        if ckpt is None:
            return
        # Every rank takes part in the gathers; rank 0 writes one atomic file.
        extra: dict[str, Tensor] = {}
        rngs = all_gather_tensor(generator.get_state())
        for r, t in enumerate(rngs):
            extra[f"rng.{r}"] = t
        if state is not None and hasattr(state, "state_dict"):
            sd = state.state_dict()
            extra["buffer"] = torch.cat(all_gather_tensor(sd["buffer"]))
            seen = torch.tensor(int(sd["n_seen"]), device=sd["buffer"].device)
            extra["n_seen"] = (all_reduce_mean(seen.double()) * world).round().long().cpu()
        if own is not None:
            for k, v in own.state_dict().items():
                extra[f"objective.{k}"] = v.detach().cpu().contiguous()
        if n_sum and sums is not None:  # the metrics of the steps since the last row
            extra["metrics.n"] = torch.tensor(n_sum)
            mean_sums = all_reduce_mean(sums).cpu()
            for k, i in zip(METRIC_KEYS, _ROW_FROM_VECTOR, strict=True):
                extra[f"metrics.{k}"] = (
                    mean_sums[i].clone()
                    if i not in absent
                    else (torch.tensor(math.nan, dtype=mean_sums.dtype))
                )
        ctrl = getattr(objective, "sampler", None)
        if hasattr(ctrl, "state_dict"):  # per-rank adaptive sampler state
            for k, v in ctrl.state_dict().items():  # type: ignore[union-attr]
                for r, t in enumerate(all_gather_tensor(v)):
                    extra[f"sampler.{k}.{r}"] = t
        for k, avg, _ in ema_pairs:
            extra[f"ema.{k}"] = avg.detach().cpu().contiguous()
        if main:
            save_training_state(
                ckpt,
                step=step,
                model=energy,
                optimizer=optimizer,
                generator=generator,
                extra_tensors=extra,
                extra={"settings": asdict(settings), "world_size": world},
            )
        barrier()

    columns = [
        "step",
        "loss",
        "energy_pos",
        "energy_neg",
        "energy_gap",
        "acceptance_rate",
        "grad_norm",
        "lr",
        "seconds",
    ]
    metrics_path = out / METRICS_NAME if out is not None else None
    metrics_fh: io.TextIOWrapper | None = None
    if metrics_path is not None and main:
        _, kept = _read_metrics(metrics_path, start) if resume else (None, [])
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(columns)
        writer.writerows(kept)
        atomic_write_text(metrics_path, buf.getvalue())
        metrics_fh = open(metrics_path, "a", newline="")  # noqa: SIM115 - closed below
    last_good = start if (resume or ckpt is None) else -1
    if ckpt is not None and not resume:
        checkpoint(0)
        last_good = 0

    stop: list[int] = []
    old_handlers = _catch_stop_signals(stop) if ckpt is not None and not is_distributed() else {}
    rows: list[dict[str, float]] = []
    t0 = time.perf_counter()
    bar = tqdm(
        total=settings.steps,
        initial=start,
        desc="training",
        disable=not (progress and main),
        mininterval=0.1 if sys.stderr.isatty() else 30.0,  # quiet in logs
        dynamic_ncols=True,
    )
    n = data.shape[0]
    per_epoch = -(-n // local_batch)
    order: dict[int, Tensor] = {}

    def epoch_batch(step: int) -> Tensor:
        epoch, pos = divmod(step, per_epoch)
        if epoch not in order:
            order.clear()
            g = torch.Generator().manual_seed(rank_seed(settings.seed) * 1_000_003 + epoch)
            order[epoch] = torch.randperm(n, generator=g).to(dev)
        return order[epoch][pos * local_batch : (pos + 1) * local_batch]

    trained = [p for g in optimizer.param_groups for p in g["params"]]
    zeros: dict[torch.dtype, Tensor] = {}
    energy.train()
    try:
        for step in range(start, settings.steps):
            lr = learning_rate(settings, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if settings.batches == "full":
                batch = data if labels is None else (data, labels)
            else:
                if settings.batches == "epochs":
                    idx = epoch_batch(step)
                else:
                    idx = torch.randint(n, (local_batch,), generator=generator, device=dev)
                batch = data[idx] if labels is None else (data[idx], labels[idx])
            loss, diag, state = objective(model, batch, state, generator=generator)
            for p in trained:  # optimizer.zero_grad(set_to_none=True), without its overhead
                p.grad = None
            loss.backward()
            if own is not None and is_distributed():  # DDP averages only the energy's
                for p in own.parameters():
                    if p.requires_grad and p.grad is None:
                        p.grad = torch.zeros_like(p)
                average_([p.grad for p in own.parameters() if p.grad is not None])
            if settings.grad_clip is not None:
                grad_norm = nn.utils.clip_grad_norm_(trained, settings.grad_clip)
            else:
                grads = [p.grad for p in trained if p.grad is not None]
                grad_norm = (
                    torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
                    if grads
                    else torch.zeros((), device=dev)
                )
            # One vector per step (see _GUARDED, _DIAG_AT): an absent diagnostic is a
            # 0 here and NaN in the logged row. One stack, one check, one running
            # sum: few tensor operations, which is what costs for small models.
            entries: list[Tensor | None] = [loss, None, None, grad_norm, None, None, None]
            for i, name in _DIAG_AT.items():
                entries[i] = _diag_value(diag, name)
            if entries[4] is None:  # diagnostics without a loss, or none: the returned one
                entries[4] = loss
            zero = zeros.get(grad_norm.dtype)
            if zero is None:
                zero = zeros[grad_norm.dtype] = torch.zeros((), dtype=grad_norm.dtype, device=dev)
            values: list[Tensor] = []
            for i, v in enumerate(entries):
                if v is None:
                    absent.add(i)
                    values.append(zero)
                else:
                    values.append(v.detach().to(grad_norm.dtype))
            vec = torch.stack(values)
            checks = vec[:4]
            if is_distributed():  # every rank must agree to stop
                checks = checks + 0.0 * all_reduce_mean(checks)
            # The divergence guard: one sync; a non-finite entry makes the sum non-finite.
            if not math.isfinite(float(checks.sum())) and not all(
                math.isfinite(v) for v in checks.tolist()
            ):
                what = [
                    name
                    for name, v in zip(_GUARDED, checks.tolist(), strict=True)
                    if not math.isfinite(v)
                ]
                where = (
                    f"the last good checkpoint (step {last_good}) is kept in {out}"
                    if out is not None and last_good >= 0
                    else "no checkpoint was written"
                )
                raise TrainingDivergedError(
                    f"training diverged at step {step}: non-finite {', '.join(what)}; {where}. "
                    f"Try a lower learning rate (now {settings.lr:g}), a smaller sampler "
                    f"step size, gradient clipping (train.grad_clip), or the energy "
                    f"regularizer (objective.alpha > 0)"
                )
            if settings.optimizer == "lbfgs":
                closure = _reuse_first(loss, objective, model, batch, state, generator, optimizer)
                optimizer.step(closure)  # type: ignore[arg-type]
            else:
                optimizer.step()
            if own is not None and step == 0 and is_distributed():
                # The first call may have initialized them from this rank's batch (NCE's
                # log_z): one average makes every rank hold the same values from now on.
                average_([t for t in (*own.parameters(), *own.buffers()) if t.is_floating_point()])
                broadcast_([t for t in own.buffers() if not t.is_floating_point()])
            if ema_pairs:
                with torch.no_grad():
                    for _, avg, live in ema_pairs:
                        avg.lerp_(live, 1.0 - settings.ema)  # type: ignore[operator]
            # vec is a fresh tensor each step: the first of a window is summed into.
            sums = vec if sums is None or n_sum == 0 else sums.add_(vec)
            n_sum += 1
            done = step + 1
            if done % settings.log_every == 0 or done == settings.steps:
                row = {"step": float(done)}
                means = all_reduce_mean(sums.float() / n_sum).tolist()
                for k, i in zip(METRIC_KEYS, _ROW_FROM_VECTOR, strict=True):
                    row[k] = math.nan if i in absent else float(means[i])
                row["lr"] = lr
                row["seconds"] = time.perf_counter() - t0
                rows.append(row)
                sums, n_sum, absent = None, 0, set()
                if metrics_fh is not None:
                    try:
                        csv.writer(metrics_fh).writerow([f"{row[c]:.6g}" for c in columns])
                        metrics_fh.flush()
                    except OSError as exc:
                        raise RunDirError(
                            f"{metrics_path}: cannot write ({exc.strerror}); the last good "
                            f"checkpoint (step {last_good}) is kept in {out}"
                        ) from exc
                if on_log is not None and main:
                    on_log(row)
                bar.set_postfix(
                    loss=f"{row['loss']:.3f}",
                    gap=f"{row['energy_gap']:.3f}",
                    acc=f"{row['acceptance_rate']:.2f}",
                )
            if settings.checkpoint_every and done % settings.checkpoint_every == 0:
                checkpoint(done)
                last_good = done
            bar.update(1)
            if stop:
                if last_good != done:
                    checkpoint(done)
                    last_good = done
                name = signal.Signals(stop[0]).name
                raise TrainingInterruptedError(
                    f"stopped by {name} at step {done} of {settings.steps}; checkpoint "
                    f"written to {ckpt}; continue with: ebmlab resume {out}",
                    stop[0],
                )
        if settings.steps > start and last_good != settings.steps:
            checkpoint(settings.steps)
        if ema_pairs:
            with torch.no_grad():
                for _, avg, live in ema_pairs:
                    live.copy_(avg)
    finally:
        for sig, old in old_handlers.items():
            signal.signal(sig, old)
        bar.close()
        if metrics_fh is not None:
            metrics_fh.close()
        energy.eval()
    return FitResult(
        max(settings.steps, start),
        time.perf_counter() - t0,
        rows,
        state,
        optimizer.state_dict(),
    )
