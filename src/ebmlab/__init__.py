"""ebmlab: energy-based models end to end.

Fit, sample, evaluate and use models ``p(x) = exp(-E(x)) / Z`` whose normalizer
``Z`` is unknown. Low energy = high probability, everywhere in the library.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import data, diagnostics, energies, errors, models, objectives, partition, samplers, train
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
    "train",
]


def __getattr__(name: str) -> object:
    """Import ``ebmlab.estimators`` (and with it scikit-learn) on first use."""
    if name == "estimators":
        import importlib

        return importlib.import_module(f"{__name__}.estimators")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
