"""Classic and structured energy-based models.

Conditional energies ``F(x, y)`` with inference by energy minimization
(:mod:`ebmlab.models.conditional`), maximum-likelihood energies with a
closed-form normalizer (:mod:`ebmlab.models.likelihood`) and energies whose
volume of low energy is limited by architecture or regularization
(:mod:`ebmlab.models.latent`). Low energy = high probability.
"""

from __future__ import annotations

from . import conditional, latent, likelihood
from .conditional import (
    ConditionalEnergy,
    DiscreteConditionalEnergy,
    GibbsConditional,
    JointEmbeddingEnergy,
    LatentConditionalEnergy,
    MLPConditionalEnergy,
    Modes,
    QuadraticConditionalEnergy,
    fit_conditional,
    gibbs_conditional,
    infer,
    sample_conditional,
)
from .latent import KMeansEnergy, PCAEnergy, SparseCodingEnergy, fit_energy_loss
from .likelihood import (
    BernoulliEnergy,
    CategoricalEnergy,
    ExponentialEnergy,
    GaussianEnergy,
    fit_likelihood,
    fit_mle,
)

__all__ = [
    "BernoulliEnergy",
    "CategoricalEnergy",
    "ConditionalEnergy",
    "DiscreteConditionalEnergy",
    "ExponentialEnergy",
    "GaussianEnergy",
    "GibbsConditional",
    "JointEmbeddingEnergy",
    "KMeansEnergy",
    "LatentConditionalEnergy",
    "MLPConditionalEnergy",
    "Modes",
    "PCAEnergy",
    "QuadraticConditionalEnergy",
    "SparseCodingEnergy",
    "conditional",
    "fit_conditional",
    "fit_energy_loss",
    "fit_likelihood",
    "fit_mle",
    "gibbs_conditional",
    "infer",
    "latent",
    "likelihood",
    "sample_conditional",
]
