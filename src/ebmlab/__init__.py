"""ebmlab: energy-based models end to end.

Fit, sample, evaluate and use models ``p(x) = exp(-E(x)) / Z`` whose normalizer
``Z`` is unknown. Low energy = high probability, everywhere in the library.

The subpackages (``ebmlab.energies``, ``ebmlab.samplers``, ...) load on first
use, so ``import ebmlab`` and commands that need no model (``ebmlab info``,
``ebmlab --help``) do not pay for torch and scikit-learn.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the lazy attributes below, for type checkers
    from . import (
        data,
        diagnostics,
        energies,
        errors,
        estimators,
        models,
        objectives,
        partition,
        samplers,
        train,
    )
    from ._info import show_versions
    from .samplers import sample

__all__ = [
    "__version__",
    "data",
    "diagnostics",
    "energies",
    "errors",
    "estimators",
    "models",
    "objectives",
    "partition",
    "sample",
    "samplers",
    "show_versions",
    "train",
]

_SUBPACKAGES = frozenset(
    {
        "data",
        "diagnostics",
        "energies",
        "errors",
        "estimators",
        "models",
        "objectives",
        "partition",
        "samplers",
        "train",
    }
)
_FUNCTIONS = {"sample": ".samplers", "show_versions": "._info"}


def __getattr__(name: str) -> object:
    """Import a subpackage (or the module of a top-level function) on first use."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(_FUNCTIONS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
