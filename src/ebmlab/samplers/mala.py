"""Metropolis-adjusted Langevin algorithm (MALA)."""

from __future__ import annotations

__all__ = ["MALA", "MALAInfo", "MALAState"]

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .._types import EnergyFn
from ..energies.base import energy_and_grad
from ._compile import CompiledKernels
from .base import GradientState, init_gradient_state, metropolis_accept, select

#: Chains of :class:`MALA`: ``x``, ``energy``, ``grad`` (the shared :class:`GradientState`).
MALAState = GradientState


class MALAInfo(NamedTuple):
    """Per-step diagnostics.

    Attributes:
        acceptance_rate: ``min(1, alpha)`` per chain, shape ``(n_chains,)``.
        is_accepted: Whether each chain moved, shape ``(n_chains,)``, bool.
    """

    acceptance_rate: Tensor
    is_accepted: Tensor


def _sq_norm(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1).pow(2).sum(1)


class MALA:
    """Langevin proposal ``y = x - eps grad E(x) + sqrt(2 eps) z`` with a
    Metropolis-Hastings correction, so ``exp(-E)`` is exactly invariant.

    Arguments:
        step_size: ``eps > 0``. Acceptance near 0.57 is optimal in high
            dimension (Roberts & Rosenthal 1998).
        mass: Diagonal mass (preconditioner) ``M``, a float or a tensor shaped
            like one event: the proposal is ``x - eps M^-1 grad E + sqrt(2 eps)
            M^-1/2 z`` (set by :func:`~ebmlab.samplers.warmup`).
        compile: Evaluate energy and gradient through ``torch.compile``
            (falls back to eager with a warning when impossible).

    References:
        Roberts, G. O. & Tweedie, R. L. (1996). Exponential convergence of
        Langevin distributions and their discrete approximations. Bernoulli 2(4).

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> energy = Gaussian.standard(3)
        >>> sampler = MALA(step_size=0.1)
        >>> state, info = sampler.step(sampler.init(torch.zeros(5, 3), energy), energy)
        >>> tuple(info.is_accepted.shape), info.is_accepted.dtype
        ((5,), torch.bool)
    """

    has_acceptance = True

    def __init__(
        self, step_size: float, *, mass: float | Tensor = 1.0, compile: bool = False
    ) -> None:
        if not step_size > 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        if not bool((torch.as_tensor(mass) > 0).all()):
            raise ValueError("mass must be positive")
        self.step_size = float(step_size)
        self.mass = mass
        self.compile = bool(compile)
        self._kernels = CompiledKernels(lambda vg: vg, energy_and_grad)

    def __repr__(self) -> str:
        return f"MALA(step_size={self.step_size})"

    def init(self, x: Tensor, energy: EnergyFn) -> MALAState:
        """Chains at ``x`` ``(n_chains, *event_shape)`` with energy and gradient cached."""
        return init_gradient_state(x, energy)

    def step(
        self,
        state: MALAState,
        energy: EnergyFn,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[MALAState, MALAInfo]:
        """One MALA move of every chain."""
        eps = self.step_size
        x, e, g = state
        noise = torch.empty_like(x).normal_(generator=generator)
        if isinstance(self.mass, Tensor) or self.mass != 1.0:
            mass = torch.as_tensor(self.mass, dtype=x.dtype, device=x.device)
            y = x - eps * g / mass + math.sqrt(2.0 * eps) * noise / mass.sqrt()
            e_y, g_y = self._kernels(energy, y) if self.compile else energy_and_grad(energy, y)
            # q(b | a) = N(b; a - eps M^-1 grad E(a), 2 eps M^-1)
            reverse = (x - y + eps * g_y / mass) * mass.sqrt()
        else:
            y = torch.add(x, g, alpha=-eps).add_(noise, alpha=math.sqrt(2.0 * eps))
            e_y, g_y = self._kernels(energy, y) if self.compile else energy_and_grad(energy, y)
            reverse = x - y + eps * g_y
        # log q(x | y) - log q(y | x) with q(b | a) = N(b; a - eps grad E(a), 2 eps I);
        # the forward residual y - x + eps g is sqrt(2 eps) * noise.
        log_q_ratio = -(_sq_norm(reverse) - 2.0 * eps * _sq_norm(noise)) / (4.0 * eps)
        log_alpha = e - e_y + log_q_ratio
        accept = metropolis_accept(log_alpha, generator)
        new = select(accept, MALAState(y, e_y, g_y), state)
        info = MALAInfo(torch.exp(log_alpha.clamp(max=0.0)).nan_to_num(0.0), accept)
        return new, info
