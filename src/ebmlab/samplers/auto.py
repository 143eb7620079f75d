"""``ebmlab.sample`` with warm-up adaptation and parallel tempering by name.

:func:`sample_adaptive` is what :func:`ebmlab.sample` runs: it builds the
sampler by name, adapts it when no step size is given (see
:func:`~ebmlab.samplers.warmup`), wraps it in
:class:`~ebmlab.samplers.ParallelTempering` for ``method="pt"`` (the schedule
adapted over the same number of warm-up scans), then samples with everything
frozen. Also :class:`OnlineStepSize`, the training-time controller that keeps
the acceptance of the negative-sample chains near a target while the energy
changes under them.
"""

from __future__ import annotations

__all__ = ["ADAPTIVE_METHODS", "OnlineStepSize", "SampleResult", "sample_adaptive"]

import logging
import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._types import EnergyFn
from .adapt import DEFAULT_TARGET_ACCEPT, WarmupResult, warmup
from .base import run
from .pt import ParallelTempering, pt_summary
from .registry import DISCRETE_SAMPLERS, SAMPLERS

log = logging.getLogger("ebmlab.samplers")

#: Methods whose step size is adapted by default (no ``step_size`` given).
ADAPTIVE_METHODS = ("mala", "hmc", "chees")

#: Warm-up transitions used when adaptation is on and none are given.
DEFAULT_WARMUP = 500

#: Starting step size of an adaptation (the initial search corrects it).
_START_STEP = 0.1


class SampleResult(NamedTuple):
    """What :func:`sample_adaptive` returns.

    Attributes:
        x: Final configurations ``(n_chains, *event_shape)`` (the ``b = 1``
            replica for parallel tempering).
        sampler: The frozen sampler that produced them.
        warmup: The base sampler's :class:`~ebmlab.samplers.WarmupResult`
            (``None``: not adapted).
        pt: :func:`~ebmlab.samplers.pt_summary` of the sampling phase
            (``None`` unless ``method="pt"``).
    """

    x: Tensor
    sampler: Any
    warmup: WarmupResult | None
    pt: dict[str, Any] | None


def _build(method: str, hyperparameters: dict[str, Any]) -> Any:
    table = {**SAMPLERS, **DISCRETE_SAMPLERS}
    if method not in table:
        raise ValueError(f"method must be one of {sorted([*table, 'pt'])}, got {method!r}")
    try:
        return table[method](**hyperparameters)
    except TypeError as exc:
        raise ValueError(f"bad hyperparameters for sampler {method!r}: {exc}") from None


