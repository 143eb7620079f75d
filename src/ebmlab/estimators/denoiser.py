"""Restore corrupted inputs with a learned energy: denoising and inpainting.

:class:`EnergyDenoiser` is fitted on *clean* rows. It learns a family of
energies ``E_sigma(x)``, one for the data smoothed by Gaussian noise of each
level ``sigma`` (a noise-conditional network trained by denoising score
matching, Vincent 2011; Song & Ermon 2019), and ``transform`` restores
corrupted rows under a stated noise model:

* ``noise="gaussian"``: ``y = x + noise_std * eps``;
* ``noise="salt-and-pepper"``: each entry replaced, with probability
  ``noise_prob``, by the smallest or largest value seen in training;
* ``noise="mask"``: entries missing (``mask`` False, or NaN in ``X``); the
  observed entries are returned exactly unchanged (inpainting).

Methods:

* ``"tweedie"`` (default): for Gaussian noise, Tweedie's formula
  ``x_hat = y - noise_std^2 grad E_noise_std(y)``, the posterior mean (the
  minimum mean-squared-error estimate) when ``E_sigma`` is exact; for missing
  entries, the same step applied to the missing coordinates only, repeated over
  a decreasing ladder of noise levels (annealed, as a projection onto the
  observations after every step).
* ``"descent"``: gradient descent on the energy plus the data term
  (``|x - y|^2 / (2 noise_std^2)`` for Gaussian noise, the observed entries held
  fixed for missing ones), annealed over the same ladder: a MAP estimate.
* ``"langevin"``: annealed Langevin sampling of the posterior
  (``n_chains`` chains per row), averaging the chains over the last level:
  a Monte Carlo posterior mean.

Sign convention: low energy = high probability; ``score_samples`` returns
``-E_sigma(x)`` at the smallest trained level.
"""

from __future__ import annotations

__all__ = ["METHODS", "NOISE_MODELS", "EnergyDenoiser", "psnr"]

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from ..energies.classifier import make_mlp
from ..energies.noise_conditional import NoiseConditionalEnergy
from ..objectives.score_matching import NoiseConditionalScoreMatching
from ..train.loop import TrainSettings
from ._common import check_int_params, fit_resumable, resolve_device, torch_generator
from ._common import validate_data as _validate_data

#: Corruptions :class:`EnergyDenoiser` can undo.
NOISE_MODELS = ("gaussian", "salt-and-pepper", "mask")
#: Restorations of :class:`EnergyDenoiser`: Tweedie's formula (one gradient), MAP by
#: gradient descent, or the posterior mean of Langevin chains.
METHODS = ("tweedie", "descent", "langevin")


