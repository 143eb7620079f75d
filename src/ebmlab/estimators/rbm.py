"""A drop-in for scikit-learn's ``BernoulliRBM`` with exact log-likelihoods.

:class:`BernoulliRBM` takes scikit-learn's constructor parameters (same names,
same defaults) and sets the same fitted attributes (``components_``,
``intercept_hidden_``, ``intercept_visible_``), with ``fit``,
``partial_fit``, ``transform``, ``gibbs`` and ``score_samples``. It trains an
:class:`ebmlab.boltzmann.BernoulliRBM` by persistent contrastive divergence (the
default, as scikit-learn) or CD-k, with optional momentum, weight decay and a
learning-rate schedule, through :func:`ebmlab.train.fit` (by
:func:`ebmlab.boltzmann.fit_cd`; ``partial_fit`` is one step of that loop).
``score_samples`` is the *log-likelihood* ``log p(v)``,
exact when a layer has at most 26 units and an AIS estimate otherwise
(scikit-learn returns a pseudo-likelihood instead); ``log_z_`` holds the
log partition function it uses.
"""

from __future__ import annotations

__all__ = ["BernoulliRBM"]

import time
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..boltzmann.cd import LR_SCHEDULES, CDTrainer, fit_cd, parse_training
from ..boltzmann.enumeration import MAX_ENUMERATION_UNITS
from ..boltzmann.rbm import BernoulliRBM as _RBMModule
from ..partition.estimate import Estimate

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X)


class BernoulliRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Bernoulli restricted Boltzmann machine (binary visible and hidden units).

    The model is ``p(v) = exp(-F(v)) / Z`` with free energy
    ``F(v) = -v . intercept_visible_ - sum_j softplus(intercept_hidden_j +
    components_j . v)``. Inputs should be binary or in ``[0, 1]``.

    Arguments:
        n_components: Number of hidden units.
        learning_rate: Step size on the batch-mean gradient (scikit-learn's
            ``learning_rate``; its updates are the same).
        batch_size: Rows per update.
        n_iter: Epochs (passes over the data) in :meth:`fit`.
        verbose: Print one line per epoch.
        random_state: Seed (int), ``numpy.random.RandomState`` or ``None``:
            fixes the initial weights, the row order and the Gibbs chains.
        training: ``"pcd"`` (persistent CD, default, as scikit-learn),
            ``"cd"``, ``"cd-k"`` or ``"pcd-k"`` (``k`` Gibbs steps per update).
        n_chains: Persistent chains of ``"pcd"`` (default ``batch_size``).
        momentum: SGD momentum in ``[0, 1)`` (0: plain SGD as scikit-learn).
        weight_decay: L2 penalty on ``components_``.
        lr_schedule: ``"constant"`` or ``"linear"`` (decays to 0 over ``n_iter``
            epochs).
        log_z_method: ``"auto"`` (exact when a layer has at most 26 units,
            else AIS), ``"exact"`` or ``"ais"``. AIS starts from the
            base-rate model of the training data (Salakhutdinov & Murray 2008).
        n_ais_chains: AIS runs when AIS is used.
        n_ais_betas: AIS annealing steps.

    Attributes:
        components_: Weights, shape ``(n_components, n_features)``.
        intercept_hidden_: Hidden biases, shape ``(n_components,)``.
        intercept_visible_: Visible biases, shape ``(n_features,)``.
        n_features_in_: Number of features seen in ``fit``.
        feature_names_in_: Column names, when ``X`` had them.
        log_z_: ``log Z`` (nats), computed on first use after each fit.
        log_z_estimate_: The :class:`~ebmlab.partition.Estimate` behind
            ``log_z_`` (method, standard error).
        model_: A copy of the fitted model as an
            :class:`ebmlab.boltzmann.BernoulliRBM` module.

    Example:
        >>> import numpy as np
        >>> X = (np.random.RandomState(0).rand(50, 6) > 0.5).astype(float)
        >>> rbm = BernoulliRBM(n_components=3, n_iter=5, random_state=0).fit(X)
        >>> rbm.transform(X).shape, rbm.score_samples(X).shape
        ((50, 3), (50,))
        >>> bool(np.exp(rbm.score_samples(X)).max() < 1.0)
        True
    """

    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.1,
        batch_size: int = 10,
        n_iter: int = 10,
        verbose: int = 0,
        random_state: Any = None,
        training: str = "pcd",
        n_chains: int | None = None,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        log_z_method: str = "auto",
        n_ais_chains: int = 100,
        n_ais_betas: int = 1000,
    ) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.training = training
        self.n_chains = n_chains
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.log_z_method = log_z_method
        self.n_ais_chains = n_ais_chains
        self.n_ais_betas = n_ais_betas

    # -- validation ----------------------------------------------------------
    def _check_params(self) -> None:
        def integer(name: str, low: int, allow_none: bool = False) -> None:
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

        integer("n_components", 1)
        integer("batch_size", 1)
        integer("n_iter", 0)
        integer("n_chains", 1, allow_none=True)
        integer("n_ais_chains", 2)
        integer("n_ais_betas", 3)
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a number > 0, got {self.learning_rate!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if self.log_z_method not in ("auto", "exact", "ais"):
            raise ValueError(
                f"log_z_method must be 'auto', 'exact' or 'ais', got {self.log_z_method!r}"
            )
        parse_training(self.training)

    def _validate(self, X: Any, *, reset: bool) -> np.ndarray:
        X = _validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=reset
        )
        return _dense(X)

    # -- state ---------------------------------------------------------------
    def _generator(self) -> torch.Generator:
        g = torch.Generator()
        g.set_state(self._rng_state)
        return g

    @property
    def model_(self) -> _RBMModule:
        """The fitted parameters as an :class:`ebmlab.boltzmann.BernoulliRBM` (a new copy).

        Use it for what the estimator does not wrap: Gibbs chains
        (``model_.sample``), AIS with other settings (``model_.ais_log_z``).
        """
        return self._module()

    def _module(self) -> _RBMModule:
        check_is_fitted(self)
        w = torch.from_numpy(self.components_)
        # A throwaway generator: the (overwritten) initial weights never touch the global RNG.
        rbm = _RBMModule(
            w.shape[1], w.shape[0], weight_scale=0.0, generator=torch.Generator(), dtype=w.dtype
        )
        with torch.no_grad():
            rbm.weight.copy_(w)
            rbm.visible_bias.copy_(torch.from_numpy(self.intercept_visible_))
            rbm.hidden_bias.copy_(torch.from_numpy(self.intercept_hidden_))
        return rbm

    def _store(self, rbm: _RBMModule) -> None:
        self.components_ = rbm.weight.detach().numpy().copy()
        self.intercept_hidden_ = rbm.hidden_bias.detach().numpy().copy()
        self.intercept_visible_ = rbm.visible_bias.detach().numpy().copy()
        self._log_z_cache: Estimate | None = None

    def _init_fit(self, n_features: int, dtype: np.dtype) -> tuple[_RBMModule, torch.Generator]:
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        g = torch.Generator().manual_seed(seed)
        tdtype = torch.float32 if dtype == np.float32 else torch.float64
        rbm = _RBMModule(
            n_features, int(self.n_components), weight_scale=0.01, generator=g, dtype=tdtype
        )
        self._chains: torch.Tensor | None = None
        return rbm, g

    def _trainer_kwargs(self) -> dict[str, Any]:
        return {
            "learning_rate": float(self.learning_rate),
            "training": self.training,
            "n_chains": self.n_chains or int(self.batch_size),
            "momentum": float(self.momentum),
            "weight_decay": float(self.weight_decay),
        }

    # -- fitting -------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> BernoulliRBM:
        """Fit the model to ``X`` (``n_iter`` epochs of CD / PCD).

        Arguments:
            X: Training data, shape ``(n_samples, n_features)``, values in
                ``[0, 1]`` (binary for a proper likelihood); dense or sparse.
            y: Ignored.

        Returns:
            The fitted estimator.
        """
        self._check_params()
        Xa = self._validate(X, reset=True)
        rbm, g = self._init_fit(Xa.shape[1], Xa.dtype)
        data = torch.tensor(Xa, dtype=rbm.weight.dtype)
        t0 = time.perf_counter()

        def report(epoch: int, metrics: dict[str, float]) -> None:
            print(
                f"[BernoulliRBM] Iteration {epoch + 1}, free-energy gap = "
                f"{metrics['energy_gap']:.2f}, time = {time.perf_counter() - t0:.2f}s"
            )

        self._data_sum = Xa.sum(0, dtype=np.float64)
        self._data_count = int(Xa.shape[0])
        result = fit_cd(
            rbm,
            data,
            n_epochs=int(self.n_iter),
            batch_size=int(self.batch_size),
            lr_schedule=self.lr_schedule,
            generator=g,
            callback=report if self.verbose else None,
            **self._trainer_kwargs(),
        )
        self._chains = result.chains
        self._rng_state = g.get_state()
        self._store(rbm)
        return self

    def partial_fit(self, X: Any, y: Any = None) -> BernoulliRBM:
        """One update with ``X`` as the mini-batch (as scikit-learn's ``partial_fit``).

        Persistent chains carry over between calls; momentum does not.

        Arguments:
            X: A mini-batch, shape ``(n_samples, n_features)``.
            y: Ignored.

        Returns:
            The updated estimator.
        """
        self._check_params()
        first = not hasattr(self, "components_")
        Xa = self._validate(X, reset=first)
        if first:
            rbm, g = self._init_fit(Xa.shape[1], Xa.dtype)
            self._data_sum = np.zeros(Xa.shape[1])
            self._data_count = 0
        else:
            rbm, g = self._module(), self._generator()
        self._data_sum = self._data_sum + Xa.sum(0, dtype=np.float64)
        self._data_count += int(Xa.shape[0])
        trainer = CDTrainer(rbm, chains=self._chains, **self._trainer_kwargs())
        trainer.step(torch.tensor(Xa, dtype=rbm.weight.dtype), generator=g, return_info=False)
        self._chains = trainer.chains
        self._rng_state = g.get_state()
        self._store(rbm)
        return self

    # -- using the model -----------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Hidden probabilities ``p(h_j = 1 | v)``, shape ``(n_samples, n_components)``."""
        check_is_fitted(self)
        Xa = self._validate(X, reset=False)
        rbm = self._module()
        with torch.no_grad():
            out = rbm.hidden_probs(torch.tensor(Xa, dtype=rbm.weight.dtype))
        return out.numpy()

    def gibbs(self, v: Any) -> np.ndarray:
        """One Gibbs step ``v -> h -> v'`` from each row.

        Arguments:
            v: Visible states, shape ``(n_samples, n_features)``.

        Returns:
            New visible states in {0, 1} as floats (scikit-learn returns
            booleans), shape ``(n_samples, n_features)``.
        """
        check_is_fitted(self)
        va = self._validate(v, reset=False)
        rbm, g = self._module(), self._generator()
        out = rbm.gibbs(torch.tensor(va, dtype=rbm.weight.dtype), 1, generator=g)
        self._rng_state = g.get_state()
        return out.numpy()

    @property
    def log_z_estimate_(self) -> Estimate:
        """The :class:`~ebmlab.partition.Estimate` of ``log Z`` (computed once per fit)."""
        check_is_fitted(self)
        if getattr(self, "_log_z_cache", None) is None:
            rbm = self._module().double()
            method = self.log_z_method
            if method == "auto":  # decided from the layer sizes, before computing anything
                small = min(rbm.n_visible, rbm.n_hidden)
                method = "exact" if small <= MAX_ENUMERATION_UNITS else "ais"
            if method == "exact":
                est = rbm.exact_log_z()
            else:
                # Base-rate model of the paper: the smoothed pixel means of the training data.
                p = (self._data_sum + 0.5) / (self._data_count + 1.0)
                p = np.clip(p, 1e-6, 1 - 1e-6)  # inputs outside {0, 1} stay usable
                est = rbm.ais_log_z(
                    n_chains=int(self.n_ais_chains),
                    n_betas=int(self.n_ais_betas),
                    base_visible_bias=torch.from_numpy(np.log(p) - np.log1p(-p)),
                    generator=self._generator(),
                )
            self._log_z_cache = est
        assert self._log_z_cache is not None
        return self._log_z_cache

    @property
    def log_z_(self) -> float:
        """``log Z`` in nats (exact, or an AIS estimate; see ``log_z_estimate_``)."""
        return float(self.log_z_estimate_.value)

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-likelihood ``log p(v) = -F(v) - log Z`` of each row (normalized).

        Exact when a layer has at most 26 units (``log Z`` by enumeration),
        else ``log Z`` is an AIS estimate (see ``log_z_estimate_``). This
        differs from scikit-learn, whose ``score_samples`` is a stochastic
        pseudo-likelihood.

        Arguments:
            X: Rows, shape ``(n_samples, n_features)``.

        Returns:
            Log-likelihoods in nats, shape ``(n_samples,)``.
        """
        check_is_fitted(self)
        Xa = self._validate(X, reset=False)
        log_z = self.log_z_
        rbm = self._module().double()
        with torch.no_grad():
            f = rbm.free_energy(torch.tensor(Xa, dtype=torch.float64))
        return (-f - log_z).numpy()

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood of the rows of ``X`` (see :meth:`score_samples`)."""
        return float(np.mean(self.score_samples(X)))

    @property
    def _n_features_out(self) -> int:
        return int(self.components_.shape[0])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
