"""Energies: the contract, neural energies, closed-form targets, latent energies, composition.

Low energy = high probability: ``p(x) = exp(-E(x)) / Z``.

* :mod:`~ebmlab.energies.base`: the :class:`Energy` contract
  (``(N, *event_shape) -> (N,)``), :func:`energy_and_grad`, :func:`score`.
* :mod:`~ebmlab.energies.mlp`: :class:`MLPEnergy`, the neural energy (with a
  fused CPU value-and-gradient path in ``_blocked``) and the activation table.
* :mod:`~ebmlab.energies.gaussian`: :class:`Gaussian` and
  :class:`GaussianMixture`, closed-form energies with exact log Z and exact
  samplers.
* :mod:`~ebmlab.energies.latent`: energies whose volume of low energy is limited
  by architecture or regularization (:class:`PCAEnergy`, :class:`KMeansEnergy`,
  :class:`SparseCodingEnergy`), trained by the energy loss alone
  (:func:`ebmlab.objectives.fit_energy_loss`).
* :mod:`~ebmlab.energies.conv`: image energies on ``(N, C, H, W)``:
  :class:`ConvEnergy` (a small strided CNN) and :class:`ResNetEnergy` (residual
  blocks, optional spectral norm).
* :mod:`~ebmlab.energies.classifier`: :class:`ClassifierEnergy`, a classifier
  read as an energy (JEM: ``E(x) = -logsumexp_y f(x)[y]``) on any backbone,
  and :func:`make_mlp`.
* :mod:`~ebmlab.energies.noise_conditional`: :class:`NoiseConditionalEnergy`
  and :class:`NoiseConditionalImageEnergy`, one energy for every noise level
  (denoising).
* :mod:`~ebmlab.energies.compose`: :class:`SumEnergy` (product of experts) and
  :class:`Tempered`.

The bottom library layer: it imports nothing of ebmlab but the shared type
aliases. The conditional energies ``F(x, y)``, including the tractable-likelihood
ones with a closed-form ``log Z(x)``, are in :mod:`ebmlab.conditional`; the
lattice models and Boltzmann machines in :mod:`ebmlab.lattice` and
:mod:`ebmlab.boltzmann`.
"""

from __future__ import annotations

from .base import Energy, energy_and_grad, score
from .classifier import ClassifierEnergy, make_mlp
from .compose import SumEnergy, Tempered
from .conv import ConvEnergy, ResNetEnergy
from .gaussian import Gaussian, GaussianMixture
from .latent import KMeansEnergy, PCAEnergy, SparseCodingEnergy
from .mlp import MLPEnergy
from .noise_conditional import NoiseConditionalEnergy, NoiseConditionalImageEnergy

__all__ = [
    "ClassifierEnergy",
    "ConvEnergy",
    "Energy",
    "Gaussian",
    "GaussianMixture",
    "KMeansEnergy",
    "MLPEnergy",
    "NoiseConditionalEnergy",
    "NoiseConditionalImageEnergy",
    "PCAEnergy",
    "ResNetEnergy",
    "SparseCodingEnergy",
    "SumEnergy",
    "Tempered",
    "energy_and_grad",
    "make_mlp",
    "score",
]
