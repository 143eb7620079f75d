"""Warm-up adaptation of step size and diagonal mass matrix, pooled over chains.

:func:`warmup` runs a gradient sampler (:class:`~ebmlab.samplers.MALA`,
:class:`~ebmlab.samplers.HMC`, :class:`~ebmlab.samplers.ChEESHMC`) for
``n_steps`` transitions while it tunes, then returns a copy of the sampler with
the tuned hyperparameters frozen, the chains where warm-up left them and a
summary. Sampling after warm-up uses fixed hyperparameters, so it is a valid
MCMC chain; the warm-up draws themselves are discarded.

The schedule is Stan's windowed scheme with every window pooled across chains
(the EBM setting: hundreds to thousands of chains, one batched gradient per
step):

1. an initial step size by doubling/halving until the pooled acceptance of one
   step crosses the target (Hoffman & Gelman 2014, Alg. 4, on the chain mean);
2. a fast window (15 % of the steps) adapting only the step size, by dual
   averaging of ``target - mean_chains(acceptance)`` (Nesterov 2009; Hoffman &
   Gelman 2014: ``gamma = 0.05, t0 = 10, kappa = 0.75``);
3. slow windows of doubling length (first 25 steps, the last one stretched to
   the end of the slow phase): at each window's end the inverse mass
   ``M^-1`` becomes the per-coordinate variance of all draws in the window,
   all chains pooled (``n = window x chains`` draws, shrunk towards ``1e-3`` by
   ``n / (n + 5)`` as Stan does), and dual averaging restarts at
   ``mu = log(10 eps)``;
4. a final fast window (10 %) adapting the step size under the final mass;
   the frozen step size is the dual-averaging iterate ``exp(log_eps_bar)``.

ChEES-HMC additionally adapts its trajectory length during all windows (see
:mod:`ebmlab.samplers.chees`).

References:
    Hoffman, M. D. & Gelman, A. (2014). The No-U-Turn sampler. JMLR 15,
    1593-1623. https://jmlr.org/papers/v15/hoffman14a.html

    Stan Reference Manual, "HMC algorithm parameters: automatic parameter
    tuning". https://mc-stan.org/docs/reference-manual/
"""

from __future__ import annotations

__all__ = ["DEFAULT_TARGET_ACCEPT", "DualAveraging", "WarmupResult", "warmup"]

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from ..errors import EbmlabError

log = logging.getLogger("ebmlab.samplers")

#: Target mean acceptance per sampler class name (Roberts & Rosenthal 1998 for
#: MALA; Stan's 0.8 for HMC; Hoffman et al. 2021 for ChEES-HMC).
DEFAULT_TARGET_ACCEPT: dict[str, float] = {"MALA": 0.574, "HMC": 0.8, "ChEESHMC": 0.651}


class AdaptationError(EbmlabError, ValueError):
    """The sampler cannot be adapted (no step size or no acceptance)."""


class DualAveraging:
    """Nesterov's dual averaging of ``log(step_size)`` (Hoffman & Gelman 2014).

    Arguments:
        step_size: Initial step size; the iterates shrink toward ``log(10 eps)``.
        target: Target acceptance.
        gamma, t0, kappa: Stan's defaults.
    """

    def __init__(
        self,
        step_size: float,
        target: float,
        gamma: float = 0.05,
        t0: float = 10.0,
        kappa: float = 0.75,
    ) -> None:
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.restart(step_size)

    def restart(self, step_size: float) -> None:
        """Forget the history; the next iterates center on ``log(10 step_size)``."""
        self.mu = math.log(10.0 * step_size)
        self.t = 0
        self.h_bar = 0.0
        self.log_eps = math.log(step_size)
        self.log_eps_bar = 0.0

    def update(self, acceptance: float) -> float:
        """Feed one pooled acceptance; return the next step size."""
        self.t += 1
        w = 1.0 / (self.t + self.t0)
        self.h_bar = (1.0 - w) * self.h_bar + w * (self.target - acceptance)
        self.log_eps = self.mu - math.sqrt(self.t) / self.gamma * self.h_bar
        eta = self.t ** (-self.kappa)
        self.log_eps_bar = eta * self.log_eps + (1.0 - eta) * self.log_eps_bar
        return math.exp(self.log_eps)

    @property
    def final(self) -> float:
        """The averaged iterate ``exp(log_eps_bar)`` (the step size to freeze)."""
        return math.exp(self.log_eps_bar) if self.t else math.exp(self.log_eps)


