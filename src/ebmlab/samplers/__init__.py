"""MCMC samplers with an explicit-state ``init``/``step`` interface.

Samplers descend the energy (low energy = high probability). Every sampler
works on any callable energy ``(N, *event_shape) -> (N,)``, on CPU or CUDA, with
an explicit ``torch.Generator``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from .adapt import DEFAULT_TARGET_ACCEPT, DualAveraging, WarmupResult, warmup
from .base import RunResult, Sampler, metropolis_accept, run, select
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
from .pt import ParallelTempering, PTInfo, PTState, pt_summary
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
    "leapfrog",
    "metropolis_accept",
    "pt_summary",
    "run",
    "sample",
    "select",
    "warmup",
]

#: Samplers by name, for configs and the command line.
SAMPLERS: dict[str, Any] = {
    "langevin": Langevin,
    "ula": Langevin,
    "mala": MALA,
    "hmc": HMC,
    "chees": ChEESHMC,
}

#: Samplers of discrete variables by name. ``gibbs``, ``metropolis``, ``wolff`` and
#: ``swendsen-wang`` need a spin model (Ising, Potts); ``gwg`` any differentiable
#: energy of binary or spin variables.
DISCRETE_SAMPLERS: dict[str, Any] = {
    "gibbs": CheckerboardGibbs,
    "metropolis": Metropolis,
    "wolff": Wolff,
    "swendsen-wang": SwendsenWang,
    "gwg": GibbsWithGradients,
}


def build_sampler(method: str, **hyperparameters: Any) -> Sampler:
    """Construct a sampler by name (see :data:`SAMPLERS`).

    Raises:
        ValueError: For an unknown name or keyword, listing the valid ones.
    """
    if method not in SAMPLERS:
        raise ValueError(f"method must be one of {sorted(SAMPLERS)}, got {method!r}")
    try:
        return SAMPLERS[method](**hyperparameters)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ValueError(f"bad hyperparameters for sampler {method!r}: {exc}") from None


def sample(
    energy: EnergyFn,
    x_init: Tensor,
    method: str = "langevin",
    n_steps: int = 100,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
    **hyperparameters: Any,
) -> Tensor:
    """Run chains from ``x_init`` and return their final configurations.

    A convenience over the sampler classes: builds the sampler by name, runs
    it without building parameter gradients, and returns the end states.

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``; low energy = probable.
        x_init: Starting points, shape ``(n_chains, *event_shape)``.
        method: ``"langevin"``, ``"mala"`` or ``"hmc"``.
        n_steps: Transitions per chain.
        generator: Random generator.
        progress: Show a progress bar.
        **hyperparameters: Passed to the sampler (``step_size``, ...); a
            default ``step_size`` of 0.01 is used when none is given.

    Returns:
        Final configurations, shape ``(n_chains, *event_shape)``.

    Example:
        >>> import ebmlab
        >>> from ebmlab.energies import Gaussian
        >>> x = ebmlab.sample(Gaussian.standard(2), torch.zeros(100, 2), "mala",
        ...                   n_steps=50, step_size=0.5)
        >>> tuple(x.shape)
        (100, 2)
    """
    hyperparameters.setdefault("step_size", 0.01)
    sampler = build_sampler(method, **hyperparameters)
    return run(sampler, energy, x_init, n_steps, generator=generator, progress=progress).state.x
