"""Deprecated: the model families moved to their own packages.

``ebmlab.models`` held the lattice models, the Boltzmann machines, the
conditional energies and the latent energies. They now live in
:mod:`ebmlab.lattice`, :mod:`ebmlab.boltzmann`, :mod:`ebmlab.conditional` and
:mod:`ebmlab.energies.latent` (its training function, ``fit_energy_loss``, in
:mod:`ebmlab.objectives`; docs/architecture.md has the map). Every name and
submodule that ``ebmlab.models`` offered (``ebmlab.models.IsingModel``,
``ebmlab.models.rbm.enumerate_binary``, ...) still resolves for one release and
warns with a :class:`DeprecationWarning` naming the new path on each use.

This module imports nothing at import time; it is the top of the layer order
(nothing in the library may import it).
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

__all__: list[str] = []

#: Old submodule of ``ebmlab.models`` -> the modules its names are now in, searched in order.
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "ising": ("ebmlab.lattice.ising", "ebmlab.lattice.potts"),
    "observables": ("ebmlab.lattice.observables", "ebmlab.lattice.exact"),
    "denoise": ("ebmlab.lattice.denoise",),
    "boltzmann": ("ebmlab.boltzmann.machine",),
    "rbm": (
        "ebmlab.boltzmann.rbm",
        "ebmlab.boltzmann.gaussian_rbm",
        "ebmlab.boltzmann.cd",
        "ebmlab.boltzmann.enumeration",
    ),
    "_rbm_ais": ("ebmlab.boltzmann.ais",),
    "dbn": ("ebmlab.boltzmann.dbn",),
    "hopfield": ("ebmlab.boltzmann.hopfield",),
    "conditional": (
        "ebmlab.conditional.energies",
        "ebmlab.conditional.inference",
        "ebmlab.conditional.fit",
    ),
    "_conditional_inference": ("ebmlab.conditional.inference",),
    "likelihood": ("ebmlab.conditional.likelihood",),
    "latent": ("ebmlab.energies.latent", "ebmlab.objectives.energy_loss"),
}

#: Names ``ebmlab.models`` exported -> the package that exports them now.
MOVED_NAMES: dict[str, str] = {
    **dict.fromkeys(
        [
            "CRITICAL_TEMPERATURE",
            "IsingDenoiser",
            "IsingModel",
            "PottsModel",
            "estimate_observables",
            "flip_pixels",
            "kaufman_observables",
            "onsager_energy",
            "onsager_magnetization",
            "pixel_error",
            "reweight_observables",
            "run_ising",
            "simulate",
        ],
        "ebmlab.lattice",
    ),
    **dict.fromkeys(
        [
            "DBN",
            "RBM",
            "BernoulliRBM",
            "BoltzmannMachine",
            "CDTrainer",
            "GaussianBernoulliRBM",
            "HopfieldNetwork",
            "ModernHopfield",
            "fit_cd",
        ],
        "ebmlab.boltzmann",
    ),
    **dict.fromkeys(
        [
            "BernoulliEnergy",
            "CategoricalEnergy",
            "ConditionalEnergy",
            "DiscreteConditionalEnergy",
            "ExponentialEnergy",
            "GaussianEnergy",
            "GibbsConditional",
            "JointEmbeddingEnergy",
            "LatentConditionalEnergy",
            "MLPConditionalEnergy",
            "Modes",
            "QuadraticConditionalEnergy",
            "fit_conditional",
            "fit_likelihood",
            "fit_mle",
            "gibbs_conditional",
            "infer",
            "sample_conditional",
        ],
        "ebmlab.conditional",
    ),
    **dict.fromkeys(["KMeansEnergy", "PCAEnergy", "SparseCodingEnergy"], "ebmlab.energies"),
    "fit_energy_loss": "ebmlab.objectives",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=3,
    )


def _resolve(old_module: str, name: str) -> Any:
    """``name`` from the first new home of ``ebmlab.models.<old_module>`` that has it."""
    for target in MOVED_MODULES[old_module]:
        module = importlib.import_module(target)
        if hasattr(module, name):
            _warn(f"ebmlab.models.{old_module}.{name}", f"{target}.{name}")
            return getattr(module, name)
    raise AttributeError(f"module 'ebmlab.models.{old_module}' has no attribute {name!r}")


class _MovedModule(types.ModuleType):
    """Stands at an old submodule path; each attribute is looked up in the new modules."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _resolve(self.__name__.rsplit(".", 1)[1], name)

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for target in MOVED_MODULES[self.__name__.rsplit(".", 1)[1]]:
            names.update(dir(importlib.import_module(target)))
        return sorted(names)


for _old, _targets in MOVED_MODULES.items():
    _module = _MovedModule(f"{__name__}.{_old}", f"Deprecated alias of {', '.join(_targets)}.")
    _module.__package__ = __name__
    sys.modules[_module.__name__] = _module


def __getattr__(name: str) -> Any:
    if name in MOVED_MODULES:
        return sys.modules[f"{__name__}.{name}"]
    if name in MOVED_NAMES:
        target = MOVED_NAMES[name]
        _warn(f"ebmlab.models.{name}", f"{target}.{name}")
        return getattr(importlib.import_module(target), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
