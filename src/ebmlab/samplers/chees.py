"""ChEES-HMC: HMC whose trajectory length is tuned across chains.

Every transition integrates all chains for the same number of leapfrog steps,
``ceil(h_t T / eps)``, where ``T`` is the trajectory length and ``h_t`` a
jitter in (0, 1) shared by the batch (the van der Corput / Halton sequence in
base 2, or a uniform draw). The jitter breaks the periodicity that makes fixed
trajectory lengths fail on some targets; a shared length keeps the batch in
lock-step, one batched gradient per leapfrog step.

During :func:`~ebmlab.samplers.warmup`, ``log T`` climbs the ChEES criterion
(change in the estimated squared distance to the center)
``E[(||x' - E x'||^2 - ||x - E x||^2)^2] / 4`` with Adam (learning rate 0.025,
``beta1 = 0``, ``beta2 = 0.95``) on the cross-chain gradient estimate

.. math::

    \\hat g_T = \\sum_c w_c\\, h_t\\, (\\|x'_c - \\bar x'\\|^2 - \\|x_c - \\bar x\\|^2)
        (x'_c - \\bar x') \\cdot M^{-1} p'_c,

with ``w_c`` the acceptance probabilities (normalised), ``x'`` and ``p'`` the
proposal and its momentum at the trajectory's end. After each mass update ``T``
is rescaled by the change in the slowest oscillation period and Adam
restarts; the frozen ``T`` is the mean of ``log T`` over the second half of
the updates since the last mass update. After warm-up ``T``, the step
size and the mass are fixed, so the chain is a valid (time-inhomogeneous,
deterministic-schedule) MCMC chain.

References:
    Hoffman, M., Radul, A. & Sountsov, P. (2021). An adaptive MCMC scheme for
    setting trajectory lengths in Hamiltonian Monte Carlo. AISTATS.
    https://proceedings.mlr.press/v130/hoffman21a.html
"""

from __future__ import annotations

__all__ = ["ChEESHMC", "ChEESInfo", "ChEESState", "van_der_corput"]

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .._types import EnergyFn
from ..energies.base import energy_and_grad
from .base import metropolis_accept, select
from .hmc import _kinetic, leapfrog


class ChEESState(NamedTuple):
    """Chains of :class:`ChEESHMC`.

    Attributes:
        x: Configurations, shape ``(n_chains, *event_shape)``.
        energy: ``E(x)``, shape ``(n_chains,)``.
        grad: ``grad_x E(x)``, shaped like ``x``.
        iteration: Transitions taken, shape ``(n_chains,)``, int64 (indexes the
            jitter sequence).
    """

    x: Tensor
    energy: Tensor
    grad: Tensor
    iteration: Tensor


class ChEESInfo(NamedTuple):
    """Per-step diagnostics.

    Attributes:
        acceptance_rate: ``min(1, exp(-dH))``, shape ``(n_chains,)``.
        is_accepted: Whether each chain moved, bool, shape ``(n_chains,)``.
        delta_hamiltonian: ``H(end) - H(start)``, shape ``(n_chains,)``.
        n_leapfrog: Leapfrog steps (gradients) this transition (same for all
            chains), shape ``(n_chains,)``, int64.
        jitter: ``h_t``, shape ``(n_chains,)``.
        proposal: End of the trajectory, shaped like ``x``.
        velocity: ``M^-1 p`` at the end of the trajectory, shaped like ``x``.
    """

    acceptance_rate: Tensor
    is_accepted: Tensor
    delta_hamiltonian: Tensor
    n_leapfrog: Tensor
    jitter: Tensor
    proposal: Tensor
    velocity: Tensor


def van_der_corput(i: int, base: int = 2) -> float:
    """The ``i``-th (``i >= 1``) element of the van der Corput sequence, in (0, 1)."""
    q, denom = 0.0, 1.0
    while i:
        i, r = divmod(i, base)
        denom *= base
        q += r / denom
    return q


