"""Outlier (novelty) detection with an energy-based model.

:class:`EnergyOutlierDetector` follows scikit-learn's outlier-detector API
(``fit``, ``score_samples``, ``decision_function``, ``predict`` giving
+1 inlier / -1 outlier, ``fit_predict``, ``contamination`` and ``offset_``).
It fits an :class:`~ebmlab.estimators.EnergyDensity` to the training rows: by
default the data are centred and scaled by one common factor, whitened by a
shrunk (Ledoit-Wolf) covariance, and an MLP energy on top of that Gaussian
reference is trained by denoising score matching.
High energy = anomalous.
"""

from __future__ import annotations

__all__ = ["EnergyOutlierDetector"]

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from ._common import check_array_2d
from .density import EnergyDensity


class EnergyOutlierDetector(OutlierMixin, BaseEstimator):
    """Novelty detection by the energy of a model fitted to normal data.

    ``score_samples(X)`` is ``-E(x)``, the unnormalized log density of the
    fitted model (higher = more normal, as scikit-learn's detectors);
    ``offset_`` is its ``contamination`` quantile over the training rows, and
    ``decision_function = score_samples - offset_`` is negative for outliers,
    which ``predict`` labels ``-1`` (inliers ``+1``).

    The model (see :class:`~ebmlab.estimators.EnergyDensity`) is
    ``E(u) = f(u) + |u|^2 / 2`` on whitened inputs ``u``: a full-covariance
    Gaussian reference (Ledoit-Wolf shrinkage, fitted to the training rows
    only) plus a neural correction ``f`` trained with ``objective``, kept
    small by weight decay. Inputs are standardized inside (``standardize``).

    Arguments:
        hidden: Hidden widths of the energy network.
        contamination: Expected fraction of outliers in the training data,
            in ``(0, 0.5]``: sets ``offset_``.
        objective: Training objective (``"dsm"``, ``"nce"``, ``"pcd"``, ...;
            see :data:`ebmlab.objectives.OBJECTIVES`).
        objective_options: Keyword arguments of the objective.
        standardize: ``"global"`` (centre and divide by one common scale,
            default: keeps near-constant columns such as border pixels from
            being blown up), ``"feature"`` (each column to unit variance) or
            ``None``.
        reference: ``"gaussian"`` (default), ``"isotropic"`` or ``None``
            (see :class:`~ebmlab.estimators.EnergyDensity`).
        spectral_norm: Spectral normalization of the network's layers.
        n_steps: Parameter updates.
        batch_size: Rows per update.
        learning_rate: Peak learning rate.
        weight_decay: Decoupled weight decay.
        verbose: Show a progress bar while fitting.
        warm_start: Continue training from the fitted energy on the next
            ``fit`` (the fitted transform of the inputs is kept).
        checkpoint_dir: Directory for crash-safe checkpoints and
            ``metrics.csv``; a ``fit`` that finds a checkpoint there resumes
            it. ``None``: none.
        random_state: Seed (int), ``numpy.random.RandomState`` or ``None``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.

    Attributes:
        density_: The fitted :class:`~ebmlab.estimators.EnergyDensity`
            (``log_z_method=None``: the scores need no normalizer).
        offset_: Threshold on ``score_samples``.
        n_features_in_: Number of columns of ``X``.
        feature_names_in_: Column names when ``X`` had them.

    Example:
        >>> import numpy as np
        >>> X = np.random.RandomState(0).randn(100, 3)
        >>> det = EnergyOutlierDetector(hidden=(16,), n_steps=30, random_state=0).fit(X)
        >>> det.predict(np.array([[0.0, 0.0, 0.0], [9.0, 9.0, 9.0]])).tolist()
        [1, -1]
    """

    def __init__(
        self,
        hidden: Sequence[int] = (64, 64),
        *,
        contamination: float = 0.1,
        objective: str = "dsm",
        objective_options: dict[str, Any] | None = None,
        standardize: str | None = "global",
        reference: str | None = "gaussian",
        spectral_norm: bool = False,
        n_steps: int = 300,
        batch_size: int = 128,
        learning_rate: float = 1e-2,
        weight_decay: float = 1e-2,
        verbose: bool = False,
        warm_start: bool = False,
        checkpoint_dir: Any = None,
        random_state: Any = None,
        device: str = "cpu",
    ) -> None:
        self.hidden = hidden
        self.contamination = contamination
        self.objective = objective
        self.objective_options = objective_options
        self.standardize = standardize
        self.reference = reference
        self.spectral_norm = spectral_norm
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.verbose = verbose
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.device = device

    def fit(self, X: Any, y: Any = None) -> EnergyOutlierDetector:
        """Fit the model to normal rows and set ``offset_``.

        Arguments:
            X: Training rows (mostly normal), shape ``(n_samples, n_features)``.
            y: Ignored.

        Returns:
            ``self``.
        """
        c = self.contamination
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c <= 0.5:
            raise ValueError(f"contamination must be a number in (0, 0.5], got {c!r}")
        Xa = check_array_2d(X, estimator=self, reset=True)
        previous: EnergyDensity | None = getattr(self, "density_", None)
        if self.warm_start and previous is not None:
            previous.set_params(n_steps=self.n_steps, checkpoint_dir=self.checkpoint_dir)
            previous.fit(Xa)
            self.offset_ = float(np.percentile(self._scores(Xa), 100.0 * float(c)))
            return self
        self.density_ = EnergyDensity(
            hidden=self.hidden,
            objective=self.objective,
            objective_options=self.objective_options,
            spectral_norm=self.spectral_norm,
            standardize=self.standardize,
            reference=self.reference,
            base_scale=1.0,
            n_steps=self.n_steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            log_z_method=None,
            verbose=self.verbose,
            warm_start=bool(self.warm_start),
            checkpoint_dir=self.checkpoint_dir,
            random_state=self.random_state,
            device=self.device,
        ).fit(Xa)
        train_scores = self._scores(Xa)
        self.offset_ = float(np.percentile(train_scores, 100.0 * float(c)))
        return self

    def _scores(self, Xa: np.ndarray) -> np.ndarray:
        return -self.density_.energy(Xa)

    def score_samples(self, X: Any) -> np.ndarray:
        """``-E(x)``: higher = more normal (the opposite of an anomaly score).

        Unnormalized: the model's log density up to a constant.

        Arguments:
            X: Rows, shape ``(n_samples, n_features)``.

        Returns:
            Scores, shape ``(n_samples,)``.
        """
        check_is_fitted(self)
        Xa = check_array_2d(X, estimator=self, reset=False)
        return self._scores(Xa)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers.

        Arguments:
            X: Rows, shape ``(n_samples, n_features)``.

        Returns:
            Shifted scores, shape ``(n_samples,)``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """``+1`` for inliers, ``-1`` for outliers (``decision_function < 0``).

        Arguments:
            X: Rows, shape ``(n_samples, n_features)``.

        Returns:
            Labels, shape ``(n_samples,)``, integers.
        """
        d = self.decision_function(X)
        return np.where(d < 0, -1, 1)

    @property
    def energy_threshold_(self) -> float:
        """The energy above which a row is an outlier (``-offset_``)."""
        check_is_fitted(self)
        return -self.offset_ if math.isfinite(self.offset_) else math.inf