@dataclass
class WarmupResult:
    """What :func:`warmup` returns.

    Attributes:
        sampler: A copy of the sampler with the adapted hyperparameters, frozen.
        state: Chains at the end of warm-up.
        step_size: Adapted step size.
        mass: Adapted diagonal mass, shaped like one event (``None``: not adapted).
        acceptance_rate: Mean acceptance over the final fast window.
        trajectory_length: Adapted ChEES trajectory length (``None`` otherwise).
        n_steps: Warm-up transitions taken (initial step-size search included).
        n_grad: Gradient evaluations per chain spent in warm-up.
    """

    sampler: Any
    state: Any
    step_size: float
    mass: Tensor | None
    acceptance_rate: float
    trajectory_length: float | None
    n_steps: int
    n_grad: int

    def summary(self) -> str:
        """One line: the adapted parameters."""
        parts = [f"step_size={self.step_size:.4g}"]
        if self.mass is not None:
            inv = 1.0 / self.mass.reshape(-1)
            parts.append(
                f"inverse mass (variance) in [{float(inv.min()):.3g}, {float(inv.max()):.3g}]"
            )
        if self.trajectory_length is not None:
            parts.append(f"trajectory_length={self.trajectory_length:.4g}")
        parts.append(f"acceptance={self.acceptance_rate:.3f}")
        parts.append(f"{self.n_steps} warm-up steps ({self.n_grad} gradients per chain)")
        return "adapted " + type(self.sampler).__name__ + ": " + ", ".join(parts)


def _grads_per_step(sampler: Any, info: Any) -> int:
    n = getattr(info, "n_leapfrog", None)
    if n is not None:
        return int(n[0])
    return int(getattr(sampler, "n_leapfrog", 1))


def _windows(n_slow: int, first: int = 25) -> list[int]:
    """End offsets of the doubling slow windows covering ``n_slow`` steps."""
    ends, start, size = [], 0, first
    while start < n_slow:
        if start + size + 2 * size > n_slow:  # the next one would not fit: stretch
            size = n_slow - start
        ends.append(start + size)
        start, size = start + size, 2 * size
    return ends


