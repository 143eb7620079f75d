"""Contrastive divergence: maximum likelihood with MCMC negatives.

The gradient of the negative log-likelihood of ``p(x) = exp(-E(x)) / Z`` is

.. math:: \\nabla_\\theta [-\\log p(x)] = \\nabla_\\theta E(x)
          - \\mathbb{E}_{x' \\sim p}[\\nabla_\\theta E(x')],

so the surrogate loss ``mean E(x+) - mean E(x-)`` with negatives ``x-`` drawn by
MCMC from the model (and held fixed) has the maximum-likelihood gradient.
Three ways to start the chains give the three classic forms:

* ``"cd"`` (CD-k, Hinton 2002): start at the data batch, run k steps;
* ``"pcd"`` (persistent CD, Tieleman 2008; replay buffer, Du & Mordatch
  2019): start where the previous chains stopped;
* ``"short-run"`` (Nijkamp et al. 2019): start from noise every time.

An optional energy-magnitude regularizer ``alpha * (E+^2 + E-^2)`` keeps
energies near zero (Du & Mordatch 2019).
"""

from __future__ import annotations

__all__ = ["CD_MODES", "CDDiagnostics", "ContrastiveDivergence", "InitFn"]

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from .._types import EnergyFn
from ..samplers.base import Sampler, run
from ..samplers.replay import ReplayBuffer

#: ``init_fn(n, generator) -> Tensor (n, *event_shape)``: fresh chain starts.
InitFn = Callable[[int, "torch.Generator | None"], Tensor]

CD_MODES = ("cd", "pcd", "short-run")


class CDDiagnostics(NamedTuple):
    """Diagnostics of one contrastive-divergence evaluation (0-d tensors).

    Attributes:
        loss: The scalar loss that was returned (detached).
        energy_pos: Mean energy of the data batch.
        energy_neg: Mean energy of the negatives.
        energy_gap: ``energy_neg - energy_pos``; near 0 when the model's samples
            look like data, large positive when the sampler lags behind.
        acceptance_rate: Mean sampler acceptance (1 for ULA).
        regularization: Value of ``alpha * (E+^2 + E-^2)``.
    """

    loss: Tensor
    energy_pos: Tensor
    energy_neg: Tensor
    energy_gap: Tensor
    acceptance_rate: Tensor
    regularization: Tensor


class ContrastiveDivergence:
    """Contrastive divergence in its three forms, behind one call.

    Arguments:
        sampler: Any sampler (``Langevin``, ``MALA``, ``HMC``).
        n_steps: MCMC steps per parameter update (k).
        mode: ``"cd"``, ``"pcd"`` or ``"short-run"``.
        init_fn: ``(n, generator) -> (n, *event_shape)`` fresh starts; used by
            ``short-run`` every time and by ``pcd`` to fill and refresh the
            buffer. Required for those two modes.
        alpha: Weight of the energy-magnitude regularizer (``>= 0``).
        n_negatives: Negatives per update (default: the data batch size).

    Example:
        >>> from ebmlab.energies import MLPEnergy
        >>> from ebmlab.samplers import Langevin
        >>> energy = MLPEnergy(2, hidden=(16,))
        >>> cd = ContrastiveDivergence(Langevin(0.01), n_steps=5, mode="short-run",
        ...                            init_fn=lambda n, g: torch.randn(n, 2, generator=g))
        >>> loss, diag, state = cd(energy, torch.randn(32, 2), None)
        >>> loss.shape, diag.energy_gap.shape
        (torch.Size([]), torch.Size([]))
    """

    def __init__(
        self,
        sampler: Sampler,
        n_steps: int = 20,
        *,
        mode: str = "pcd",
        init_fn: InitFn | None = None,
        alpha: float = 0.0,
        n_negatives: int | None = None,
    ) -> None:
        if mode not in CD_MODES:
            raise ValueError(f"mode must be one of {list(CD_MODES)}, got {mode!r}")
        if int(n_steps) < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if mode != "cd" and init_fn is None:
            raise ValueError(f"mode {mode!r} needs init_fn for fresh chain starts")
        if n_negatives is not None and int(n_negatives) < 1:
            raise ValueError(f"n_negatives must be >= 1, got {n_negatives}")
        self.sampler = sampler
        self.n_steps = int(n_steps)
        self.mode = mode
        self.init_fn = init_fn
        self.alpha = float(alpha)
        self.n_negatives = n_negatives

    def __repr__(self) -> str:
        return (
            f"ContrastiveDivergence(mode={self.mode!r}, n_steps={self.n_steps}, "
            f"sampler={self.sampler!r}, alpha={self.alpha})"
        )

    def negatives(
        self,
        energy: EnergyFn,
        x_pos: Tensor,
        state: ReplayBuffer | None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw negatives ``(n, *event_shape)`` and the mean acceptance (0-d)."""
        n = self.n_negatives or x_pos.shape[0]
        idx: Tensor | None = None
        if self.mode == "cd":
            if n != x_pos.shape[0]:
                raise ValueError("mode 'cd' starts at the data: n_negatives must equal the batch")
            x0 = x_pos.detach()
        elif self.mode == "pcd":
            if state is None:
                raise ValueError("mode 'pcd' needs a ReplayBuffer state (see init_state)")
            x0, idx = state.sample(n, generator=generator)
        else:
            assert self.init_fn is not None
            x0 = self.init_fn(n, generator).to(x_pos.device, x_pos.dtype)
        # Sample with the bare module: a DistributedDataParallel wrapper must only
        # see the loss's forward pass, never the sampler's.
        sampling_energy = energy.module if isinstance(energy, DistributedDataParallel) else energy
        out = run(self.sampler, sampling_energy, x0, self.n_steps, generator=generator)
        x_neg = out.state.x
        if state is not None and idx is not None:
            state.push(x_neg, idx, generator=generator)
        return x_neg.detach(), out.acceptance_rate.mean()

    def init_state(
        self,
        capacity: int,
        *,
        reinit_prob: float = 0.0,
        reservoir: bool = False,
        generator: torch.Generator | None = None,
    ) -> ReplayBuffer | None:
        """The state this objective advances: a replay buffer for ``pcd``, else None."""
        if self.mode != "pcd":
            return None
        assert self.init_fn is not None
        return ReplayBuffer(
            capacity,
            self.init_fn,
            reinit_prob=reinit_prob,
            reservoir=reservoir,
            generator=generator,
        )

    def __call__(
        self,
        energy: EnergyFn,
        x_pos: Tensor,
        state: ReplayBuffer | None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, CDDiagnostics, ReplayBuffer | None]:
        """Loss for one data batch.

        Arguments:
            energy: The energy being trained.
            x_pos: Data batch, shape ``(B, *event_shape)``.
            state: Replay buffer for ``pcd`` (from :meth:`init_state`), else None.
            generator: Random generator for the sampler and the buffer.

        Returns:
            ``(loss, diagnostics, state)``; ``loss`` is a 0-d tensor whose
            gradient in the energy's parameters estimates the negative
            log-likelihood gradient.
        """
        x_neg, acceptance = self.negatives(energy, x_pos, state, generator=generator)
        e = energy(torch.cat([x_pos, x_neg]))
        e_pos, e_neg = e[: x_pos.shape[0]], e[x_pos.shape[0] :]
        loss = e_pos.mean() - e_neg.mean()
        reg = self.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        if self.alpha > 0:
            loss = loss + reg
        mp, mn = e_pos.mean().detach(), e_neg.mean().detach()
        diag = CDDiagnostics(loss.detach(), mp, mn, mn - mp, acceptance, reg.detach())
        return loss, diag, state
