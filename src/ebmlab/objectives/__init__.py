"""Training objectives for energies. Each returns ``(loss, diagnostics, state)``.

Maximum likelihood with MCMC negatives (:class:`ContrastiveDivergence`) and the
loss functionals of energy-based learning for conditional energies
(:data:`LOSS_FUNCTIONALS`, LeCun et al. 2006).
"""

from __future__ import annotations

from .cd import CD_MODES, CDDiagnostics, ContrastiveDivergence
from .loss_functionals import (
    LOSS_FUNCTIONALS,
    EnergyTerms,
    LossDiagnostics,
    LossFunctional,
    build_loss_functional,
)

__all__ = [
    "CD_MODES",
    "LOSS_FUNCTIONALS",
    "CDDiagnostics",
    "ContrastiveDivergence",
    "EnergyTerms",
    "LossDiagnostics",
    "LossFunctional",
    "build_loss_functional",
]
