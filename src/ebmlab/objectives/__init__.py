"""Training objectives for energies. Each returns ``(loss, diagnostics, state)``.

Three families (see ``docs/objectives.md``): maximum likelihood with MCMC
negatives (``cd.py``, :class:`ContrastiveDivergence`: ``cd``, ``pcd``,
``short-run``, optionally with the improved-CD KL term), score matching without
a sampler (``score_matching.py``, :class:`ScoreMatching`,
:class:`DenoisingScoreMatching`, :class:`SlicedScoreMatching`: ``sm``, ``dsm``,
``ssm``; :class:`NoiseConditionalScoreMatching` for noise-conditional
energies), noise-contrastive estimation with a learned log Z (``nce.py``,
:class:`NoiseContrastiveEstimation`: ``nce``), and for classifiers read as
energies the joint objective of JEM (``joint.py``,
:class:`JointEnergyObjective`: ``jem``, on labelled batches ``(x, y)``).
The energy loss alone (``energy_loss.py``, :class:`EnergyLoss`,
:func:`fit_energy_loss`, which trains through :func:`ebmlab.train.fit`) fits
the latent energies whose volume of low energy is limited by construction.
:data:`OBJECTIVES` maps the run objectives' names to classes;
:func:`build_objective` builds one by name.

Builds on :mod:`ebmlab.samplers` (negatives for contrastive divergence, the
replay buffer) and :mod:`ebmlab.energies`. The loss functionals of conditional
energies ``F(x, y)`` (hinge, perceptron, NLL, ...) are objectives too, but need
the answer search of the conditional family, so they live in
:mod:`ebmlab.conditional.losses`; contrastive divergence with block Gibbs
negatives for Boltzmann machines needs their structure (and hand-written
gradients), so :class:`~ebmlab.boltzmann.BlockGibbsCD` lives in
:mod:`ebmlab.boltzmann.cd`.
"""

from __future__ import annotations

from typing import Any

from .cd import CD_MODES, CDDiagnostics, ContrastiveDivergence
from .energy_loss import EnergyLoss, EnergyLossDiagnostics, fit_energy_loss
from .joint import JointDiagnostics, JointEnergyObjective, chimera_negatives
from .nce import (
    NCEDiagnostics,
    NoiseContrastiveEstimation,
    NoiseModel,
    fit_gaussian_noise,
    fit_mixture_noise,
)
from .score_matching import (
    HESSIAN_METHODS,
    DenoisingScoreMatching,
    NoiseConditionalScoreMatching,
    ScoreMatching,
    ScoreMatchingDiagnostics,
    SlicedScoreMatching,
)

__all__ = [
    "CD_MODES",
    "HESSIAN_METHODS",
    "OBJECTIVES",
    "CDDiagnostics",
    "ContrastiveDivergence",
    "DenoisingScoreMatching",
    "EnergyLoss",
    "EnergyLossDiagnostics",
    "JointDiagnostics",
    "JointEnergyObjective",
    "NCEDiagnostics",
    "NoiseConditionalScoreMatching",
    "NoiseContrastiveEstimation",
    "NoiseModel",
    "ScoreMatching",
    "ScoreMatchingDiagnostics",
    "SlicedScoreMatching",
    "build_objective",
    "chimera_negatives",
    "fit_energy_loss",
    "fit_gaussian_noise",
    "fit_mixture_noise",
]

#: Objectives by name, for configs and the command line (``ebmlab train --objective``).
OBJECTIVES: dict[str, type] = {
    "cd": ContrastiveDivergence,
    "pcd": ContrastiveDivergence,
    "short-run": ContrastiveDivergence,
    "sm": ScoreMatching,
    "dsm": DenoisingScoreMatching,
    "ssm": SlicedScoreMatching,
    "nce": NoiseContrastiveEstimation,
    "jem": JointEnergyObjective,
    "ncsm": NoiseConditionalScoreMatching,
}


def build_objective(name: str, *args: Any, **hyperparameters: Any) -> Any:
    """Construct an objective by name (see :data:`OBJECTIVES`).

    For ``cd``, ``pcd`` and ``short-run`` the name is the
    :class:`ContrastiveDivergence` mode (pass the sampler first).

    Raises:
        ValueError: For an unknown name or keyword, listing the valid ones.

    Example:
        >>> build_objective("dsm", noise_std=0.05)
        DenoisingScoreMatching(noise_levels=[0.05])
    """
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {name!r}")
    if name in CD_MODES:
        hyperparameters["mode"] = name
    try:
        return OBJECTIVES[name](*args, **hyperparameters)
    except TypeError as exc:
        raise ValueError(f"bad hyperparameters for objective {name!r}: {exc}") from None
