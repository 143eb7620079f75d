"""Boltzmann machines and their relatives: BM, RBMs, DBN, Hopfield networks.

* :mod:`~ebmlab.boltzmann.machine`: the fully visible :class:`BoltzmannMachine`.
* :mod:`~ebmlab.boltzmann.rbm`: the :class:`RBM` base class and the
  Bernoulli-Bernoulli :class:`BernoulliRBM` (free energy, block Gibbs, exact
  ``log Z`` by enumerating the smaller layer).
* :mod:`~ebmlab.boltzmann.gaussian_rbm`: :class:`GaussianBernoulliRBM`.
* :mod:`~ebmlab.boltzmann.ais`: annealed importance sampling of an RBM's ``log Z``
  (Salakhutdinov & Murray 2008).
* :mod:`~ebmlab.boltzmann.enumeration`: exact sums over binary states.
* :mod:`~ebmlab.boltzmann.cd`: contrastive divergence for any of these with a
  free energy and block Gibbs: the objective :class:`BlockGibbsCD` (CD-k,
  PCD-k with :class:`PersistentChains`) of :func:`ebmlab.train.fit`, and
  :func:`fit_cd` (epochs) and :class:`CDTrainer` (one step) over that loop.
* :mod:`~ebmlab.boltzmann.dbn`: the :class:`DBN`, stacked RBMs trained greedily.
* :mod:`~ebmlab.boltzmann.hopfield`: :class:`HopfieldNetwork` (Hebbian and
  Storkey rules) and :class:`ModernHopfield`.

Builds on :mod:`ebmlab.energies` (every model is an
:class:`~ebmlab.energies.Energy`, low energy = probable) and on the
:class:`~ebmlab.partition.Estimate` of :mod:`ebmlab.partition` for ``log Z``.
"""

from __future__ import annotations

from . import ais, cd, dbn, enumeration, gaussian_rbm, hopfield, machine, rbm
from .ais import rbm_ais_log_z, sm_schedule
from .cd import (
    LR_SCHEDULES,
    BlockGibbsCD,
    CDResult,
    CDStepInfo,
    CDTrainer,
    GibbsCDDiagnostics,
    PersistentChains,
    fit_cd,
    parse_training,
)
from .dbn import DBN
from .enumeration import MAX_ENUMERATION_UNITS, enumerate_binary
from .gaussian_rbm import GaussianBernoulliRBM
from .hopfield import HOPFIELD_RULES, HopfieldNetwork, ModernHopfield, RecallResult
from .machine import BoltzmannMachine
from .rbm import RBM, BernoulliRBM

__all__ = [
    "DBN",
    "HOPFIELD_RULES",
    "LR_SCHEDULES",
    "MAX_ENUMERATION_UNITS",
    "RBM",
    "BernoulliRBM",
    "BlockGibbsCD",
    "BoltzmannMachine",
    "CDResult",
    "CDStepInfo",
    "CDTrainer",
    "GaussianBernoulliRBM",
    "GibbsCDDiagnostics",
    "HopfieldNetwork",
    "ModernHopfield",
    "PersistentChains",
    "RecallResult",
    "ais",
    "cd",
    "dbn",
    "enumerate_binary",
    "enumeration",
    "fit_cd",
    "gaussian_rbm",
    "hopfield",
    "machine",
    "parse_training",
    "rbm",
    "rbm_ais_log_z",
    "sm_schedule",
]
