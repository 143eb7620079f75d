"""A scikit-learn regressor whose prediction is a search for low energy.

:class:`EnergyRegressor` fits a conditional energy ``F(x, y)`` (an MLP over the
pair) to ``(X, y)`` with a loss functional of energy-based learning (default:
the negative log-likelihood of the Gibbs distribution, normalized on a grid
over ``y``), and predicts by minimizing ``F(x, .)`` from many starts. Where the
data are one-to-many (``y^2 = x``), :meth:`~EnergyRegressor.predict_modes`
returns every distinct answer, while a least-squares regressor averages them
into a wrong one.
"""

from __future__ import annotations

__all__ = ["EnergyRegressor"]

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..conditional import MLPConditionalEnergy, Modes, fit_conditional, infer

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


#: Rows per inference block: every block has the same shape (the last one is
#: padded), so a row's answers are bitwise the same whatever batch it came in.
_BLOCK_ROWS = 32


class EnergyRegressor(RegressorMixin, BaseEstimator):
    """Regression by energy minimization over a learned ``F(x, y)``.

    ``X`` and ``y`` are standardized; ``F`` is an
    :class:`~ebmlab.conditional.MLPConditionalEnergy` trained with the
    loss functional ``loss`` (a name of :data:`ebmlab.conditional.LOSS_FUNCTIONALS`)
    on the box of answers ``[min y - y_margin, max y + y_margin]`` (standardized
    units), searched on a grid of ``n_grid`` cells. Prediction runs gradient
    descent on ``y -> F(x, y)`` from ``n_restarts`` starts spread over the box
    (the same starts for every row) and keeps the lowest end point;
    :meth:`predict_modes` keeps every distinct one.

    Low energy = good answer. With ``loss="nll"``, ``exp(-F(x, .))`` normalized
    over the box is the model's conditional density of the standardized ``y``.

    Arguments:
        hidden: Hidden widths of the energy network.
        activation: Activation (see :func:`ebmlab.conditional.make_mlp`).
        loss: Loss functional name (``"nll"``, ``"hinge"``, ``"log"``, ...).
        loss_options: Extra options of the loss functional (``margin``,
            ``beta``, ...), or ``None``.
        n_steps: Adam updates.
        batch_size: Pairs per update.
        learning_rate: Adam's learning rate.
        weight_decay: Decoupled weight decay (AdamW) when > 0.
        n_grid: Grid cells over the answer box (normalizer, offending answers).
        y_margin: How far (in standard deviations of ``y``) the box extends
            beyond the training targets.
        n_restarts: Descent starts per row at prediction.
        n_infer_steps: Descent steps at prediction.
        mode_tol: Two end points closer than this (in standard deviations of
            ``y``) are one answer.
        warm_start: Continue training from the fitted energy on the next
            ``fit`` (the standardization and answer box are kept).
        checkpoint_dir: Directory for crash-safe checkpoints and
            ``metrics.csv``; a ``fit`` that finds a checkpoint there resumes
            it. ``None``: none.
        random_state: Seed (int), ``numpy.random.RandomState`` or ``None``;
            fixes the initial weights, the minibatches and the starts.

    Training runs through :func:`ebmlab.conditional.fit_conditional`, i.e.
    :func:`ebmlab.train.fit`.

    Attributes:
        energy_: The fitted energy (standardized coordinates).
        n_features_in_: Number of features seen in ``fit``.
        x_mean_, x_scale_, y_mean_, y_scale_: Standardization.
        y_bounds_: The answer box ``(low, high)`` in standardized units.
        loss_curve_: Loss of every update, shape ``(n_steps,)``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.RandomState(0)
        >>> X = rng.uniform(0, 1, size=(100, 1))
        >>> y = np.where(rng.rand(100) < 0.5, -1, 1) * np.sqrt(X[:, 0])  # two answers
        >>> reg = EnergyRegressor(n_steps=10, n_infer_steps=10, random_state=0).fit(X, y)
        >>> reg.predict(X[:3]).shape
        (3,)
        >>> modes, energies = reg.predict_modes(X[:3], max_modes=2)
        >>> modes.shape[0], modes.shape == energies.shape
        (3, True)
    """

    def __init__(
        self,
        hidden: Sequence[int] = (32, 32),
        *,
        activation: str = "silu",
        loss: str = "nll",
        loss_options: dict[str, Any] | None = None,
        n_steps: int = 100,
        batch_size: int = 64,
        learning_rate: float = 1e-2,
        weight_decay: float = 0.0,
        n_grid: int = 32,
        y_margin: float = 0.5,
        n_restarts: int = 8,
        n_infer_steps: int = 50,
        mode_tol: float = 0.05,
        warm_start: bool = False,
        checkpoint_dir: Any = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.loss = loss
        self.loss_options = loss_options
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.n_grid = n_grid
        self.y_margin = y_margin
        self.n_restarts = n_restarts
        self.n_infer_steps = n_infer_steps
        self.mode_tol = mode_tol
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------

    def _check_params(self) -> None:
        for name in ("n_steps", "batch_size", "n_grid", "n_restarts", "n_infer_steps"):
            value = getattr(self, name)
            low = 0 if name in ("n_steps", "n_infer_steps") else 1
            if not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("learning_rate", "mode_tol"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not float(self.y_margin) >= 0 or not float(self.weight_decay) >= 0:
            raise ValueError(
                f"y_margin and weight_decay must be >= 0, got {self.y_margin!r} and "
                f"{self.weight_decay!r}"
            )

    def fit(self, X: Any, y: Any) -> EnergyRegressor:
        """Fit the energy to the pairs ``(X[i], y[i])``.

        Arguments:
            X: Inputs, array-like ``(n_samples, n_features)``.
            y: Targets, array-like ``(n_samples,)``.

        Returns:
            ``self``.
        """
        self._check_params()
        X, y = _validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        self._infer_seed = int(rng.randint(np.iinfo(np.int32).max))

        warm = bool(self.warm_start) and hasattr(self, "energy_")
        if not warm:
            self.x_mean_ = X.mean(0)
            x_scale = X.std(0)
            self.x_scale_ = np.where(x_scale > 0, x_scale, 1.0)
            self.y_mean_ = float(y.mean())
            y_scale = float(y.std())
            self.y_scale_ = y_scale if y_scale > 0 else 1.0
            xt = self._x_tensor(X)
            yt = torch.tensor((y - self.y_mean_) / self.y_scale_, dtype=torch.float64)[:, None]
            lo = float(yt.min()) - float(self.y_margin)
            hi = float(yt.max()) + float(self.y_margin)
            if hi - lo < 1e-3:  # one distinct target and no margin
                lo, hi = lo - 0.5, hi + 0.5
            self.y_bounds_ = (lo, hi)

            self.energy_ = MLPConditionalEnergy(
                X.shape[1],
                1,
                tuple(int(h) for h in self.hidden),
                activation=self.activation,
                generator=generator,
            ).double()
        else:
            xt = self._x_tensor(X)
            yt = torch.tensor((y - self.y_mean_) / self.y_scale_, dtype=torch.float64)[:, None]
        options: dict[str, Any] = {"bounds": self.y_bounds_, "resolution": int(self.n_grid)}
        options.update(self.loss_options or {})
        losses = fit_conditional(
            self.energy_,
            xt,
            yt,
            self.loss,
            n_steps=int(self.n_steps),
            batch_size=int(self.batch_size),
            lr=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
            generator=generator,
            checkpoint_dir=self.checkpoint_dir,
            **options,
        )
        self.loss_curve_ = losses.numpy()
        return self

    # -- inference -------------------------------------------------------------------

    def _x_tensor(self, X: np.ndarray) -> torch.Tensor:
        return torch.tensor((X - self.x_mean_) / self.x_scale_, dtype=torch.float64)

    def _check_x(self, X: Any) -> torch.Tensor:
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=np.float64)
        return self._x_tensor(X)

    def _modes(self, xt: torch.Tensor, max_modes: int | None, energy_gap: float | None) -> Modes:
        """Answers in standardized units, block by block (see ``_BLOCK_ROWS``)."""
        n = xt.shape[0]
        parts: list[Modes] = []
        for start in range(0, n, _BLOCK_ROWS):
            block = xt[start : start + _BLOCK_ROWS]
            k = block.shape[0]
            if k < _BLOCK_ROWS:
                block = torch.cat([block, block[-1:].expand(_BLOCK_ROWS - k, -1)])
            modes = infer(
                self.energy_,
                block,
                n_restarts=int(self.n_restarts),
                n_steps=int(self.n_infer_steps),
                bounds=self.y_bounds_,
                tol=float(self.mode_tol),
                max_modes=max_modes,
                energy_gap=energy_gap,
                generator=torch.Generator().manual_seed(self._infer_seed),
            )
            parts.append(Modes(*(t[:k] for t in modes)))
        width = max(p.energy.shape[1] for p in parts)

        def pad(t: torch.Tensor, value: float) -> torch.Tensor:
            extra = width - t.shape[1]
            if extra == 0:
                return t
            fill = torch.full((t.shape[0], extra, *t.shape[2:]), value, dtype=t.dtype)
            return torch.cat([t, fill], 1)

        return Modes(
            torch.cat([pad(p.y, math.nan) for p in parts]),
            torch.cat([pad(p.energy, math.inf) for p in parts]),
            torch.cat([pad(p.weight, 0.0) for p in parts]),
            torch.cat([p.n_modes for p in parts]),
        )

    def predict(self, X: Any) -> np.ndarray:
        """The lowest-energy answer found for each row.

        Arguments:
            X: Inputs ``(n_samples, n_features)``.

        Returns:
            Predictions, shape ``(n_samples,)``.
        """
        xt = self._check_x(X)
        modes = self._modes(xt, 1, None)
        return modes.y[:, 0, 0].numpy() * self.y_scale_ + self.y_mean_  # type: ignore[no-any-return]

    def predict_modes(
        self, X: Any, max_modes: int | None = None, energy_gap: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every distinct low-energy answer of each row, sorted by energy.

        Arguments:
            X: Inputs ``(n_samples, n_features)``.
            max_modes: At most this many answers per row (default: all found).
            energy_gap: Drop answers whose energy exceeds the row's best by
                more than this (with ``loss="nll"``: a log density ratio).

        Returns:
            ``(modes, energies)``, both ``(n_samples, M)``: the answers (padded
            with NaN) and their energies ``F(x, y)`` (padded with ``inf``),
            lowest energy first; ``M`` is the largest number of answers.
        """
        if max_modes is not None and int(max_modes) < 1:
            raise ValueError(f"max_modes must be >= 1 or None, got {max_modes}")
        xt = self._check_x(X)
        modes = self._modes(xt, max_modes, energy_gap)
        values = modes.y[..., 0].numpy() * self.y_scale_ + self.y_mean_
        return values, modes.energy.numpy()

    def score_samples(self, X: Any, y: Any = None) -> np.ndarray:
        """``-F(x, y)`` for each row: higher means a more compatible pair.

        Unnormalized (with ``loss="nll"``, the log density of the standardized
        ``y`` given ``x`` up to a per-row constant). Without ``y``, the score
        of each row's best answer, ``-min_y F(x, y)``.

        Arguments:
            X: Inputs ``(n_samples, n_features)``.
            y: Answers ``(n_samples,)``, or ``None``.

        Returns:
            Scores, shape ``(n_samples,)``.
        """
        xt = self._check_x(X)
        if y is None:
            return -self._modes(xt, 1, None).energy[:, 0].numpy()  # type: ignore[no-any-return]
        y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
        if y_arr.shape[0] != xt.shape[0] or not np.all(np.isfinite(y_arr)):
            raise ValueError(
                f"y must hold {xt.shape[0]} finite values to match X, got shape {y_arr.shape}"
            )
        yt = torch.tensor((y_arr - self.y_mean_) / self.y_scale_, dtype=torch.float64)[:, None]
        with torch.no_grad():
            return -self.energy_(xt, yt).numpy()  # type: ignore[no-any-return]