class ChEESHMC:
    """HMC with a jittered trajectory length adapted by the ChEES criterion.

    Arguments:
        step_size: Leapfrog step ``> 0`` (tuned by :func:`warmup`).
        trajectory_length: ``T > 0``; ``None`` starts at one step and relies on
            :func:`warmup` to grow it.
        mass: Diagonal mass, a float or a tensor shaped like one event.
        jitter: ``"halton"`` (van der Corput base 2) or ``"uniform"`` (drawn
            from the generator).
        max_leapfrog: Cap on leapfrog steps per transition.
        learning_rate: Adam step on ``log T`` during warm-up.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> energy = Gaussian.standard(2)
        >>> s = ChEESHMC(0.3, trajectory_length=1.0)
        >>> state, info = s.step(s.init(torch.zeros(4, 2), energy), energy)
        >>> int(info.n_leapfrog[0]) >= 1
        True
    """

    has_acceptance = True

    def __init__(
        self,
        step_size: float,
        trajectory_length: float | None = None,
        *,
        mass: float | Tensor = 1.0,
        jitter: str = "halton",
        max_leapfrog: int = 1000,
        learning_rate: float = 0.025,
    ) -> None:
        if not step_size > 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        if trajectory_length is not None and not trajectory_length > 0:
            raise ValueError(f"trajectory_length must be > 0, got {trajectory_length}")
        if jitter not in ("halton", "uniform"):
            raise ValueError(f"jitter must be 'halton' or 'uniform', got {jitter!r}")
        if int(max_leapfrog) < 1:
            raise ValueError(f"max_leapfrog must be >= 1, got {max_leapfrog}")
        if not bool((torch.as_tensor(mass) > 0).all()):
            raise ValueError("mass must be positive")
        self.step_size = float(step_size)
        self.trajectory_length = None if trajectory_length is None else float(trajectory_length)
        self.mass = mass
        self.jitter = jitter
        self.max_leapfrog = int(max_leapfrog)
        self.learning_rate = float(learning_rate)
        self._adam: dict[str, float] | None = None
        self._log_t_history: list[float] = []

    def __repr__(self) -> str:
        return (
            f"ChEESHMC(step_size={self.step_size:.4g}, "
            f"trajectory_length={self.trajectory_length}, jitter={self.jitter!r})"
        )

    def init(self, x: Tensor, energy: EnergyFn) -> ChEESState:
        """Chains at ``x`` ``(n_chains, *event_shape)`` with energy and gradient cached."""
        e, g = energy_and_grad(energy, x.detach())
        it = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        return ChEESState(x.detach(), e, g, it)

    def _length(self) -> float:
        t = self.trajectory_length
        return self.step_size if t is None else max(t, self.step_size)

    def step(
        self,
        state: ChEESState,
        energy: EnergyFn,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[ChEESState, ChEESInfo]:
        """One jittered HMC transition of every chain (one host read for the length)."""
        x, e, g, it = state
        i = int(it[0]) + 1
        if self.jitter == "halton":
            h = van_der_corput(i)
        else:
            h = float(torch.rand((), generator=generator, device=x.device, dtype=x.dtype))
            h = max(h, 1e-6)
        n_lf = max(1, min(self.max_leapfrog, math.ceil(h * self._length() / self.step_size)))
        if isinstance(self.mass, Tensor) or self.mass != 1.0:
            mass = torch.as_tensor(self.mass, dtype=x.dtype, device=x.device)
            inv_mass: Tensor | float = 1.0 / mass
            std: Tensor | float = mass.sqrt()
        else:
            inv_mass, std = 1.0, 1.0
        p0 = torch.empty_like(x).normal_(generator=generator) * std
        x1, p1, e1, g1 = leapfrog(energy, x, p0, g, self.step_size, n_lf, inv_mass)
        delta_h = (e1 + _kinetic(p1, inv_mass)) - (e + _kinetic(p0, inv_mass))
        accept = metropolis_accept(-delta_h, generator)
        new = select(accept, ChEESState(x1, e1, g1, it), state)
        new = new._replace(iteration=it + 1)
        n = x.shape[0]
        info = ChEESInfo(
            torch.exp((-delta_h).clamp(max=0.0)).nan_to_num(0.0),
            accept,
            delta_h,
            torch.full((n,), n_lf, dtype=torch.int64, device=x.device),
            torch.full((n,), h, dtype=x.dtype, device=x.device),
            x1,
            p1 * inv_mass,
        )
        return new, info

    # -- warm-up hooks (called by ebmlab.samplers.warmup on its private copy) --

    def start_adaptation(self) -> None:
        """Reset the Adam state of the trajectory-length adaptation."""
        self._adam = {"v": 0.0, "t": 0.0}
        self._log_t_history = []
        if self.trajectory_length is None:
            self.trajectory_length = self.step_size

    def adapt_trajectory(self, before: ChEESState, after: ChEESState, info: ChEESInfo) -> None:
        """One Adam step of ``log T`` up the ChEES criterion."""
        assert self._adam is not None, "call start_adaptation first"
        a = info.acceptance_rate.to(torch.float64)
        n = a.shape[0]
        x0 = before.x.reshape(n, -1).to(torch.float64)
        x1 = info.proposal.reshape(n, -1).to(torch.float64)
        v = info.velocity.reshape(n, -1).to(torch.float64)
        ok = torch.isfinite(x1).all(1) & torch.isfinite(v).all(1) & (a > 0)
        w = torch.where(ok, a, torch.zeros_like(a))
        if float(w.sum()) <= 0.0:
            return
        w = w / w.sum()
        x1 = torch.where(ok[:, None], x1, x0)
        v = torch.where(ok[:, None], v, torch.zeros_like(v))
        c0 = x0 - x0.mean(0)
        c1 = x1 - (w[:, None] * x1).sum(0)
        diff = c1.pow(2).sum(1) - c0.pow(2).sum(1)
        g_t = float((w * info.jitter.to(torch.float64) * diff * (c1 * v).sum(1)).sum())
        length = self._length()
        g_log = g_t * length
        if not math.isfinite(g_log):
            return
        st = self._adam
        st["t"] += 1.0
        st["v"] = 0.95 * st["v"] + 0.05 * g_log * g_log
        v_hat = st["v"] / (1.0 - 0.95 ** st["t"])
        log_t = math.log(length) + self.learning_rate * g_log / (math.sqrt(v_hat) + 1e-12)
        log_t = min(
            max(log_t, math.log(self.step_size)), math.log(self.max_leapfrog * self.step_size)
        )
        self.trajectory_length = math.exp(log_t)
        self._log_t_history.append(log_t)

    def rescale_trajectory(self, factor: float) -> None:
        """Multiply ``T`` by ``factor`` (after a mass update) and restart Adam.

        With inverse mass ``M^-1`` and coordinate variances ``s^2`` the
        slowest angular frequency of the dynamics is ``min_i sqrt(M^-1_i /
        s^2_i)``; :func:`warmup` passes the ratio of the old one to the new one,
        so ``T`` keeps its length in periods of the slowest coordinate.
        """
        if self.trajectory_length is not None and math.isfinite(factor) and factor > 0:
            self.trajectory_length = max(self.trajectory_length * factor, self.step_size)
        self._adam = {"v": 0.0, "t": 0.0}
        self._log_t_history = []

    def freeze_trajectory(self) -> None:
        """Fix ``T`` to the mean of ``log T`` over the second half of warm-up."""
        hist = self._log_t_history[len(self._log_t_history) // 2 :]
        if hist:
            self.trajectory_length = math.exp(sum(hist) / len(hist))
        self._adam = None
        self._log_t_history = []