def sample_adaptive(
    energy: EnergyFn,
    x_init: Tensor,
    method: str = "langevin",
    n_steps: int = 100,
    *,
    warmup_steps: int | None = None,
    target_accept: float | None = None,
    adapt_mass: bool = True,
    base: str = "mala",
    n_replicas: int = 8,
    beta_min: float | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    verbose: bool = False,
    **hyperparameters: Any,
) -> SampleResult:
    """Build, adapt and run a sampler by name (see :func:`ebmlab.sample`).

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``; low energy = probable.
        x_init: Starting points ``(n_chains, *event_shape)``.
        method: A name of :data:`~ebmlab.samplers.SAMPLERS` or
            :data:`~ebmlab.samplers.DISCRETE_SAMPLERS`, or ``"pt"``.
        n_steps: Transitions (scans for ``"pt"``) after warm-up.
        warmup_steps: Warm-up transitions; ``None`` is 500 when the method is
            adaptive and no ``step_size`` is given (and always for ``"pt"``,
            whose schedule is adapted), else 0.
        target_accept: Pooled target acceptance (default per sampler).
        adapt_mass: Adapt a diagonal mass during warm-up.
        base: Base sampler of ``"pt"``.
        n_replicas: Temperatures of ``"pt"``.
        beta_min: Lowest inverse temperature of ``"pt"`` (default 0.01, 0 for
            spin models).
        generator: Random generator.
        progress: Progress bar for the sampling phase.
        verbose: Print the adapted parameters (always logged at INFO).
        **hyperparameters: For the (base) sampler, e.g. ``step_size``.

    Returns:
        A :class:`SampleResult`.
    """
    is_pt = method == "pt"
    name = base if is_pt else method
    if is_pt and name == "pt":
        raise ValueError("base of 'pt' must be another sampler")
    adaptive = name in ADAPTIVE_METHODS
    given = "step_size" in hyperparameters
    if warmup_steps is None:
        warmup_steps = DEFAULT_WARMUP if (is_pt or (adaptive and not given)) else 0
    if warmup_steps < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup_steps}")
    if not given and name in ("langevin", "ula", *ADAPTIVE_METHODS):
        hyperparameters["step_size"] = _START_STEP if adaptive and warmup_steps else 0.01
    sampler = _build(name, hyperparameters)
    start: Any = x_init
    adapted: WarmupResult | None = None
    if adaptive and warmup_steps and not (given and is_pt):
        adapted = warmup(
            sampler,
            energy,
            x_init,
            max(warmup_steps, 20),
            target_accept=target_accept,
            adapt_mass=adapt_mass,
            generator=generator,
            verbose=verbose,
        )
        sampler, start = adapted.sampler, adapted.state
    summary = None
    if is_pt:
        if beta_min is None:
            beta_min = 0.0 if hasattr(energy, "with_beta") else 0.01
        pt = ParallelTempering(sampler, n_replicas, beta_min=beta_min)
        x0 = start if isinstance(start, Tensor) else start[0]
        if warmup_steps:
            sampler, start = pt.adapt(
                energy, x0, warmup_steps, generator=generator, verbose=verbose
            )
        else:
            sampler, start = pt, x0
    out = run(sampler, energy, start, n_steps, generator=generator, progress=progress)
    if is_pt and n_steps:
        summary = pt_summary(out.state)
        msg = (
            f"parallel tempering: swap acceptance "
            f"{[round(a, 3) for a in summary['swap_acceptance']]}, Lambda "
            f"{summary['Lambda']:.3f}, round trips per scan {summary['round_trip_rate']:.4f} "
            f"(1/(2+2 Lambda) = {summary['round_trip_rate_deo']:.4f})"
        )
        log.info(msg)
        if verbose:
            print(msg)
    return SampleResult(out.state[0], sampler, adapted, summary)


class OnlineStepSize:
    """Keep a sampler's pooled acceptance near a target while the energy changes.

    For training: the negative-sample chains of contrastive divergence follow an
    energy that moves every update, so no warm-up can end. After every
    transition ``log(step_size) += gain * (mean acceptance - target)``
    (Robbins-Monro with a constant gain: it tracks, it does not converge). This
    is not a fixed MCMC kernel; use :func:`~ebmlab.samplers.warmup` for
    sampling a fixed energy. One host read per transition.

    Arguments:
        sampler: MALA, HMC or ChEES-HMC; its ``step_size`` is the start and is
            updated in place.
        target_accept: Target (default per sampler, 0.574 for MALA).
        gain: Step on ``log(step_size)`` per unit of acceptance error.
    """

    has_acceptance = True

    def __init__(
        self, sampler: Any, target_accept: float | None = None, gain: float = 0.05
    ) -> None:
        target = DEFAULT_TARGET_ACCEPT.get(type(sampler).__name__, 0.8)
        self.target = float(target if target_accept is None else target_accept)
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"target_accept must be in (0, 1), got {self.target}")
        self.sampler = sampler
        self.gain = float(gain)

    def __repr__(self) -> str:
        return f"OnlineStepSize({self.sampler!r}, target_accept={self.target})"

    def __getattr__(self, name: str) -> Any:  # step_size, grad_clip, clamp, ...
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)

    def state_dict(self) -> dict[str, Tensor]:
        """The current step size (saved with training checkpoints)."""
        return {"step_size": torch.tensor([self.sampler.step_size], dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the step size saved by :meth:`state_dict`."""
        self.sampler.step_size = float(state["step_size"].reshape(-1)[0])

    def init(self, x: Tensor, energy: EnergyFn) -> Any:
        """The base sampler's ``init``."""
        return self.sampler.init(x, energy)

    def step(
        self, state: Any, energy: EnergyFn, *, generator: torch.Generator | None = None
    ) -> tuple[Any, Any]:
        """A base transition, then one update of the step size."""
        new, info = self.sampler.step(state, energy, generator=generator)
        acc = float(info.acceptance_rate.mean())
        if math.isfinite(acc):
            eps = self.sampler.step_size * math.exp(self.gain * (acc - self.target))
            self.sampler.step_size = min(max(eps, 1e-8), 1e3)
        return new, info
