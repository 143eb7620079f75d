"""scikit-learn estimators built on ebmlab's energies, objectives and samplers.

Each follows scikit-learn's conventions (``fit``/``predict``/``score_samples``,
hyperparameters stored verbatim, fitted attributes ending in ``_``).
"""

from __future__ import annotations

from .rbm import BernoulliRBM
from .regressor import EnergyRegressor

__all__ = ["BernoulliRBM", "EnergyRegressor"]
