"""The energy loss: push the data's energy down, nothing up (LeCun et al. 2006).

``loss = mean E(y)`` over a data batch. On a flexible energy it collapses (the
energy becomes flat); it is safe for energies whose volume of low energy is
limited by their architecture or a regularizer, such as those of
:mod:`ebmlab.energies.latent` (:class:`~ebmlab.energies.PCAEnergy`,
:class:`~ebmlab.energies.KMeansEnergy`,
:class:`~ebmlab.energies.SparseCodingEnergy`). :class:`EnergyLoss` is the
objective; :func:`fit_energy_loss` trains an energy with it through
:func:`ebmlab.train.fit` (Adam on random minibatches, constant rate).

References:
    LeCun, Y., Chopra, S., Hadsell, R., Ranzato, M. and Huang, F. J. (2006).
    A tutorial on energy-based learning. http://yann.lecun.com/exdb/publis/pdf/lecun-06.pdf
"""

from __future__ import annotations

__all__ = ["EnergyLoss", "EnergyLossDiagnostics", "fit_energy_loss"]

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..train.loop import TrainSettings, fit


class EnergyLossDiagnostics(NamedTuple):
    """Diagnostics of one evaluation (0-d tensors).

    Attributes:
        loss: The mean energy of the batch (detached).
        energy_pos: The same: the data's mean energy.
    """

    loss: Tensor
    energy_pos: Tensor


class EnergyLoss:
    """``loss = mean E(y)`` over the batch: the energy loss, no push-up term.

    Example:
        >>> from ebmlab.energies import PCAEnergy
        >>> loss, diag, state = EnergyLoss()(PCAEnergy(3, 1), torch.randn(8, 3), None)
        >>> loss.shape, state is None
        (torch.Size([]), True)
    """

    def __call__(
        self,
        energy: Any,
        batch: Tensor,
        state: Any,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, EnergyLossDiagnostics, Any]:
        """Loss, diagnostics and the (unchanged) state for a data batch ``(B, D)``."""
        loss = energy(batch).mean()
        d = loss.detach()
        return loss, EnergyLossDiagnostics(d, d), state

    def __repr__(self) -> str:
        return "EnergyLoss()"


def fit_energy_loss(
    energy: nn.Module,
    data: Tensor,
    *,
    n_steps: int = 500,
    batch_size: int = 128,
    lr: float = 1e-2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Minimize the energy loss ``mean E(y)`` over the data (no push-up term).

    Safe only for energies whose volume of low energy is limited by their
    architecture or a regularizer (:mod:`ebmlab.energies.latent`); on a
    flexible energy it collapses. Trains through :func:`ebmlab.train.fit`:
    Adam at a constant rate on random minibatches, the loop's divergence guard.

    Arguments:
        energy: Energy ``(N, D) -> (N,)`` (trained in place).
        data: Observations ``(N, D)``.
        n_steps: Adam updates.
        batch_size: Rows per update (at most ``N``).
        lr: Learning rate.
        generator: Seeds the loop's generator (the minibatches); ``None``: seed 0.

    Returns:
        Mean energy of every minibatch, shape ``(n_steps,)``.

    Raises:
        ValueError: For bad shapes or settings.
        TrainingDivergedError: When the energy or its gradient becomes non-finite.

    Example:
        >>> from ebmlab.energies import PCAEnergy
        >>> E = PCAEnergy(2, 1)
        >>> t = torch.randn(200, 1)
        >>> losses = fit_energy_loss(E, torch.cat([t, 2 * t], 1), n_steps=200, lr=0.05)
        >>> losses[-1].item() < 1e-3
        True
    """
    if data.dim() != 2 or data.shape[0] < 1:
        raise ValueError(f"data must have shape (N >= 1, D), got {tuple(data.shape)}")
    if int(n_steps) < 0 or int(batch_size) < 1 or not lr > 0:
        raise ValueError(
            f"need n_steps >= 0, batch_size >= 1, lr > 0; got {n_steps}, {batch_size}, {lr}"
        )
    if int(n_steps) == 0:
        return torch.empty(0, dtype=torch.float64)
    seed = 0 if generator is None else int(torch.randint(2**31 - 1, (1,), generator=generator))
    settings = TrainSettings(
        steps=int(n_steps),
        batch_size=min(int(batch_size), data.shape[0]),
        lr=float(lr),
        lr_schedule="constant",
        warmup_steps=0,
        log_every=1,
        checkpoint_every=0,
        seed=seed,
        device=str(data.device),
    )
    result = fit(energy, data, EnergyLoss(), settings, progress=False)
    return torch.tensor([row["loss"] for row in result.metrics], dtype=torch.float64)
