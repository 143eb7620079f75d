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

Improved contrastive divergence (Du, Li, Tenenbaum & Mordatch 2021) adds
``kl_weight`` times the KL term that the surrogate loss leaves out: the
negatives come from the sampler's distribution ``q_theta``, which depends on
the parameters, and ``KL(q_theta || p_theta)`` has the gradient

.. math:: \\nabla_\\theta \\Big( \\mathbb E_{q_\\theta}[E_{\\bar\\theta}(x)]
          + \\mathbb E_{q_\\theta}[\\log q_\\theta(x)] \\Big),

with ``E`` evaluated at *frozen* parameters ``theta-bar`` (only the samples'
dependence on ``theta`` is differentiated). The samples are differentiated
through the last sampler transition (for Langevin and MALA, through the drift
``-eps grad_x E_theta(x)``, built with ``create_graph``), and the entropy is the
Kozachenko-Leonenko nearest-neighbour estimate
``D mean log(distance to the nearest other negative)`` (up to a constant).
"""

from __future__ import annotations

__all__ = ["CD_MODES", "CDDiagnostics", "ContrastiveDivergence", "InitFn"]

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from .._types import EnergyFn
from ..energies.base import energy_and_grad
from ..samplers.base import Sampler, run
from ..samplers.langevin import Langevin
from ..samplers.mala import MALA
from ..samplers.replay import ReplayBuffer

#: ``init_fn(n, generator) -> Tensor (n, *event_shape)``: fresh chain starts.
InitFn = Callable[[int, "torch.Generator | None"], Tensor]

#: The ``mode`` values of :class:`ContrastiveDivergence`: ``cd`` (chains from the data),
#: ``pcd`` (persistent chains), ``short-run`` (fresh chains from noise each update).
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
        kl: The improved-CD KL estimate ``mean E(x-) - entropy`` (up to a
            constant; 0 when ``kl_weight`` is 0).
    """

    loss: Tensor
    energy_pos: Tensor
    energy_neg: Tensor
    energy_gap: Tensor
    acceptance_rate: Tensor
    regularization: Tensor
    kl: Tensor


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
        kl_weight: Weight of the improved-CD KL term (``>= 0``; 0 turns it
            off). Needs a :class:`~ebmlab.samplers.Langevin` or
            :class:`~ebmlab.samplers.MALA` sampler and ``n_steps >= 1``.
        data_noise: Standard deviation of Gaussian noise added to each data
            batch before its energy is taken (``>= 0``; image recipes use a
            little, e.g. 0.005 on ``[-1, 1]``, so the model cannot put all its
            mass on the exact pixel grid). Clamped to the sampler's ``clamp``.

    References:
        Du, Y., Li, S., Tenenbaum, J. & Mordatch, I. (2021). Improved
        contrastive divergence training of energy-based models. ICML.
        https://arxiv.org/abs/2012.01316

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
        kl_weight: float = 0.0,
        data_noise: float = 0.0,
    ) -> None:
        if not data_noise >= 0:
            raise ValueError(f"data_noise must be >= 0, got {data_noise}")
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
        if not kl_weight >= 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
        inner = getattr(sampler, "sampler", sampler)  # OnlineStepSize wraps one
        if kl_weight > 0 and not isinstance(inner, Langevin | MALA):
            raise ValueError(
                f"kl_weight > 0 differentiates through the last sampler step and needs a "
                f"Langevin or MALA sampler, got {type(sampler).__name__}"
            )
        if kl_weight > 0 and int(n_steps) < 1:
            raise ValueError(f"kl_weight > 0 needs n_steps >= 1, got {n_steps}")
        self.sampler = sampler
        self.n_steps = int(n_steps)
        self.mode = mode
        self.init_fn = init_fn
        self.alpha = float(alpha)
        self.n_negatives = n_negatives
        self.kl_weight = float(kl_weight)
        self.data_noise = float(data_noise)

    def __repr__(self) -> str:
        kl = f", kl_weight={self.kl_weight}" if self.kl_weight > 0 else ""
        return (
            f"ContrastiveDivergence(mode={self.mode!r}, n_steps={self.n_steps}, "
            f"sampler={self.sampler!r}, alpha={self.alpha}{kl})"
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
        x_neg, acceptance, _ = self._negatives(energy, x_pos, state, generator, False)
        return x_neg, acceptance

    def _negatives(
        self,
        energy: EnergyFn,
        x_pos: Tensor,
        state: ReplayBuffer | None,
        generator: torch.Generator | None,
        keep_last: bool,
    ) -> tuple[Tensor, Tensor, tuple[Any, Any, Any] | None]:
        """Negatives, mean acceptance and, with ``keep_last``, the last transition
        ``(state before, state after, info)``."""
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
        last: tuple[Any, Any, Any] | None = None
        if keep_last:  # the same random draws as one run of n_steps
            out = run(self.sampler, sampling_energy, x0, self.n_steps - 1, generator=generator)
            new, info = self.sampler.step(out.state, sampling_energy, generator=generator)
            acc = info.acceptance_rate if self.sampler.has_acceptance else 1.0
            acceptance = (out.acceptance_rate * (self.n_steps - 1) + acc) / self.n_steps
            last = (out.state, new, info)
            x_neg = new.x
        elif self.n_steps >= 1 and hasattr(self.sampler, "final_move"):
            # Unadjusted Langevin: the last move needs no energy at its end point
            # (same draws, same negatives, one gradient evaluation fewer).
            out = run(self.sampler, sampling_energy, x0, self.n_steps - 1, generator=generator)
            x_neg = self.sampler.final_move(out.state, generator=generator)
            acceptance = out.acceptance_rate
        else:
            out = run(self.sampler, sampling_energy, x0, self.n_steps, generator=generator)
            x_neg, acceptance = out.state.x, out.acceptance_rate
        if state is not None and idx is not None:
            state.push(x_neg, idx, generator=generator)
        return x_neg.detach(), acceptance.mean(), last

    def _differentiable_last_step(self, energy: EnergyFn, last: tuple[Any, Any, Any]) -> Tensor:
        """The negatives as a function of the parameters through the last transition.

        Values equal the sampled negatives; the noise (and, for MALA, the
        accept/reject decision) is held fixed and the drift
        ``-eps grad_x E_theta(x_prev)`` is rebuilt with ``create_graph``.
        """
        before, after, info = last
        sampler = self.sampler
        eps = sampler.step_size  # type: ignore[attr-defined]
        x_prev = before.x.detach()

        def drift(g: Tensor) -> Tensor:
            clip = getattr(sampler, "grad_clip", None)
            if clip is not None:
                norm = g.reshape(g.shape[0], -1).norm(dim=1).clamp_min(1e-12)
                g = g * (clip / norm).clamp(max=1.0).reshape((-1,) + (1,) * (g.dim() - 1))
            clamp_g = getattr(sampler, "grad_clamp", None)
            if clamp_g is not None:
                g = g.clamp(-clamp_g, clamp_g)
            return -eps * g

        with torch.enable_grad():
            x_leaf = x_prev.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(energy(x_leaf).sum(), x_leaf, create_graph=True)
            noise = after.x - x_prev - drift(before.grad)  # the realized noise, held fixed
            x_new = x_prev + drift(g) + noise.detach()
            fixed = torch.zeros_like(after.x, dtype=torch.bool)
            clamp = getattr(sampler, "clamp", None)
            if clamp is not None:  # clamped coordinates do not move with theta
                fixed = fixed | (after.x <= clamp[0]) | (after.x >= clamp[1])
            if isinstance(getattr(sampler, "sampler", sampler), MALA):  # rejected stay put
                shape = (-1,) + (1,) * (x_prev.dim() - 1)
                fixed = fixed | ~info.is_accepted.reshape(shape)
            return torch.where(fixed, after.x, x_new)

    def _kl_term(self, energy: EnergyFn, x_kl: Tensor) -> tuple[Tensor, Tensor]:
        """Surrogate with the gradient of ``KL(q_theta || p)`` and the KL estimate (detached).

        ``E(x)`` at frozen parameters: its gradient in theta through ``x_kl`` is
        ``grad_x E . d x_kl / d theta``, which ``(grad_x E).detach() . x_kl`` has.
        """
        n = x_kl.shape[0]
        e, g = energy_and_grad(energy, x_kl.detach())
        with torch.enable_grad():
            energy_term = (g * x_kl).reshape(n, -1).sum(1).mean()
            flat = x_kl.reshape(n, -1)
            # Both sides carry the gradient: a sample moves its own nearest-neighbour
            # distance and those of the samples it is nearest to.
            dist = torch.cdist(flat, flat)
            self_mask = torch.eye(n, dtype=torch.bool, device=dist.device)
            dist = dist.masked_fill(self_mask, math.inf)
            log_nn = torch.log(dist.min(1).values.clamp_min(1e-12))
            entropy = flat.shape[1] * log_nn.mean()
            surrogate = energy_term - entropy
        return surrogate, (e.mean() - entropy).detach()

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
        use_kl = self.kl_weight > 0
        x_neg, acceptance, last = self._negatives(energy, x_pos, state, generator, use_kl)
        if self.data_noise > 0:
            noise = torch.empty_like(x_pos).normal_(generator=generator)
            x_pos = x_pos + self.data_noise * noise
            clamp = getattr(self.sampler, "clamp", None)
            if clamp is not None:
                x_pos = x_pos.clamp(*clamp)
        e = energy(torch.cat([x_pos, x_neg]))
        e_pos, e_neg = e[: x_pos.shape[0]], e[x_pos.shape[0] :]
        loss = e_pos.mean() - e_neg.mean()
        reg = self.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        if self.alpha > 0:
            loss = loss + reg
        kl = torch.zeros_like(loss).detach()
        if use_kl:
            assert last is not None
            bare = energy.module if isinstance(energy, DistributedDataParallel) else energy
            x_kl = self._differentiable_last_step(bare, last)
            surrogate, kl = self._kl_term(bare, x_kl)
            loss = loss + self.kl_weight * surrogate
        mp, mn = e_pos.mean().detach(), e_neg.mean().detach()
        diag = CDDiagnostics(loss.detach(), mp, mn, mn - mp, acceptance, reg.detach(), kl)
        return loss, diag, state
