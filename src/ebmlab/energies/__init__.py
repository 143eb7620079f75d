"""Energies: the contract, neural energies, closed-form targets, composition.

Low energy = high probability: ``p(x) = exp(-E(x)) / Z``.
"""

from __future__ import annotations

from .base import Energy, energy_and_grad, score
from .compose import SumEnergy, Tempered
from .conv import ConvEnergy, ResNetEnergy
from .gaussian import Gaussian, GaussianMixture
from .mlp import MLPEnergy

__all__ = [
    "ConvEnergy",
    "Energy",
    "Gaussian",
    "GaussianMixture",
    "MLPEnergy",
    "ResNetEnergy",
    "SumEnergy",
    "Tempered",
    "energy_and_grad",
    "score",
]
