"""ebmlab: energy-based models end to end.

Fit, sample, evaluate and use models ``p(x) = exp(-E(x)) / Z`` whose normalizer
``Z`` is unknown. Low energy = high probability, everywhere in the library.

Subpackages, bottom layer first (docs/architecture.md has the map):

* :mod:`ebmlab.energies`: the energy contract, neural, closed-form and latent
  energies, composition.
* :mod:`ebmlab.samplers`: MCMC transitions (Langevin, MALA, HMC, Gibbs,
  Metropolis, cluster moves, Gibbs-with-gradients), the replay buffer,
  :func:`sample`.
* :mod:`ebmlab.partition`: log Z (enumeration, quadrature, AIS, BDMC) and
  likelihoods.
* :mod:`ebmlab.data`, :mod:`ebmlab.train`: toy distributions and file loaders;
  the training loop with checkpoints and resume.
* :mod:`ebmlab.objectives`: training losses (contrastive divergence, score
  matching, noise-contrastive estimation).
* Model families: :mod:`ebmlab.lattice` (Ising, Potts), :mod:`ebmlab.boltzmann`
  (Boltzmann machines, RBMs, DBN, Hopfield), :mod:`ebmlab.conditional`
  (conditional energies ``F(x, y)``).
* :mod:`ebmlab.estimators`: scikit-learn estimators (imported on first use).
* :mod:`ebmlab.runs`: run directories, under the ``ebmlab`` command line
  (:mod:`ebmlab.cli`).
* :mod:`ebmlab.diagnostics`, :mod:`ebmlab.evaluation`, :mod:`ebmlab.plotting`,
  :mod:`ebmlab.config`, :mod:`ebmlab.errors`: MCMC diagnostics, evaluation
  metrics, figures, the run configuration, the error classes.

``ebmlab.models`` is the deprecated home of the model families: its names still
import, with a :class:`DeprecationWarning`, for one release.
"""

from __future__ import annotations

from . import (
    boltzmann,
    conditional,
    data,
    diagnostics,
    energies,
    errors,
    lattice,
    objectives,
    partition,
    samplers,
    train,
)
from ._version import __version__
from .samplers import sample

__all__ = [
    "__version__",
    "boltzmann",
    "conditional",
    "data",
    "diagnostics",
    "energies",
    "errors",
    "estimators",
    "lattice",
    "objectives",
    "partition",
    "sample",
    "samplers",
    "train",
]


def __getattr__(name: str) -> object:
    """Import ``ebmlab.estimators`` (and with it scikit-learn), ``ebmlab.runs`` and the
    deprecated ``ebmlab.models`` on first use."""
    if name in ("estimators", "models", "runs"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
