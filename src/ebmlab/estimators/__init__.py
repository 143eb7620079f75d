"""scikit-learn estimators built on ebmlab's energies, objectives and samplers.

Each follows scikit-learn's conventions (``fit``/``predict``/``score_samples``,
hyperparameters stored verbatim, fitted attributes ending in ``_``).
"""

from __future__ import annotations

from .classifier import EnergyClassifier
from .denoiser import EnergyDenoiser
from .density import EnergyDensity
from .outlier import EnergyOutlierDetector
from .rbm import BernoulliRBM
from .regressor import EnergyRegressor

__all__ = [
    "BernoulliRBM",
    "EnergyClassifier",
    "EnergyDenoiser",
    "EnergyDensity",
    "EnergyOutlierDetector",
    "EnergyRegressor",
]