def warmup(
    sampler: Any,
    energy: EnergyFn,
    x_or_state: Tensor | Any,
    n_steps: int = 1000,
    *,
    target_accept: float | None = None,
    adapt_mass: bool = True,
    adapt_step_size: bool = True,
    generator: torch.Generator | None = None,
    verbose: bool = False,
) -> WarmupResult:
    """Tune the step size (and diagonal mass) of ``sampler`` on ``energy``.

    Arguments:
        sampler: A :class:`~ebmlab.samplers.MALA`, :class:`~ebmlab.samplers.HMC`
            or :class:`~ebmlab.samplers.ChEESHMC`; its ``step_size`` is the
            starting point (any positive value: the initial search corrects a
            bad one). It is not modified.
        energy: Callable ``(N, *event_shape) -> (N,)``; low energy = probable.
        x_or_state: Starting points ``(n_chains, *event_shape)`` or a state.
        n_steps: Warm-up transitions (the schedule needs >= 20; with fewer than
            150 only the step size is adapted).
        target_accept: Pooled target acceptance (default from
            :data:`DEFAULT_TARGET_ACCEPT`: 0.574 MALA, 0.8 HMC, 0.651 ChEES).
        adapt_mass: Adapt a diagonal mass from the pooled warm-up draws.
        adapt_step_size: Adapt the step size (False keeps the given one).
        generator: Random generator.
        verbose: Also print the summary (it is always logged at INFO level to
            the ``ebmlab.samplers`` logger).

    Returns:
        A :class:`WarmupResult`; sample on with ``run(result.sampler, energy,
        result.state, n)``.

    Raises:
        AdaptationError: For a sampler without ``step_size`` or acceptance.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> from ebmlab.samplers import MALA
        >>> g = torch.Generator().manual_seed(0)
        >>> out = warmup(MALA(1e-4), Gaussian.standard(3), torch.zeros(64, 3), 200, generator=g)
        >>> 0.2 < out.step_size < 5.0, tuple(out.mass.shape)
        (True, (3,))
    """
    name = type(sampler).__name__
    if not hasattr(sampler, "step_size") or not getattr(sampler, "has_acceptance", False):
        raise AdaptationError(
            f"warm-up adapts samplers with a step size and a Metropolis test "
            f"(MALA, HMC, ChEESHMC), got {name}"
        )
    if n_steps < 20:
        raise AdaptationError(f"warm-up needs n_steps >= 20, got {n_steps}")
    target = DEFAULT_TARGET_ACCEPT.get(name, 0.8) if target_accept is None else target_accept
    if not 0.0 < target < 1.0:
        raise AdaptationError(f"target_accept must be in (0, 1), got {target}")
    work = copy.copy(sampler)
    state = work.init(x_or_state, energy) if isinstance(x_or_state, Tensor) else x_or_state
    x = state[0]
    is_chees = hasattr(work, "adapt_trajectory")
    if is_chees:
        work.start_adaptation()
    n_grad, taken = 0, 0

    def step(st: Any) -> tuple[Any, Any, float]:
        nonlocal n_grad, taken
        new, info = work.step(st, energy, generator=generator)
        n_grad += _grads_per_step(work, info)
        taken += 1
        acc = float(info.acceptance_rate.mean())
        if is_chees:
            work.adapt_trajectory(st, new, info)
        return new, info, acc

    # 1. initial step size: move by factors of 2 until the acceptance crosses the target.
    eps = float(work.step_size)
    if adapt_step_size:
        work.step_size = eps
        state, _, acc = step(state)
        direction = 1.0 if acc > target else -1.0
        for _ in range(30):
            eps *= 2.0**direction
            work.step_size = eps
            state, _, acc = step(state)
            if (acc > target) != (direction > 0):
                break
    budget = max(n_steps - taken, 20)
    fast1, fast2 = int(0.15 * budget), int(0.1 * budget)
    n_slow = budget - fast1 - fast2
    do_mass = adapt_mass and budget >= 150
    if not do_mass:
        fast1, n_slow, fast2 = budget, 0, 0
    ends = set(_windows(n_slow)) if do_mass else set()
    da = DualAveraging(eps, target)
    mass: Tensor | None = None
    s1 = torch.zeros_like(x)
    s2 = torch.zeros_like(x)
    n_win = 0
    acc_tail: list[float] = []
    for t in range(budget):
        state, _, acc = step(state)
        if adapt_step_size:
            work.step_size = da.update(acc)
        if t >= budget - max(fast2, budget // 10):
            acc_tail.append(acc)
        if fast1 <= t < fast1 + n_slow:
            xs = state[0].to(torch.float64)
            s1 += xs.sum(0, keepdim=True).to(s1.dtype)
            s2 += (xs * xs).sum(0, keepdim=True).to(s2.dtype)
            n_win += xs.shape[0]
            if (t - fast1 + 1) in ends:
                var = (s2[0] / n_win - (s1[0] / n_win) ** 2).clamp_min(1e-12)
                var = (n_win / (n_win + 5.0)) * var + 1e-3 * (5.0 / (n_win + 5.0))
                mass = (1.0 / var).to(x.dtype)
                if is_chees:  # keep T in units of the slowest oscillation period
                    old_inv = 1.0 / torch.as_tensor(work.mass, dtype=var.dtype)
                    ratio = (old_inv.to(var.device) / var).min()
                    work.rescale_trajectory(math.sqrt(float(ratio)))
                work.mass = mass
                s1.zero_()
                s2.zero_()
                n_win = 0
                if adapt_step_size:
                    da.restart(float(work.step_size))
    if adapt_step_size:
        work.step_size = da.final
    if is_chees:
        work.freeze_trajectory()
    result = WarmupResult(
        sampler=work,
        state=state,
        step_size=float(work.step_size),
        mass=mass,
        acceptance_rate=sum(acc_tail) / len(acc_tail) if acc_tail else acc,
        trajectory_length=getattr(work, "trajectory_length", None) if is_chees else None,
        n_steps=taken,
        n_grad=n_grad,
    )
    log.info(result.summary())
    if verbose:
        print(result.summary())
    return result
