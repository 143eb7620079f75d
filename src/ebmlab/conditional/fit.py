"""Fitting a conditional energy F(x, y) with a loss functional.

:func:`fit_conditional` minimizes one of the loss functionals of
:mod:`ebmlab.conditional.losses` (or any callable with their signature) on
random minibatches of pairs ``(x, y)`` through :func:`ebmlab.train.fit` (Adam,
constant learning rate, the divergence guard, optional checkpoints). It builds
on the energies of :mod:`ebmlab.conditional.energies`, the losses and
:mod:`ebmlab.train`; low energy = good answer.
"""

from __future__ import annotations

__all__ = ["LossFn", "fit_conditional"]

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..train.loop import CHECKPOINT_NAME, TrainSettings, fit
from .losses import build_loss_functional

#: ``loss_fn(energy, x, y, generator) -> scalar`` for :func:`fit_conditional`.
LossFn = Callable[[Any, Tensor, Tensor, "torch.Generator | None"], Tensor]


class _Loss(NamedTuple):
    loss: Tensor


def fit_conditional(
    energy: nn.Module,
    x: Tensor,
    y: Tensor,
    loss: Any = "nll",
    *,
    n_steps: int = 500,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    generator: torch.Generator | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    **loss_options: Any,
) -> Tensor:
    """Train a conditional energy on pairs ``(x, y)`` with a loss functional.

    Adam on random minibatches through :func:`ebmlab.train.fit` (its
    generator seeded from ``generator``). ``loss`` is a name
    from :data:`ebmlab.conditional.LOSS_FUNCTIONALS` (built with
    ``loss_options``, e.g. ``margin=1.0, bounds=(-2, 2)``), a
    :class:`~ebmlab.conditional.LossFunctional`, or any callable
    ``(energy, x, y, state, generator=...) -> (loss, diagnostics, state)``.

    Arguments:
        energy: The conditional energy (trained in place).
        x: Inputs, shape ``(N, x_dim)``.
        y: Answers, shape ``(N, y_dim)`` or ``(N,)`` class indices.
        loss: The loss functional.
        n_steps: Parameter updates.
        batch_size: Pairs per update (at most ``N``).
        lr: Adam's learning rate (constant).
        weight_decay: Decoupled weight decay (AdamW) when > 0.
        generator: Seeds the generator of the batches and the loss's searches.
        checkpoint_dir: Where crash-safe checkpoints (every 1/20th of the
            updates) go; a checkpoint found there is resumed. ``None``: none.
        **loss_options: Passed to the loss functional when ``loss`` is a name.

    Returns:
        The loss of every update, shape ``(n_steps,)`` (after a resume: of
        the updates this call made).

    Raises:
        TrainingDivergedError: When the loss becomes non-finite.

    Example:
        >>> from ebmlab.conditional import QuadraticConditionalEnergy
        >>> F = QuadraticConditionalEnergy(2, 1)
        >>> x = torch.randn(64, 2)
        >>> losses = fit_conditional(F, x, x[:, :1], "nll", n_steps=5, bounds=(-4, 4))
        >>> tuple(losses.shape)
        (5,)
    """
    if x.shape[0] != y.shape[0] or x.shape[0] < 1:
        raise ValueError(
            f"x and y must hold the same number (>= 1) of rows, got {x.shape[0]} and {y.shape[0]}"
        )
    if int(n_steps) < 0 or int(batch_size) < 1 or not lr > 0:
        raise ValueError(
            f"need n_steps >= 0, batch_size >= 1, lr > 0; got {n_steps}, {batch_size}, {lr}"
        )
    objective = build_loss_functional(loss, **loss_options) if isinstance(loss, str) else loss
    if loss_options and not isinstance(loss, str):
        raise ValueError(f"loss options {sorted(loss_options)} need loss given by name")
    steps = int(n_steps)
    if steps == 0:
        return torch.empty(0, dtype=torch.float64)
    seed = int(torch.randint(2**62, (1,), generator=generator)) if generator is not None else 0

    def pairs(model: Any, batch: Any, state: Any, *, generator: Any = None) -> Any:
        xb, yb = batch
        value, diag, state = objective(model, xb, yb, state, generator=generator)
        if not isinstance(getattr(diag, "loss", None), Tensor):  # a callable's own diagnostics
            diag = _Loss(value.detach())
        return value, diag, state

    settings = TrainSettings(
        steps=steps,
        batch_size=min(int(batch_size), x.shape[0]),
        lr=float(lr),
        weight_decay=float(weight_decay),
        lr_schedule="constant",
        warmup_steps=0,
        log_every=1,
        checkpoint_every=max(1, -(-steps // 20)),
        seed=seed,
        device=str(x.device),
    )
    run_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
    resume = run_dir is not None and os.path.isfile(os.path.join(run_dir, CHECKPOINT_NAME))
    if run_dir is not None:
        os.makedirs(run_dir, exist_ok=True)
    result = fit(
        energy, x, pairs, settings, labels=y, run_dir=run_dir, resume=resume, progress=False
    )
    return torch.tensor([row["loss"] for row in result.metrics], dtype=torch.float64)
