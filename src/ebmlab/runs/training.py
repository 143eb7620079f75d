"""Training a run: a fresh run into a directory, or resuming one from its checkpoint.

:func:`train_run` writes the resolved ``config.yaml``, builds the run
(:mod:`ebmlab.runs.build`), trains it with :func:`ebmlab.train.fit` (checkpoints,
metrics, divergence guard, several processes under ``torchrun``), saves
``model.safetensors`` and ``state.json`` and evaluates it
(:mod:`ebmlab.runs.evaluate`); :func:`resume_run` continues from the last
checkpoint and gives the same weights as never stopping. Both hold an exclusive
lock on the run directory (a second process gets a one-line error), and the
``state.json`` of a trained run records the SHA-256 of ``config.yaml`` and both
``.safetensors`` files, checked when they are loaded.
"""

from __future__ import annotations

__all__ = ["resume_run", "train_run"]

import os
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..config import RunConfig
from ..errors import ConfigError, RunDirError
from ..train import TrainSettings, atomic_save_tensors, atomic_write_json, atomic_write_text, fit
from ..train.checkpoint import file_sha256, run_lock
from ..train.distributed import barrier, is_main_process, rank_seed, world_size
from ..train.loop import CHECKPOINT_NAME, METRICS_NAME
from .build import (
    Run,
    _check_recorded_sha256,
    _objective,
    _prepare,
    _read_config,
    _read_state,
    _set_threads,
    _tensorboard,
    _versions,
    run_generator,
)
from .evaluate import evaluate_run


def _write_state(out: Path, cfg: RunConfig, step: int, status: str, seconds: float) -> None:
    sums = {}
    if status == "trained":
        names = ("config.yaml", "model.safetensors", CHECKPOINT_NAME)
        sums = {n: file_sha256(out / n) for n in names}
    atomic_write_json(
        out / "state.json",
        {
            "status": status,
            "step": step,
            "steps": cfg.train.steps,
            "seed": cfg.seed,
            "train_seconds": seconds,
            "files": {
                "model": "model.safetensors",
                "checkpoint": CHECKPOINT_NAME,
                "checkpoint_contents": "model, optimizer, replay buffer, RNG state",
                "metrics": METRICS_NAME,
                "config": "config.yaml",
            },
            "sha256": sums,
            "versions": _versions(),
        },
    )


def _train(run_: Run, dev: torch.device, out: Path, *, resume: bool, progress: bool) -> float:
    cfg = run_.config
    event_shape = tuple(run_.train.shape[1:])
    _set_threads(cfg, run_.energy.dim)
    objective = _objective(cfg, run_.bounds, event_shape, dev, data=run_.train)
    # With several processes each rank holds its share of the chains and batch.
    world = world_size()
    chains = max(1, (cfg.objective.n_chains or cfg.train.batch_size) // world)
    local_batch = max(1, cfg.train.batch_size // world)
    options = {"reservoir": cfg.objective.reservoir} if run_.train_labels is None else {}
    state = objective.init_state(
        chains,
        reinit_prob=cfg.objective.reinit_prob,
        generator=run_generator(dev, rank_seed(cfg.seed + 1)),
        **options,
    )
    if state is not None and run_.train_labels is None:
        objective.n_negatives = min(chains, local_batch)
    t = cfg.train
    settings = TrainSettings(
        steps=t.steps,
        batch_size=t.batch_size,
        lr=t.lr,
        betas=t.betas,
        weight_decay=t.weight_decay,
        lr_schedule=t.lr_schedule,
        warmup_steps=t.warmup_steps,
        grad_clip=t.grad_clip,
        log_every=t.log_every,
        checkpoint_every=t.checkpoint_every,
        seed=cfg.seed,
        device=str(dev),
        ema=t.ema,
    )
    prior = 0.0
    if resume:
        try:
            prior = float(_read_state(out).get("train_seconds", 0.0))
        except (TypeError, ValueError):
            raise RunDirError(f"{out / 'state.json'}: corrupt (train_seconds)") from None
    main = is_main_process()
    if main:
        _write_state(out, cfg, 0, "running", prior)
    tb = _tensorboard(cfg, out) if main else None
    if tb is not None:
        tb.log_config(cfg.to_yaml())
    try:
        result = fit(
            run_.energy,
            run_.train,
            objective,
            settings,
            state=state,
            run_dir=out,
            resume=resume,
            progress=progress,
            on_log=tb.log_metrics if tb is not None else None,
            labels=run_.train_labels,  # JEM runs: batches (x, y)
        )
    finally:
        if tb is not None:
            tb.close()
    seconds = prior + result.seconds
    if main:
        atomic_save_tensors(
            out / "model.safetensors",
            dict(run_.energy.state_dict()),
            {"format": "ebmlab-energy", "ebmlab": __version__},
        )
        _write_state(out, cfg, result.step, "trained", seconds)
    barrier()
    return seconds


def _lock(out: Path) -> Any:
    """The run directory's lock on the main process (other ranks follow rank 0).

    Read from ``RANK`` (set by ``torchrun``): the process group may not exist yet.
    """
    import contextlib

    main = os.environ.get("RANK", "0") == "0" and is_main_process()
    return run_lock(out) if main else contextlib.nullcontext()


def train_run(
    cfg: RunConfig, out: str | os.PathLike[str], *, progress: bool = True, evaluate: bool = True
) -> dict[str, Any]:
    """Train a fresh run into ``out`` and (by default) evaluate it.

    Returns:
        The report (also written to ``report.json``), or ``{}`` without evaluation.
    """
    out_p = Path(out)
    run_, dev = _prepare(cfg)  # bad data fails here, before anything is written
    out_p.mkdir(parents=True, exist_ok=True)
    with _lock(out_p):
        if is_main_process():
            atomic_write_text(out_p / "config.yaml", cfg.to_yaml())
        seconds = _train(run_, dev, out_p, resume=False, progress=progress)
    if not (evaluate and is_main_process()):
        return {}
    return evaluate_run(out_p, run_, train_seconds=seconds, progress=progress)


def resume_run(
    out: str | os.PathLike[str],
    *,
    steps: int | None = None,
    progress: bool = True,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Continue a run from its last checkpoint (optionally extended to ``steps`` in all)."""
    out_p = Path(out)
    cfg = _read_config(out_p)
    if not (out_p / CHECKPOINT_NAME).is_file():
        raise RunDirError(f"{out_p}: no {CHECKPOINT_NAME} to resume from")
    _check_recorded_sha256(out_p, CHECKPOINT_NAME)
    if steps is not None and steps < 0:
        raise ConfigError(f"--steps must be >= 0, got {steps}")
    with _lock(out_p):
        if steps is not None:
            cfg.train.steps = steps
            if is_main_process():  # the recorded checksums no longer hold
                atomic_write_json(out_p / "state.json", {**_read_state(out_p), "sha256": {}})
                atomic_write_text(out_p / "config.yaml", cfg.to_yaml())
        run_, dev = _prepare(cfg)
        seconds = _train(run_, dev, out_p, resume=True, progress=progress)
    if not (evaluate and is_main_process()):
        return {}
    return evaluate_run(out_p, run_, train_seconds=seconds, progress=progress)
