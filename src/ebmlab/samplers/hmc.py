"""Hamiltonian Monte Carlo with a leapfrog integrator and a Metropolis correction."""

from __future__ import annotations

__all__ = ["HMC", "HMCInfo", "HMCState", "leapfrog"]

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .._types import EnergyFn
from ..energies.base import energy_and_grad
from ._compile import CompiledKernels
from .base import GradientState, init_gradient_state, metropolis_accept, select

#: Chains of :class:`HMC`: ``x``, ``energy``, ``grad`` (the shared :class:`GradientState`).
HMCState = GradientState


class HMCInfo(NamedTuple):
    """Per-step diagnostics.

    Attributes:
        acceptance_rate: ``min(1, exp(-dH))`` per chain, shape ``(n_chains,)``.
        is_accepted: Whether each chain moved, bool, shape ``(n_chains,)``.
        delta_hamiltonian: ``H(end) - H(start)`` per chain (0 for an exact
            integrator), shape ``(n_chains,)``.
    """

    acceptance_rate: Tensor
    is_accepted: Tensor
    delta_hamiltonian: Tensor


def _kinetic(p: Tensor, inv_mass: Tensor | float) -> Tensor:
    return 0.5 * (p * p * inv_mass).reshape(p.shape[0], -1).sum(1)


def leapfrog(
    energy: EnergyFn,
    x: Tensor,
    p: Tensor,
    grad: Tensor,
    step_size: float,
    n_steps: int,
    inv_mass: Tensor | float = 1.0,
    value_and_grad: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Leapfrog (velocity Verlet) integration of ``H(x, p) = E(x) + p^T M^-1 p / 2``.

    Arguments:
        energy: Potential ``(N, *event_shape) -> (N,)``.
        x: Positions, shape ``(N, *event_shape)``.
        p: Momenta, shaped like ``x``.
        grad: ``grad_x E`` at ``x``.
        step_size: Integration step.
        n_steps: Number of leapfrog steps (>= 1).
        inv_mass: Inverse of the diagonal mass, a float or shaped like one event.
        value_and_grad: ``x -> (E(x), grad E(x))``; default
            :func:`~ebmlab.energies.energy_and_grad` of ``energy``.

    Returns:
        ``(x, p, energy, grad)`` at the end of the trajectory. The map is
        volume-preserving and reversible (negate ``p`` to return).
    """
    p = p - 0.5 * step_size * grad
    e = grad.new_empty(())
    for i in range(n_steps):
        x = x + step_size * inv_mass * p
        e, grad = energy_and_grad(energy, x) if value_and_grad is None else value_and_grad(x)
        p = p - (step_size if i < n_steps - 1 else 0.5 * step_size) * grad
    return x, p, e, grad


class HMC:
    """Hamiltonian Monte Carlo: fresh Gaussian momenta, ``n_leapfrog`` leapfrog
    steps, then a Metropolis test on the change in the Hamiltonian.

    Arguments:
        step_size: Leapfrog step ``> 0``.
        n_leapfrog: Leapfrog steps per transition (``>= 1``).
        mass: Diagonal mass, a float or a tensor shaped like one event.
        compile: Evaluate energy and gradient through ``torch.compile``
            (falls back to eager with a warning when impossible).

    References:
        Neal, R. M. (2011). MCMC using Hamiltonian dynamics. Handbook of Markov
        Chain Monte Carlo, ch. 5. https://arxiv.org/abs/1206.1901

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> energy = Gaussian.standard(2)
        >>> sampler = HMC(step_size=0.2, n_leapfrog=5)
        >>> state, info = sampler.step(sampler.init(torch.zeros(3, 2), energy), energy)
        >>> tuple(info.delta_hamiltonian.shape)
        (3,)
    """

    has_acceptance = True

    def __init__(
        self,
        step_size: float,
        n_leapfrog: int = 10,
        *,
        mass: float | Tensor = 1.0,
        compile: bool = False,
    ) -> None:
        if not step_size > 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        if int(n_leapfrog) < 1:
            raise ValueError(f"n_leapfrog must be >= 1, got {n_leapfrog}")
        mass_t = torch.as_tensor(mass, dtype=torch.get_default_dtype())
        if not bool((mass_t > 0).all()):
            raise ValueError("mass must be positive")
        self.step_size = float(step_size)
        self.n_leapfrog = int(n_leapfrog)
        self.mass = mass
        self.compile = bool(compile)
        self._kernels = CompiledKernels(lambda vg: vg, energy_and_grad)

    def __repr__(self) -> str:
        return f"HMC(step_size={self.step_size}, n_leapfrog={self.n_leapfrog})"

    def init(self, x: Tensor, energy: EnergyFn) -> HMCState:
        """Chains at ``x`` ``(n_chains, *event_shape)`` with energy and gradient cached."""
        return init_gradient_state(x, energy)

    def step(
        self,
        state: HMCState,
        energy: EnergyFn,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[HMCState, HMCInfo]:
        """One HMC transition of every chain."""
        x, e, g = state
        if isinstance(self.mass, Tensor):
            mass = self.mass.to(dtype=x.dtype, device=x.device)
            inv_mass: Tensor | float = 1.0 / mass
            std: Tensor | float = mass.sqrt()
        else:
            inv_mass, std = 1.0 / float(self.mass), float(self.mass) ** 0.5
        p0 = torch.empty_like(x).normal_(generator=generator) * std
        vg = (lambda z: self._kernels(energy, z)) if self.compile else None
        x1, p1, e1, g1 = leapfrog(
            energy, x, p0, g, self.step_size, self.n_leapfrog, inv_mass, value_and_grad=vg
        )
        delta_h = (e1 + _kinetic(p1, inv_mass)) - (e + _kinetic(p0, inv_mass))
        log_alpha = -delta_h
        accept = metropolis_accept(log_alpha, generator)
        new = select(accept, HMCState(x1, e1, g1), state)
        info = HMCInfo(torch.exp(log_alpha.clamp(max=0.0)).nan_to_num(0.0), accept, delta_h)
        return new, info
