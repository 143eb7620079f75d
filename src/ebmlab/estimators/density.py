"""A scikit-learn density estimator whose model is an energy network.

:class:`EnergyDensity` standardizes tabular (or flattened) data, fits an
:class:`~ebmlab.energies.MLPEnergy` with a training objective chosen by name
(denoising score matching by default; noise-contrastive estimation, persistent
contrastive divergence, ...), and offers ``score_samples`` (log density, in the
input's units), ``score`` (mean log-likelihood) and ``sample(n)`` (MALA on the
fitted energy). The log partition function is estimated on first use (AIS,
quadrature in 1-3 dimensions, or NCE's learned ``log Z``) so that log densities
are normalized; ``normalized_`` says whether they are.
"""

from __future__ import annotations

__all__ = ["EnergyDensity"]

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.covariance import LedoitWolf
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from ..partition.estimate import Estimate
from ._common import (
    Standardizer,
    check_array_2d,
    check_int_params,
    derive_seed,
    fit_flat_energy,
    resolve_device,
)

#: How log Z is obtained (``None``: not at all, log densities are unnormalized).
LOG_Z_METHODS = ("auto", "quadrature", "ais", "nce")
STANDARDIZE = ("feature", "global")
REFERENCES = ("isotropic", "gaussian")


class EnergyDensity(DensityMixin, BaseEstimator):
    """Density estimation with an energy-based model: ``p(x) = exp(-E(x)) / Z``.

    Fitting: the columns of ``X`` are standardized (``standardize``); with
    ``reference="gaussian"`` the standardized data are also whitened by a
    shrunk (Ledoit-Wolf) covariance, so the energy's Gaussian term is a
    full-covariance Gaussian fitted to the data; then an MLP energy
    ``E(u) = f(u) + |u|^2 / (2 s^2)`` is trained on the transformed rows ``u``
    with ``objective``. Low energy = high density.

    ``score_samples`` returns ``log p(x)`` in the units of ``X`` (the
    Jacobian of the standardization included): normalized when
    ``log_z_method`` is not ``None`` (``log Z`` is then estimated once, on
    first use, and stored in ``log_z_`` with its standard error
    ``log_z_stderr_``), else ``-E`` up to an unknown constant. The attribute
    ``normalized_`` says which.

    Arguments:
        hidden: Hidden widths of the energy network.
        objective: Training objective, a name of
            :data:`ebmlab.objectives.OBJECTIVES`: ``"dsm"`` (denoising score
            matching, default), ``"nce"``, ``"ssm"``, ``"sm"``, ``"pcd"``,
            ``"cd"``, ``"short-run"``.
        objective_options: Keyword arguments of the objective, in the
            transformed units (default for ``"dsm"``: noise levels 1.0, 0.5,
            0.25; for ``"nce"``: a standard normal noise, the reference;
            for the CD family also ``step_size``, ``noise_scale``,
            ``buffer_size``, ``reinit_prob`` of the Langevin sampler).
        activation: Activation of the network.
        spectral_norm: Spectral normalization on every layer.
        standardize: ``"feature"`` (each column to mean 0, variance 1),
            ``"global"`` (centre, one common scale: keeps the relative spread
            of the columns, better for pixels) or ``None``.
        reference: ``"isotropic"`` (Gaussian term of standard deviation
            ``base_scale``), ``"gaussian"`` (whiten by a Ledoit-Wolf
            covariance, then a unit Gaussian term) or ``None`` (no term:
            ``exp(-E)`` may then not be integrable).
        base_scale: Standard deviation of the isotropic reference term.
        n_steps: Parameter updates.
        batch_size: Rows per update.
        learning_rate: Peak learning rate (Adam, cosine decay).
        weight_decay: Decoupled weight decay.
        log_z_method: ``"auto"`` (quadrature in 1-3 dimensions, else AIS),
            ``"quadrature"``, ``"ais"``, ``"nce"`` (the normalizer NCE
            learned; needs ``objective="nce"``) or ``None`` (unnormalized).
        n_ais_chains: AIS chains.
        n_ais_temperatures: AIS temperatures.
        n_sample_steps: MALA steps of :meth:`sample` (the first half adapt
            the step size towards 57% acceptance).
        sample_step_size: Initial MALA step size (transformed units).
        verbose: Show a progress bar while fitting.
        warm_start: Continue training from the fitted energy on the next
            ``fit`` (the fitted transform of the inputs is kept).
        checkpoint_dir: Directory for crash-safe checkpoints and
            ``metrics.csv``; a ``fit`` that finds a checkpoint there resumes
            it. ``None``: none.
        random_state: Seed (int), ``numpy.random.RandomState`` or ``None``:
            fixes the initial weights, minibatches, objective noise, log Z
            estimate and samples.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.

    Attributes:
        energy_: The fitted :class:`~ebmlab.energies.MLPEnergy` (transformed
            units ``u``, on CPU).
        n_features_in_: Number of columns of ``X``.
        feature_names_in_: Column names when ``X`` had them.
        mean_, scale_: The standardization ``z = (x - mean_) / scale_``.
        whitening_: ``(n_features, n_features)`` matrix ``W``, ``u = z W``
            (the identity unless ``reference="gaussian"``).
        normalized_: Whether :meth:`score_samples` is normalized.
        log_z_: ``log Z`` of ``energy_`` (nats; computed on first use;
            ``nan`` when ``log_z_method`` is ``None``).
        log_z_stderr_: Its standard error.
        log_z_estimate_: The :class:`~ebmlab.partition.Estimate`, or ``None``.
        loss_curve_: Logged training losses.

    Example:
        >>> import numpy as np
        >>> X = np.random.RandomState(0).randn(200, 2)
        >>> est = EnergyDensity(hidden=(16,), n_steps=50, random_state=0).fit(X)
        >>> est.score_samples(X[:5]).shape, est.normalized_, est.sample(3).shape
        ((5,), True, (3, 2))
    """

    def __init__(
        self,
        hidden: Sequence[int] = (64, 64),
        *,
        objective: str = "dsm",
        objective_options: dict[str, Any] | None = None,
        activation: str = "silu",
        spectral_norm: bool = False,
        standardize: str | None = "feature",
        reference: str | None = "isotropic",
        base_scale: float = 2.0,
        n_steps: int = 500,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-2,
        log_z_method: str | None = "auto",
        n_ais_chains: int = 128,
        n_ais_temperatures: int = 500,
        n_sample_steps: int = 400,
        sample_step_size: float = 0.05,
        verbose: bool = False,
        warm_start: bool = False,
        checkpoint_dir: Any = None,
        random_state: Any = None,
        device: str = "cpu",
    ) -> None:
        self.hidden = hidden
        self.objective = objective
        self.objective_options = objective_options
        self.activation = activation
        self.spectral_norm = spectral_norm
        self.standardize = standardize
        self.reference = reference
        self.base_scale = base_scale
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.log_z_method = log_z_method
        self.n_ais_chains = n_ais_chains
        self.n_ais_temperatures = n_ais_temperatures
        self.n_sample_steps = n_sample_steps
        self.sample_step_size = sample_step_size
        self.verbose = verbose
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.device = device

    # -- validation ------------------------------------------------------------------

    def _check_params(self) -> None:
        from ..objectives import OBJECTIVES

        check_int_params(
            self,
            (
                ("n_steps", 0),
                ("batch_size", 1),
                ("n_ais_chains", 2),
                ("n_ais_temperatures", 3),
                ("n_sample_steps", 0),
            ),
        )
        for name in ("learning_rate", "base_scale", "sample_step_size"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (isinstance(self.weight_decay, int | float) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}"
            )
        if self.standardize is not None and self.standardize not in STANDARDIZE:
            raise ValueError(
                f"standardize must be one of {list(STANDARDIZE)} or None, got {self.standardize!r}"
            )
        if self.reference is not None and self.reference not in REFERENCES:
            raise ValueError(
                f"reference must be one of {list(REFERENCES)} or None, got {self.reference!r}"
            )
        if self.log_z_method is not None and self.log_z_method not in LOG_Z_METHODS:
            raise ValueError(
                f"log_z_method must be one of {list(LOG_Z_METHODS)} or None, "
                f"got {self.log_z_method!r}"
            )
        if self.log_z_method == "nce" and self.objective != "nce":
            raise ValueError(
                f"log_z_method='nce' needs objective='nce', got objective={self.objective!r}"
            )

    # -- fitting ---------------------------------------------------------------------

    def _fit_transform_params(self, X: np.ndarray) -> np.ndarray:
        """Set ``mean_``, ``scale_``, ``whitening_``; return the transformed rows."""
        d = X.shape[1]
        if self.standardize == "feature":
            s = Standardizer().fit(X)
            self.mean_, self.scale_ = s.mean_, s.scale_
        elif self.standardize == "global":
            self.mean_ = X.mean(0)
            rms = float(np.sqrt(np.mean(X.var(0))))
            scale = rms if rms > 1e-12 * (1.0 + float(np.abs(self.mean_).max())) else 1.0
            self.scale_ = np.full(d, scale)
        else:
            self.mean_, self.scale_ = np.zeros(d), np.ones(d)
        Z = (X - self.mean_) / self.scale_
        self.whitening_ = np.eye(d)
        if self.reference == "gaussian":
            cov = LedoitWolf().fit(Z).covariance_ if X.shape[0] > 1 else np.eye(d)
            w, V = np.linalg.eigh(0.5 * (cov + cov.T))
            w = np.maximum(w, 1e-6 * max(float(w.max()), 1e-12))
            self.whitening_ = (V / np.sqrt(w)) @ V.T
        return Z @ self.whitening_  # type: ignore[no-any-return]

    def _objective_options(self, U: np.ndarray) -> dict[str, Any]:
        options = dict(self.objective_options or {})
        if self.objective == "dsm" and not options:
            options["noise_levels"] = [1.0, 0.5, 0.25]
        if self.objective == "nce" and "noise" not in options:
            from ..energies import Gaussian

            # The reference (unit Gaussian) as noise: NCE then learns the correction.
            scale = float(self.base_scale) if self.reference == "isotropic" else 1.0
            d = U.shape[1]
            options["noise"] = Gaussian(torch.zeros(d), scale**2 * torch.eye(d))
        return options

    def fit(self, X: Any, y: Any = None) -> EnergyDensity:
        """Fit the energy to the rows of ``X``.

        Arguments:
            X: Training data, array-like or DataFrame, shape
                ``(n_samples, n_features)``.
            y: Ignored.

        Returns:
            ``self``.
        """
        self._check_params()
        previous = getattr(self, "energy_", None) if self.warm_start else None
        Xa = check_array_2d(X, estimator=self, reset=previous is None)
        device = resolve_device(self.device)
        seed = derive_seed(self.random_state)
        U = self._fit_transform_params(Xa) if previous is None else self._transform(Xa)
        result = fit_flat_energy(
            U,
            objective=self.objective,
            objective_options=self._objective_options(U),
            hidden=tuple(int(h) for h in self.hidden),
            activation=self.activation,
            spectral_norm=bool(self.spectral_norm),
            base_scale=(
                None
                if self.reference is None
                else float(self.base_scale)
                if self.reference == "isotropic"
                else 1.0
            ),
            n_steps=int(self.n_steps),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
            seed=seed,
            device=device,
            verbose=bool(self.verbose),
            energy=previous,
            checkpoint_dir=self.checkpoint_dir,
        )
        self.energy_ = result.energy.cpu()
        self.loss_curve_ = np.asarray(result.losses, dtype=np.float64)
        self._learned_log_z = (
            float(result.objective.log_z.detach()) if self.objective == "nce" else math.nan
        )
        self._seed = seed
        self._sample_generator = torch.Generator().manual_seed(seed + 2)
        self._log_z_cache: Estimate | None = None
        self._train_u = torch.as_tensor(U[: min(len(U), 2000)], dtype=torch.float32)
        self.normalized_ = self.log_z_method is not None
        return self

    # -- using the model -------------------------------------------------------------

    def _transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        Xa = check_array_2d(X, estimator=self, reset=False)
        return ((Xa - self.mean_) / self.scale_) @ self.whitening_  # type: ignore[no-any-return]

    def _energy_np(self, U: np.ndarray) -> np.ndarray:
        """Energies of transformed rows, float64 NumPy, computed in blocks.

        Evaluated in float64 (on a float64 copy of the network): in float32 the
        matrix products' summation order, which depends on how many rows are
        scored together, shows in the scores (up to ~5e-7), so a row's score
        would depend on the batch it came in.
        """
        out = []
        energy = copy.deepcopy(self.energy_).double()
        with torch.no_grad():
            for start in range(0, U.shape[0], 4096):
                u = torch.as_tensor(U[start : start + 4096], dtype=torch.float64)
                out.append(energy(u).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def energy(self, X: Any) -> np.ndarray:
        """Energy ``E(u(x))`` of each row (low = probable; transformed units, no log Z).

        Arguments:
            X: Rows, shape ``(n_samples, n_features)``.

        Returns:
            Energies, shape ``(n_samples,)``.
        """
        return self._energy_np(self._transform(X))

    @property
    def log_z_estimate_(self) -> Estimate | None:
        """The :class:`~ebmlab.partition.Estimate` of ``log Z`` (computed once per fit)."""
        check_is_fitted(self)
        if self.log_z_method is None:
            return None
        if self._log_z_cache is None:
            self._log_z_cache = self._estimate_log_z()
        return self._log_z_cache

    def _estimate_log_z(self) -> Estimate:
        from ..partition import log_z

        if self.log_z_method == "nce":
            v = self._learned_log_z
            return Estimate(v, math.nan, v, v, "nce", 0.0)
        energy = copy.deepcopy(self.energy_).double()
        options: dict[str, Any] = {}
        if self.log_z_method == "ais" or (self.log_z_method == "auto" and self.n_features_in_ > 3):
            options = {
                "n_chains": int(self.n_ais_chains),
                "n_temperatures": int(self.n_ais_temperatures),
            }
        return log_z(
            energy,
            str(self.log_z_method),
            data=self._train_u.double(),
            generator=torch.Generator().manual_seed(self._seed + 3),
            **options,
        )

    @property
    def log_z_(self) -> float:
        """``log Z`` of ``energy_`` in nats (``nan`` when not estimated)."""
        est = self.log_z_estimate_
        return math.nan if est is None else float(est.value)

    @property
    def log_z_stderr_(self) -> float:
        """Standard error of ``log_z_`` (``nan`` when unknown)."""
        est = self.log_z_estimate_
        return math.nan if est is None else float(est.stderr)

    def _log_jacobian(self) -> float:
        """``log |det du/dx|`` of the transformation."""
        _sign, logdet_w = np.linalg.slogdet(self.whitening_)
        return float(logdet_w - np.sum(np.log(self.scale_)))

    def score_samples(self, X: Any) -> np.ndarray:
        """Log density of each row, in the units of ``X``.

        ``log p(x) = -E(u(x)) - log Z + log |det du/dx|``: normalized when
        ``normalized_`` is true (``log Z`` estimated: see ``log_z_``), else
        without the ``log Z`` term (a log density up to a constant).

        Arguments:
            X: Rows, shape ``(n_samples, n_features)``.

        Returns:
            Log densities in nats, shape ``(n_samples,)``.
        """
        U = self._transform(X)
        log_z = self.log_z_ if self.normalized_ else 0.0
        return -self._energy_np(U) - log_z + self._log_jacobian()  # type: ignore[no-any-return]

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood of the rows of ``X`` (see :meth:`score_samples`)."""
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Draw rows from the fitted model by MALA, returned in the units of ``X``.

        Chains start from the reference Gaussian and run ``n_sample_steps``
        MALA steps; the step size adapts during the first half.

        Arguments:
            n_samples: Number of rows.
            random_state: Seed for this call; ``None`` continues the
                estimator's own stream (seeded by ``random_state`` at fit).

        Returns:
            Samples, shape ``(n_samples, n_features)``.
        """
        from ..samplers import MALA, run

        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer):
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        g = (
            self._sample_generator
            if random_state is None
            else torch.Generator().manual_seed(derive_seed(random_state))
        )
        d = int(self.n_features_in_)
        scale = float(self.base_scale) if self.reference == "isotropic" else 1.0
        u = scale * torch.randn(int(n_samples), d, generator=g)
        step = float(self.sample_step_size)
        n_total = int(self.n_sample_steps)
        n_adapt = n_total // 2
        state: Any = u
        done = 0
        while done < n_total:
            k = min(10, n_total - done)
            out = run(MALA(step), self.energy_, state, k, generator=g)
            state = out.state
            if done < n_adapt:
                acc = float(out.acceptance_rate.mean())
                step *= math.exp(2.0 * (acc - 0.574))
            done += k
        x_u = state.x if not isinstance(state, Tensor) else state
        Z = x_u.double().numpy() @ np.linalg.inv(self.whitening_)
        return Z * self.scale_ + self.mean_  # type: ignore[no-any-return]
