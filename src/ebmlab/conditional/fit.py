"""Fitting a conditional energy F(x, y) with a loss functional.

:func:`fit_conditional` runs Adam on random minibatches of pairs ``(x, y)``,
minimizing one of the loss functionals of :mod:`ebmlab.conditional.losses` (or
any callable with their signature). It builds on the energies of
:mod:`ebmlab.conditional.energies` and the losses; low energy = good answer.
"""

from __future__ import annotations

__all__ = ["LossFn", "fit_conditional"]

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import TrainingDivergedError
from .losses import build_loss_functional

#: ``loss_fn(energy, x, y, generator) -> scalar`` for :func:`fit_conditional`.
LossFn = Callable[[Any, Tensor, Tensor, "torch.Generator | None"], Tensor]


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
    **loss_options: Any,
) -> Tensor:
    """Train a conditional energy on pairs ``(x, y)`` with a loss functional.

    Adam on random minibatches (drawn with ``generator``). ``loss`` is a name
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
        lr: Adam's learning rate.
        weight_decay: Adam's L2 penalty.
        generator: Random generator for batches and the loss's searches.
        **loss_options: Passed to the loss functional when ``loss`` is a name.

    Returns:
        The loss of every update, shape ``(n_steps,)``.

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
    params = [p for p in energy.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    n = x.shape[0]
    b = min(int(batch_size), n)
    losses = torch.empty(int(n_steps), dtype=torch.float64)
    state = None
    for t in range(int(n_steps)):
        idx = torch.randint(n, (b,), generator=generator).to(x.device)
        value, _, state = objective(energy, x[idx], y[idx], state, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        losses[t] = float(value.detach())
        if not math.isfinite(losses[t]):
            raise TrainingDivergedError(
                f"loss became {losses[t].item()} at update {t}: lower lr (now {lr}) or add "
                "a y_scale term to the energy"
            )
    return losses
