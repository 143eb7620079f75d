"""Samplers by name, for configs, the command line and :func:`ebmlab.sample`."""

from __future__ import annotations

__all__ = ["DISCRETE_SAMPLERS", "SAMPLERS", "build_sampler"]

from typing import Any

from .base import Sampler
from .chees import ChEESHMC
from .cluster import SwendsenWang, Wolff
from .gibbs import CheckerboardGibbs, Metropolis
from .gwg import GibbsWithGradients
from .hmc import HMC
from .langevin import Langevin
from .mala import MALA

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
