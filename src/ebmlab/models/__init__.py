"""Classic and structured energy-based models.

Conditional energies ``F(x, y)`` with inference by energy minimization
(:mod:`ebmlab.models.conditional`), maximum-likelihood energies with a
closed-form normalizer (:mod:`ebmlab.models.likelihood`) and energies whose
volume of low energy is limited by architecture or regularization
(:mod:`ebmlab.models.latent`). Low energy = high probability.
"""

from __future__ import annotations

from . import (
    boltzmann,
    conditional,
    dbn,
    denoise,
    hopfield,
    ising,
    latent,
    likelihood,
    observables,
    rbm,
)
from .boltzmann import BoltzmannMachine
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
from .dbn import DBN
from .denoise import IsingDenoiser, flip_pixels, pixel_error
from .hopfield import HopfieldNetwork, ModernHopfield
from .ising import CRITICAL_TEMPERATURE, IsingModel, PottsModel
from .latent import KMeansEnergy, PCAEnergy, SparseCodingEnergy, fit_energy_loss
from .likelihood import (
    BernoulliEnergy,
    CategoricalEnergy,
    ExponentialEnergy,
    GaussianEnergy,
    fit_likelihood,
    fit_mle,
)
from .observables import (
    estimate_observables,
    kaufman_observables,
    onsager_energy,
    onsager_magnetization,
    reweight_observables,
    run_ising,
    simulate,
)
from .rbm import RBM, BernoulliRBM, CDTrainer, GaussianBernoulliRBM, fit_cd

__all__ = [
    "CRITICAL_TEMPERATURE",
    "DBN",
    "RBM",
    "BernoulliEnergy",
    "BernoulliRBM",
    "BoltzmannMachine",
    "CDTrainer",
    "CategoricalEnergy",
    "ConditionalEnergy",
    "DiscreteConditionalEnergy",
    "ExponentialEnergy",
    "GaussianBernoulliRBM",
    "GaussianEnergy",
    "GibbsConditional",
    "HopfieldNetwork",
    "IsingDenoiser",
    "IsingModel",
    "JointEmbeddingEnergy",
    "KMeansEnergy",
    "LatentConditionalEnergy",
    "MLPConditionalEnergy",
    "ModernHopfield",
    "Modes",
    "PCAEnergy",
    "PottsModel",
    "QuadraticConditionalEnergy",
    "SparseCodingEnergy",
    "boltzmann",
    "conditional",
    "dbn",
    "denoise",
    "estimate_observables",
    "fit_cd",
    "fit_conditional",
    "fit_energy_loss",
    "fit_likelihood",
    "fit_mle",
    "flip_pixels",
    "gibbs_conditional",
    "hopfield",
    "infer",
    "ising",
    "kaufman_observables",
    "latent",
    "likelihood",
    "observables",
    "onsager_energy",
    "onsager_magnetization",
    "pixel_error",
    "rbm",
    "reweight_observables",
    "run_ising",
    "sample_conditional",
    "simulate",
]
