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
* :mod:`ebmlab.estimators`: scikit-learn estimators.
* :mod:`ebmlab.runs`: run directories, under the ``ebmlab`` command line
  (:mod:`ebmlab.cli`).
* :mod:`ebmlab.diagnostics`, :mod:`ebmlab.evaluation`, :mod:`ebmlab.plotting`,
  :mod:`ebmlab.config`, :mod:`ebmlab.errors`: MCMC diagnostics, evaluation
  metrics, figures, the run configuration, the error classes;
  :mod:`ebmlab.sample_quality`: FID and KID of image samples in the features of a
  small classifier trained on the same data.
* :func:`show_versions` (``ebmlab info``): the environment, for bug reports.

The subpackages load on first use, so ``import ebmlab`` and commands that need
no model (``ebmlab info``, ``ebmlab --help``) do not pay for torch and
scikit-learn. ``ebmlab.models`` is the deprecated home of the model families:
its names still import, with a :class:`DeprecationWarning`, for one release.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:  # the lazy attributes below, for type checkers
    from . import (
        boltzmann,
        conditional,
        data,
        diagnostics,
        energies,
        errors,
        estimators,
        lattice,
        objectives,
        partition,
        samplers,
        train,
    )
    from ._info import show_versions
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
    "show_versions",
    "train",
]

_SUBPACKAGES = frozenset(
    {
        "boltzmann",
        "conditional",
        "data",
        "diagnostics",
        "energies",
        "errors",
        "estimators",
        "lattice",
        "models",
        "objectives",
        "partition",
        "runs",
        "samplers",
        "train",
    }
)
_FUNCTIONS = {"sample": ".samplers", "show_versions": "._info"}


def __getattr__(name: str) -> object:
    """Import a subpackage (or the module of a top-level function) on first use; the
    deprecated ``ebmlab.models`` warns when its names are used."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(_FUNCTIONS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
