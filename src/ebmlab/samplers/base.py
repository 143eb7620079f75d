"""Shared sampler machinery: the sampler protocol, one Metropolis-Hastings
correction, and one generic run loop.

A sampler object holds hyperparameters only. Chains live in a ``State`` owned
by the caller, per-step diagnostics in an ``Info``; both are ``NamedTuple`` s of
tensors with the chain dimension first::

    state = sampler.init(x, energy)
    for _ in range(n_steps):
        state, info = sampler.step(state, energy, generator=g)

Samplers descend the energy (low energy = high probability) and never build
parameter gradients. Cached ``energy``/``grad`` in a state are valid only for
the parameters that produced them: after an optimizer step, re-``init`` from
``state.x``.
"""

from __future__ import annotations

__all__ = [
    "GradientState",
    "RunResult",
    "Sampler",
    "init_gradient_state",
    "metropolis_accept",
    "run",
    "select",
]

import sys
import warnings
from typing import Any, NamedTuple, Protocol, TypeVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .._types import EnergyFn
from ..energies.base import energy_and_grad

S = TypeVar("S", bound=tuple)


class GradientState(NamedTuple):
    """Chains of a gradient-based sampler: Langevin, MALA, HMC, Gibbs with gradients.

    Attributes:
        x: Configurations, shape ``(n_chains, *event_shape)``.
        energy: ``E(x)``, shape ``(n_chains,)``.
        grad: ``grad_x E(x)``, shaped like ``x``.
    """

    x: Tensor
    energy: Tensor
    grad: Tensor


def init_gradient_state(x: Tensor, energy: EnergyFn) -> GradientState:
    """Chains at ``x`` ``(n_chains, *event_shape)`` with energy and gradient cached.

    Example:
        >>> state = init_gradient_state(torch.zeros(2, 3), lambda x: (x**2).sum(1))
        >>> tuple(state.energy.shape), tuple(state.grad.shape)
        ((2,), (2, 3))
    """
    e, g = energy_and_grad(energy, x.detach())
    return GradientState(x.detach(), e, g)


class Sampler(Protocol):
    """What every MCMC transition offers (see module docstring)."""

    #: Whether ``Info.acceptance_rate`` carries information (False for ULA).
    has_acceptance: bool

    def init(self, x: Tensor, energy: EnergyFn) -> Any:
        """Start chains at ``x`` of shape ``(n_chains, *event_shape)``."""
        ...

    def step(
        self, state: Any, energy: EnergyFn, *, generator: torch.Generator | None = None
    ) -> tuple[Any, Any]:
        """One transition of every chain: ``(new_state, info)``."""
        ...


def metropolis_accept(log_alpha: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Accept each proposal with probability ``min(1, exp(log_alpha))``.

    Arguments:
        log_alpha: Log acceptance ratio per chain, shape ``(N,)``; NaN rejects.
        generator: Random generator.

    Returns:
        Boolean mask, shape ``(N,)``.
    """
    u = torch.rand(
        log_alpha.shape, generator=generator, dtype=log_alpha.dtype, device=log_alpha.device
    )
    # log(u) < log_alpha; NaN compares False, so a non-finite proposal is rejected.
    return torch.log(u) < log_alpha


def select(mask: Tensor, proposed: S, current: S) -> S:
    """Per-chain choice between two states of the same ``NamedTuple`` type.

    Arguments:
        mask: Boolean, shape ``(N,)``; True takes ``proposed``.
        proposed: State whose every field has the chain dimension first.
        current: State of the same type.
    """
    fields = []
    for p, c in zip(proposed, current, strict=True):
        m = mask.reshape(mask.shape + (1,) * (p.dim() - 1))
        fields.append(torch.where(m, p, c))
    return type(current)(*fields)


class RunResult(NamedTuple):
    """What :func:`run` returns.

    Attributes:
        state: Final sampler state.
        samples: Kept configurations, shape ``(n_kept, n_chains, *event_shape)``,
            or ``None`` when ``thin`` is 0.
        acceptance_rate: Mean acceptance per chain over all steps, shape
            ``(n_chains,)`` (ones for samplers without a Metropolis step).
    """

    state: Any
    samples: Tensor | None
    acceptance_rate: Tensor


def run(
    sampler: Sampler,
    energy: EnergyFn,
    x_or_state: Tensor | Any,
    n_steps: int,
    *,
    generator: torch.Generator | None = None,
    thin: int = 0,
    burn_in: int = 0,
    progress: bool = False,
) -> RunResult:
    """Run ``n_steps`` transitions of every chain.

    The loop does no host synchronization: no ``.item()``, no Python branch on
    tensor values. Non-finite chains are reported once, at the end, with a
    ``RuntimeWarning``.

    Arguments:
        sampler: Any sampler (``Langevin``, ``MALA``, ``HMC``...).
        energy: Callable ``(N, *event_shape) -> (N,)``; low energy = probable.
        x_or_state: Initial configurations ``(n_chains, *event_shape)`` or a
            state returned by an earlier run.
        n_steps: Number of transitions.
        generator: Random generator (``None``: torch's global one).
        thin: Keep ``x`` every ``thin`` steps after ``burn_in`` (0 keeps none).
        burn_in: Steps before the first kept sample.
        progress: Show a tqdm progress bar.

    Returns:
        A :class:`RunResult`.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> from ebmlab.samplers import MALA
        >>> g = torch.Generator().manual_seed(0)
        >>> out = run(MALA(0.5), Gaussian.standard(2), torch.zeros(8, 2), 20, thin=5,
        ...           generator=g)
        >>> tuple(out.samples.shape), tuple(out.acceptance_rate.shape)
        ((4, 8, 2), (8,))
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    if thin < 0 or burn_in < 0:
        raise ValueError(f"thin and burn_in must be >= 0, got thin={thin}, burn_in={burn_in}")
    state = sampler.init(x_or_state, energy) if isinstance(x_or_state, Tensor) else x_or_state
    x0 = state[0]
    acc_sum = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)
    track = bool(getattr(sampler, "has_acceptance", True))
    kept: list[Tensor] = []
    steps = (
        tqdm(
            range(n_steps),
            desc="sampling",
            leave=False,
            mininterval=0.1 if sys.stderr.isatty() else 30.0,
        )
        if progress
        else range(n_steps)
    )
    step = sampler.step
    for t in steps:
        state, info = step(state, energy, generator=generator)
        if track:
            acc_sum += info.acceptance_rate
        if thin and t >= burn_in and (t - burn_in + 1) % thin == 0:
            kept.append(state[0])
    acceptance = acc_sum / max(n_steps, 1) if track else torch.ones_like(acc_sum)
    if n_steps and not bool(torch.isfinite(state[0]).all()):
        warnings.warn(
            "some chains reached non-finite values; lower the step size or clamp x",
            RuntimeWarning,
            stacklevel=2,
        )
    samples = torch.stack(kept) if kept else None
    return RunResult(state, samples, acceptance)
