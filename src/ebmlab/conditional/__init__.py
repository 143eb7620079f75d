"""Conditional energies F(x, y): the energies, inference, loss functionals, fitting.

Energy-based learning in the sense of LeCun et al. (2006): ``F(x, y)`` is low
when the answer ``y`` fits the input ``x``, inference searches for low-energy
answers, and a loss functional shapes ``F`` so the correct answer wins.

* :mod:`~ebmlab.conditional.energies`: :class:`ConditionalEnergy` and the
  energies :class:`MLPConditionalEnergy`, :class:`QuadraticConditionalEnergy`,
  :class:`JointEmbeddingEnergy`, :class:`DiscreteConditionalEnergy`,
  :class:`LatentConditionalEnergy`; :func:`make_mlp`.
* :mod:`~ebmlab.conditional.likelihood`: the tractable-likelihood energies with a
  closed-form ``log Z(x)`` (:class:`GaussianEnergy`, :class:`BernoulliEnergy`,
  :class:`CategoricalEnergy`, :class:`ExponentialEnergy`), maximum likelihood as
  a special case of energy-based learning; :func:`fit_mle`, :func:`fit_likelihood`.
* :mod:`~ebmlab.conditional.inference`: :func:`infer` (all low-energy answers),
  :func:`gibbs_conditional`, :func:`sample_conditional`, :func:`descend`.
* :mod:`~ebmlab.conditional.losses`: the loss functionals (energy, perceptron,
  hinge, log, LVQ2, MCE, square-square, square-exponential, NLL/MMI),
  :data:`LOSS_FUNCTIONALS`, :class:`LossFunctional`.
* :mod:`~ebmlab.conditional.fit`: :func:`fit_conditional`.

Builds on :mod:`ebmlab.energies` (activations, the value-and-gradient helper),
:mod:`ebmlab.samplers` (Langevin inference) and :mod:`ebmlab.partition`
(quadrature grids for the free energy).
"""

from __future__ import annotations

from . import energies, fit, inference, likelihood, losses
from .energies import (
    REDUCTIONS,
    ConditionalEnergy,
    DiscreteConditionalEnergy,
    JointEmbeddingEnergy,
    LatentConditionalEnergy,
    MLPConditionalEnergy,
    QuadraticConditionalEnergy,
    latent_grid,
    make_mlp,
)
from .fit import fit_conditional
from .inference import (
    GibbsConditional,
    Modes,
    cluster_answers,
    descend,
    gibbs_conditional,
    infer,
    restart_points,
    sample_conditional,
)
from .likelihood import (
    FAMILIES,
    BernoulliEnergy,
    CategoricalEnergy,
    ExponentialEnergy,
    GaussianEnergy,
    fit_likelihood,
    fit_mle,
)
from .losses import (
    LOSS_FUNCTIONALS,
    EnergyTerms,
    LossDiagnostics,
    LossFunctional,
    build_loss_functional,
)

__all__ = [
    "FAMILIES",
    "LOSS_FUNCTIONALS",
    "REDUCTIONS",
    "BernoulliEnergy",
    "CategoricalEnergy",
    "ConditionalEnergy",
    "DiscreteConditionalEnergy",
    "EnergyTerms",
    "ExponentialEnergy",
    "GaussianEnergy",
    "GibbsConditional",
    "JointEmbeddingEnergy",
    "LatentConditionalEnergy",
    "LossDiagnostics",
    "LossFunctional",
    "MLPConditionalEnergy",
    "Modes",
    "QuadraticConditionalEnergy",
    "build_loss_functional",
    "cluster_answers",
    "descend",
    "energies",
    "fit",
    "fit_conditional",
    "fit_likelihood",
    "fit_mle",
    "gibbs_conditional",
    "infer",
    "inference",
    "latent_grid",
    "likelihood",
    "losses",
    "make_mlp",
    "restart_points",
    "sample_conditional",
]
