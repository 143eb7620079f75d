"""Lattice spin models: Ising and Potts, their observables and exact results, denoising.

* :mod:`~ebmlab.lattice.ising`: :class:`IsingModel` on lattices (1D to 3D,
  periodic or open) and graphs, and the spin-system base class;
  :data:`CRITICAL_TEMPERATURE`.
* :mod:`~ebmlab.lattice.potts`: the q-state :class:`PottsModel`.
* :mod:`~ebmlab.lattice.observables`: magnetization, energy, susceptibility and
  specific heat with standard errors; :func:`simulate` and :func:`run_ising`
  (the ``ebmlab ising`` command); histogram reweighting.
* :mod:`~ebmlab.lattice.exact`: Onsager's and Kaufman's exact 2D results.
* :mod:`~ebmlab.lattice.denoise`: :class:`IsingDenoiser`, binary image
  restoration with an Ising prior (Gibbs sampling or ICM).

Builds on :mod:`ebmlab.energies` (every model is an :class:`~ebmlab.energies.Energy`
with ``E(s) = beta H(s)``, low energy = probable), :mod:`ebmlab.samplers`
(checkerboard Gibbs, Metropolis, Wolff, Swendsen-Wang read the structure the models
expose) and :mod:`ebmlab.diagnostics` (effective sample sizes).
"""

from __future__ import annotations

from . import denoise, exact, ising, observables, potts
from .denoise import IsingDenoiser, flip_pixels, pixel_error
from .exact import kaufman_log_z, kaufman_observables, onsager_energy, onsager_magnetization
from .ising import CRITICAL_TEMPERATURE, IsingModel, greedy_coloring
from .observables import (
    ISING_METHODS,
    IsingRun,
    Observables,
    estimate_observables,
    reweight_observables,
    run_ising,
    simulate,
)
from .potts import PottsModel

__all__ = [
    "CRITICAL_TEMPERATURE",
    "ISING_METHODS",
    "IsingDenoiser",
    "IsingModel",
    "IsingRun",
    "Observables",
    "PottsModel",
    "denoise",
    "estimate_observables",
    "exact",
    "flip_pixels",
    "greedy_coloring",
    "ising",
    "kaufman_log_z",
    "kaufman_observables",
    "observables",
    "onsager_energy",
    "onsager_magnetization",
    "pixel_error",
    "potts",
    "reweight_observables",
    "run_ising",
    "simulate",
]