def psnr(clean: Any, restored: Any, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB over all entries.

    Example:
        >>> round(psnr(np.zeros((2, 4)), np.full((2, 4), 0.1)), 6)
        20.0
    """
    a = np.asarray(clean, dtype=np.float64)
    b = np.asarray(restored, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"clean and restored must have the same shape, got {a.shape} and {b.shape}"
        )
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(float(data_range) ** 2 / mse)


class EnergyDenoiser(TransformerMixin, BaseEstimator):
    """Denoising and inpainting by a noise-conditional energy fitted to clean data.

    Rows are centred per feature and divided by one global scale (the root
    mean feature variance), so isotropic noise stays isotropic. The energy
    ``E_sigma`` is trained by denoising score matching with ``sigma`` drawn
    log-uniformly from ``[sigma_min, sigma_max]`` (data units; default
    ``[0.02, 1.0]`` times the global scale, widened to include ``noise_std``)
    and, for ``noise="gaussian"``, half of every batch exactly at
    ``noise_std``, so that the one-step Tweedie estimate at that level is as
    good as a model trained for it alone.

    Arguments:
        hidden: Hidden widths of the energy MLP.
        activation: ``silu``, ``elu``, ``softplus``, ``tanh`` or ``gelu``.
        noise: ``"gaussian"``, ``"salt-and-pepper"`` or ``"mask"``.
        noise_std: Gaussian noise standard deviation (data units).
        noise_prob: Salt-and-pepper corruption probability.
        method: ``"tweedie"``, ``"descent"`` or ``"langevin"`` (module docstring).
        sigma_min, sigma_max: Trained noise range in data units (``None``:
            the default above).
        n_steps: Adam updates.
        batch_size: Rows per update.
        learning_rate: Peak Adam step size (cosine decay to 0).
        n_levels: Rungs of the annealing ladder (geometric from ``sigma_max``
            down to ``sigma_min``) for inpainting, descent and Langevin.
        n_inner: Steps per rung.
        step_size: Step on each rung, as a fraction of ``sigma^2``.
        n_chains: Langevin chains per row.
        clip: Clip restored entries to the per-feature training range.
        warm_start: Continue training from the fitted energy on the next
            ``fit`` (the standardization and noise range are kept).
        checkpoint_dir: Directory for crash-safe checkpoints (every 1/20th
            of training) and ``metrics.csv``; a ``fit`` that finds a
            checkpoint there resumes it. ``None``: none.
        random_state: Seed (int), ``numpy.random.RandomState`` or ``None``:
            fixes the weights, the training noise and the Langevin chains.
        device: Torch device.

    Attributes:
        energy_: The fitted noise-conditional energy (standardized units).
        n_features_in_: Number of features seen in ``fit``.
        mean_, scale_: Centring (per feature) and global scale.
        data_min_, data_max_: Per-feature range of the training rows.
        sigma_range_: The trained ``(sigma_min, sigma_max)``, data units.
        loss_curve_: Mean loss of every 1/20th of training, shape ``(<= 20,)``.

    Example:
        >>> rng = np.random.RandomState(0)
        >>> X = rng.rand(100, 3)
        >>> den = EnergyDenoiser(hidden=(16,), n_steps=20, random_state=0).fit(X)
        >>> den.transform(X + 0.1 * rng.randn(100, 3)).shape
        (100, 3)
        >>> mask = rng.rand(100, 3) > 0.3
        >>> out = den.set_params(noise="mask").transform(X, mask=mask)
        >>> bool(np.all(out[mask] == X[mask]))
        True

    References:
        Vincent, P. (2011). A connection between score matching and denoising
        autoencoders. Neural Computation 23(7).
        Song, Y. & Ermon, S. (2019). Generative modeling by estimating
        gradients of the data distribution. NeurIPS.
        https://arxiv.org/abs/1907.05600
        Efron, B. (2011). Tweedie's formula and selection bias. JASA 106(496).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (512, 512),
        *,
        activation: str = "silu",
        noise: str = "gaussian",
        noise_std: float = 0.1,
        noise_prob: float = 0.1,
        method: str = "tweedie",
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        n_steps: int = 2000,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        n_levels: int = 20,
        n_inner: int = 3,
        step_size: float = 1.0,
        n_chains: int = 8,
        clip: bool = True,
        warm_start: bool = False,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.noise = noise
        self.noise_std = noise_std
        self.noise_prob = noise_prob
        self.method = method
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_levels = n_levels
        self.n_inner = n_inner
        self.step_size = step_size
        self.n_chains = n_chains
        self.clip = clip
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.device = device

    # -- validation -------------------------------------------------------------------

    def _check_params(self) -> None:
        check_int_params(
            self,
            (("n_steps", 0), ("batch_size", 1), ("n_levels", 1), ("n_inner", 1), ("n_chains", 1)),
        )
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {list(self.hidden)}")
        if self.noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {list(NOISE_MODELS)}, got {self.noise!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        for name in ("noise_std", "learning_rate", "step_size"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.noise_prob) < 1.0:
            raise ValueError(f"noise_prob must be in [0, 1), got {self.noise_prob!r}")
        for name in ("sigma_min", "sigma_max"):
            value = getattr(self, name)
            if value is not None and not float(value) > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")

    # -- fitting ---------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> EnergyDenoiser:
        """Fit the energy to clean rows ``X``.

        Arguments:
            X: Clean training data, array-like ``(n_samples, n_features)``;
                rows holding NaN are left out.
            y: Ignored.

        Returns:
            ``self``.
        """
        self._check_params()
        X = _validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        complete = ~np.isnan(X).any(1)
        if not complete.any():
            raise ValueError("X must hold at least one row without NaN to fit on, got none")
        X = X[complete]
        self._device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        g = torch_generator(rng)
        self._transform_seed = int(rng.randint(np.iinfo(np.int32).max))

        train_seed = int(rng.randint(np.iinfo(np.int32).max))
        warm = bool(self.warm_start) and hasattr(self, "energy_")
        if not warm:
            self.mean_ = X.mean(0)
            scale = float(np.sqrt(np.mean(X.var(0))))
            self.scale_ = scale if scale > 1e-12 else 1.0
            self.data_min_ = X.min(0)
            self.data_max_ = X.max(0)
            lo = 0.02 * self.scale_ if self.sigma_min is None else float(self.sigma_min)
            hi = 1.0 * self.scale_ if self.sigma_max is None else float(self.sigma_max)
            if self.noise == "gaussian":
                lo, hi = min(lo, float(self.noise_std)), max(hi, float(self.noise_std))
            if not hi > lo:
                raise ValueError(f"sigma_max must exceed sigma_min, got {hi!r} and {lo!r}")
            self.sigma_range_ = (lo, hi)
            d = X.shape[1]
            sizes = [d + 1, *(int(h) for h in self.hidden), 1]
            self.energy_ = NoiseConditionalEnergy(
                make_mlp(sizes, self.activation, g, torch.float32)
            ).to(self._device)
        else:
            self.energy_ = self.energy_.float()
            for p in self.energy_.parameters():
                p.requires_grad_(True)
        data = self._z(X, torch.float32)
        self.loss_curve_ = self._train(data, train_seed)
        # Inference in float64: a row's result then does not depend (beyond ~1e-15)
        # on the other rows of its batch.
        self.energy_ = self.energy_.double().eval()
        for p in self.energy_.parameters():
            p.requires_grad_(False)
        return self

    def _z(self, X: np.ndarray, dtype: torch.dtype = torch.float64) -> Tensor:
        z = (X - self.mean_) / self.scale_
        return torch.as_tensor(z, dtype=dtype, device=self._device)

    def _train(self, data: Tensor, seed: int) -> np.ndarray:
        """Train ``energy_`` by :func:`ebmlab.train.fit`; the logged losses."""
        steps = int(self.n_steps)
        if steps == 0:
            return np.zeros(0)
        objective = NoiseConditionalScoreMatching(
            self.sigma_range_[0] / self.scale_,
            self.sigma_range_[1] / self.scale_,
            focus=float(self.noise_std) / self.scale_ if self.noise == "gaussian" else None,
        )
        every = -(-steps // 20)
        settings = TrainSettings(
            steps=steps,
            batch_size=min(int(self.batch_size), data.shape[0]),
            lr=float(self.learning_rate),
            lr_schedule="cosine",
            warmup_steps=0,
            log_every=every,
            checkpoint_every=every,
            seed=seed,
            device=str(self._device),
        )
        result = fit_resumable(
            self.energy_, data, objective, settings, checkpoint_dir=self.checkpoint_dir
        )
        return np.array([row["loss"] for row in result.metrics])

    # -- restoration -------------------------------------------------------------------

    def _grad(self, x: Tensor, sigma: float) -> Tensor:
        """``grad_x E_sigma(x)`` (standardized units)."""
        s = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.energy_(x, s).sum(), x)
        return grad

    def _ladder(self, top: float) -> list[float]:
        lo = self.sigma_range_[0] / self.scale_
        hi = max(top, lo)
        k = int(self.n_levels)
        if k == 1:
            return [lo]
        return [hi * (lo / hi) ** (i / (k - 1)) for i in range(k)]

    def _restore(self, y: Tensor, free: Tensor, s_noise: float | None) -> Tensor:
        """Restore ``y`` (standardized); only entries where ``free`` is True change.

        ``s_noise`` is the Gaussian noise level (standardized) or ``None`` when the
        free entries are simply unknown.
        """
        method = self.method
        eta = float(self.step_size)
        if s_noise is not None and method == "tweedie":
            return y - s_noise**2 * self._grad(y, s_noise)
        fixed = ~free
        x = y.clone()
        if s_noise is None:  # unknown entries start at the training mean (0 here)
            x = torch.where(free, torch.zeros_like(x), x)
        top = s_noise if s_noise is not None else self.sigma_range_[1] / self.scale_
        ladder = self._ladder(top)
        if method == "langevin":
            return self._langevin(x, y, free, s_noise, ladder)
        for sigma in ladder:
            for _ in range(int(self.n_inner)):
                grad = self._grad(x, sigma)
                if s_noise is not None:  # MAP: E_sigma + |x - y|^2 / (2 s^2)
                    step = eta / (1.0 / sigma**2 + 1.0 / s_noise**2)
                    x = x - step * (grad + (x - y) / s_noise**2)
                else:
                    x = x - min(eta, 1.0) * sigma**2 * grad
                x = torch.where(fixed, y, x)
        return x

    def _langevin(
        self, x: Tensor, y: Tensor, free: Tensor, s_noise: float | None, ladder: list[float]
    ) -> Tensor:
        k = int(self.n_chains)
        g = torch.Generator().manual_seed(self._transform_seed)
        n, d = x.shape
        xs = x.repeat_interleave(k, 0)
        ys = y.repeat_interleave(k, 0)
        fr = free.repeat_interleave(k, 0)
        eta = float(self.step_size)
        total = torch.zeros_like(xs)
        count = 0
        for i, sigma in enumerate(ladder):
            # Song & Ermon's step: proportional to sigma^2 (times a fraction).
            step = 0.1 * eta * sigma**2
            for _ in range(int(self.n_inner)):
                grad = self._grad(xs, sigma)
                if s_noise is not None:
                    grad = grad + (xs - ys) / s_noise**2
                    step = 0.1 * eta / (1.0 / sigma**2 + 1.0 / s_noise**2)
                z = torch.randn(xs.shape, generator=g, dtype=xs.dtype).to(xs.device)
                xs = xs - step * grad + math.sqrt(2 * step) * z
                xs = torch.where(fr, xs, ys)
                if i == len(ladder) - 1:
                    total = total + xs
                    count += 1
        # A last Tweedie step at the smallest level removes its residual noise.
        mean = total / max(count, 1)
        mean = mean - ladder[-1] ** 2 * self._grad(mean, ladder[-1]) * fr
        return mean.reshape(n, k, d).mean(1)

    def transform(self, X: Any, mask: Any = None) -> np.ndarray:
        """Restore corrupted rows under the ``noise`` model.

        Arguments:
            X: Corrupted rows ``(n_samples, n_features)``; NaN marks a missing
                entry (with any ``noise``).
            mask: Boolean ``(n_samples, n_features)``, True where an entry is
                observed (``noise="mask"``; default: the non-NaN entries).

        Returns:
            Restored rows, shape ``(n_samples, n_features)``; observed entries
            of the mask model are returned exactly as given.
        """
        check_is_fitted(self)
        self._check_params()
        X = _validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        observed = ~np.isnan(X)
        if mask is not None:
            m = np.asarray(mask)
            if m.shape != X.shape:
                raise ValueError(f"mask must have the shape of X {X.shape}, got {m.shape}")
            observed &= m.astype(bool)
        elif self.noise == "mask" and observed.all():
            return X.copy()
        if self.noise == "salt-and-pepper":
            extreme = np.isclose(X, self.data_min_) | np.isclose(X, self.data_max_)
            observed &= ~extreme  # suspects: any entry at the ends of the range
        s_noise = float(self.noise_std) / self.scale_ if self.noise == "gaussian" else None
        filled = np.where(observed, X, self.mean_)
        y = self._z(filled)
        if s_noise is not None:
            free = torch.ones_like(y, dtype=torch.bool)
            # Missing entries of a Gaussian-noise row: inpaint them first.
            if not observed.all():
                miss = torch.as_tensor(~observed, device=y.device)
                y = self._restore(y, miss, None)
        else:
            free = torch.as_tensor(~observed, device=y.device)
        out = self._restore(y, free, s_noise)
        res = out.cpu().numpy() * self.scale_ + self.mean_
        if self.clip:
            res = np.clip(res, self.data_min_, self.data_max_)
        if s_noise is None:
            res = np.where(observed, X, res)
        return res  # type: ignore[no-any-return]

    def score_samples(self, X: Any) -> np.ndarray:
        """``-E_sigma(x)`` at the smallest trained level ``sigma``: higher = more typical.

        Unnormalized (``log p_sigma(x) + log Z``), standardized units.

        Returns:
            Scores, shape ``(n_samples,)``.
        """
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=np.float64)
        z = self._z(X)
        s = torch.full(
            (z.shape[0],), self.sigma_range_[0] / self.scale_, dtype=z.dtype, device=z.device
        )
        with torch.no_grad():
            return -self.energy_(z, s).cpu().numpy()  # type: ignore[no-any-return]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
