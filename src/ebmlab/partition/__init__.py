"""Partition functions: log Z exactly (enumeration, quadrature) or estimated
(annealed importance sampling, bidirectional Monte Carlo bounds), and
likelihood ratios that need no Z.

``log_z(energy, method="auto")`` is the entry point; every method returns an
:class:`Estimate` (``value``, ``stderr``, ``lower``, ``upper``, ``method``,
``seconds``). Low energy = high probability: ``Z = sum or integral of exp(-E)``.

Modules: ``exact.py`` (enumeration of discrete domains), ``quadrature.py``
(grids in 1-3 dimensions), ``ais.py`` (AIS, reverse AIS), ``bdmc.py`` (forward
and reverse AIS bracket), ``_engine.py`` (their shared annealing engine),
``bases.py`` (tractable start distributions), ``schedules.py`` (temperatures),
``domain.py`` (continuous and discrete domains), ``auto.py`` (:func:`log_z`),
``likelihood.py`` (log-likelihoods and ratios), ``estimate.py``
(:class:`Estimate`). Builds on :mod:`ebmlab.samplers` and :mod:`ebmlab.energies`.
"""

from __future__ import annotations

from .ais import SCHEDULES, ais_log_z, annealing_schedule, reverse_ais_log_z
from .auto import METHODS, log_z
from .bases import (
    AffineMap,
    DiagonalGaussian,
    FullGaussian,
    UniformDiscrete,
    fit_affine,
    fit_gaussian,
    pilot_affine,
    pilot_gaussian,
)
from .bdmc import bdmc_log_z
from .domain import Domain, domain_of, parse_domain
from .estimate import Estimate, log_mean_exp, weight_stats
from .exact import enumerate_log_z, enumerate_states, exact_log_probs, exact_log_z
from .likelihood import log_likelihood, log_ratio
from .quadrature import QuadratureResult, grid_points, quadrature_log_z

__all__ = [
    "METHODS",
    "SCHEDULES",
    "AffineMap",
    "DiagonalGaussian",
    "Domain",
    "Estimate",
    "FullGaussian",
    "QuadratureResult",
    "UniformDiscrete",
    "ais_log_z",
    "annealing_schedule",
    "bdmc_log_z",
    "domain_of",
    "enumerate_log_z",
    "enumerate_states",
    "exact_log_probs",
    "exact_log_z",
    "fit_affine",
    "fit_gaussian",
    "grid_points",
    "log_likelihood",
    "log_mean_exp",
    "log_ratio",
    "log_z",
    "parse_domain",
    "pilot_affine",
    "pilot_gaussian",
    "quadrature_log_z",
    "reverse_ais_log_z",
    "weight_stats",
]
