"""MCMC samplers with an explicit-state ``init``/``step`` interface.

Samplers descend the energy (low energy = high probability). Every sampler
works on any callable energy ``(N, *event_shape) -> (N,)``, on CPU or CUDA, with
an explicit ``torch.Generator``.

Continuous: :class:`Langevin` (ULA/SGLD, ``langevin.py``), :class:`MALA`
(``mala.py``), :class:`HMC` (``hmc.py``); discrete: :class:`GibbsWithGradients`
(``gwg.py``), checkerboard Gibbs and Metropolis for lattice models
(``gibbs.py``), Swendsen-Wang and Wolff cluster moves (``cluster.py``). Shared
parts in ``base.py`` (the :class:`GradientState` of the gradient samplers, one
Metropolis-Hastings correction, the :func:`run` loop); the :class:`ReplayBuffer`
of persistent chains (``replay.py``); :data:`SAMPLERS`, :data:`DISCRETE_SAMPLERS`,
:func:`build_sampler` (``registry.py``) and :func:`sample` by name
(``auto.py``: warm-up, the online step-size controller of training, parallel
tempering behind one call).

Self-tuning: warm-up adaptation of step size (dual averaging) and diagonal mass
(``adapt.py``), :class:`ChEESHMC` with an adapted, jittered trajectory length
(``chees.py``), and :class:`ParallelTempering` with non-reversible swaps and an
adaptive schedule (``pt.py``). Builds on :mod:`ebmlab.energies`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from .adapt import DEFAULT_TARGET_ACCEPT, DualAveraging, WarmupResult, warmup
from .base import (
    GradientState,
    RunResult,
    Sampler,
    init_gradient_state,
    metropolis_accept,
    run,
    select,
)
from .chees import ChEESHMC, ChEESInfo, ChEESState
from .cluster import ClusterInfo, SwendsenWang, Wolff, connected_components
from .gibbs import (
    BlockGibbs,
    BlockGibbsState,
    CheckerboardGibbs,
    Metropolis,
    SpinInfo,
    SpinState,
)
from .gwg import GibbsWithGradients, GWGInfo, GWGState
from .hmc import HMC, HMCInfo, HMCState, leapfrog
from .langevin import Langevin, LangevinInfo, LangevinState
from .mala import MALA, MALAInfo, MALAState
from .pt import ParallelTempering, PTInfo, PTState, pt_summary, stepping_stone
from .registry import DISCRETE_SAMPLERS, SAMPLERS, build_sampler
from .replay import ReplayBuffer

__all__ = [
    "DEFAULT_TARGET_ACCEPT",
    "DISCRETE_SAMPLERS",
    "HMC",
    "MALA",
    "SAMPLERS",
    "BlockGibbs",
    "BlockGibbsState",
    "ChEESHMC",
    "ChEESInfo",
    "ChEESState",
    "CheckerboardGibbs",
    "ClusterInfo",
    "DualAveraging",
    "GWGInfo",
    "GWGState",
    "GibbsWithGradients",
    "GradientState",
    "HMCInfo",
    "HMCState",
    "Langevin",
    "LangevinInfo",
    "LangevinState",
    "MALAInfo",
    "MALAState",
    "Metropolis",
    "PTInfo",
    "PTState",
    "ParallelTempering",
    "ReplayBuffer",
    "RunResult",
    "Sampler",
    "SpinInfo",
    "SpinState",
    "SwendsenWang",
    "WarmupResult",
    "Wolff",
    "build_sampler",
    "connected_components",
    "init_gradient_state",
    "leapfrog",
    "metropolis_accept",
    "pt_summary",
    "run",
    "sample",
    "select",
    "stepping_stone",
    "warmup",
]


def sample(
    energy: EnergyFn,
    x_init: Tensor,
    method: str = "langevin",
    n_steps: int = 100,
    *,
    warmup: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    return_info: bool = False,
    **hyperparameters: Any,
) -> Any:
    """Run chains from ``x_init`` and return their final configurations.

    A convenience over the sampler classes: builds the sampler by name, adapts
    it when no step size is given, runs it without building parameter
    gradients, and returns the end states (see
    :func:`~ebmlab.samplers.auto.sample_adaptive` for every option).

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``; low energy = probable.
        x_init: Starting points, shape ``(n_chains, *event_shape)``.
        method: ``"langevin"``, ``"mala"``, ``"hmc"``, ``"chees"`` (ChEES-HMC),
            ``"pt"`` (parallel tempering; ``base=``, ``n_replicas=``,
            ``beta_min=``) or a spin sampler (``"gibbs"``, ...).
        n_steps: Transitions per chain after warm-up.
        warmup: Warm-up transitions (step size and diagonal mass adapted, then
            frozen; for ``"pt"`` also the temperature schedule). ``None``: 500
            for MALA, HMC, ChEES and PT when no ``step_size`` is given (PT:
            always), else none.
        generator: Random generator.
        progress: Show a progress bar.
        return_info: Return a :class:`~ebmlab.samplers.auto.SampleResult`
            (samples, frozen sampler, warm-up summary, PT statistics).
        **hyperparameters: Passed to the sampler (``step_size``, ...), plus
            ``target_accept``, ``adapt_mass``, ``verbose`` and the PT options;
            Langevin without a ``step_size`` uses 0.01.

    Returns:
        Final configurations, shape ``(n_chains, *event_shape)``.

    Example:
        >>> import ebmlab
        >>> from ebmlab.energies import Gaussian
        >>> x = ebmlab.sample(Gaussian.standard(2), torch.zeros(100, 2), "mala",
        ...                   n_steps=50, step_size=0.5)
        >>> tuple(x.shape)
        (100, 2)
        >>> out = ebmlab.sample(Gaussian.standard(2), torch.zeros(100, 2), "hmc",
        ...                     n_steps=50, warmup=200, return_info=True)
        >>> tuple(out.x.shape), out.warmup.step_size > 0
        ((100, 2), True)
    """
    from .auto import sample_adaptive

    with torch.no_grad():
        out = sample_adaptive(
            energy,
            x_init,
            method,
            n_steps,
            warmup_steps=warmup,
            generator=generator,
            progress=progress,
            **hyperparameters,
        )
    return out if return_info else out.x
