"""scikit-learn estimators built on ebmlab's energies, objectives and samplers.

Each follows scikit-learn's conventions (``fit``/``predict``/``score_samples``,
hyperparameters stored verbatim, fitted attributes ending in ``_``):

* :class:`EnergyDensity` (``density.py``): density estimation with a neural
  energy, trained by any objective, normalized by :mod:`ebmlab.partition`.
* :class:`EnergyOutlierDetector` (``outlier.py``): anomaly detection on it.
* :class:`EnergyClassifier` (``classifier.py``): a JEM classifier.
* :class:`EnergyRegressor` (``regressor.py``): regression with a conditional
  energy from :mod:`ebmlab.conditional` (every low-energy answer).
* :class:`EnergyDenoiser` (``denoiser.py``): denoising and inpainting with
  noise-conditional energies.
* :class:`BernoulliRBM` (``rbm.py``): scikit-learn's RBM API over
  :mod:`ebmlab.boltzmann`.

Also public in their modules: ``classifier.expected_calibration_error``,
``classifier.ece_floor`` (the ECE a calibrated model shows on the same rows) and
``classifier.make_mlp`` (the default backbone); ``denoiser.psnr``,
``denoiser.METHODS`` and ``denoiser.NOISE_MODELS``.

Shared checks and set-up in ``_common.py``. Builds on the model families,
:mod:`ebmlab.objectives`, :mod:`ebmlab.train`, :mod:`ebmlab.partition` and
:mod:`ebmlab.samplers`; imported on first use of ``ebmlab.estimators``.
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
