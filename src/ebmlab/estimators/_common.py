"""Shared plumbing of the scikit-learn estimators (private).

Stable API used by several estimators (don't rename):

- :func:`check_array_2d`: validate ``X`` (numpy, pandas, lists) into a 2-D
  finite float array, through scikit-learn's ``validate_data`` when an
  estimator is given (sets ``n_features_in_``/``feature_names_in_`` on
  ``reset``, checks them otherwise).
- :func:`torch_generator`: a ``torch.Generator`` from a ``random_state``.
- :func:`derive_seed`: an int seed from a ``random_state``.
- :func:`resolve_device`: ``"cpu"``/``"cuda"``/``"auto"`` -> ``torch.device``.
- :func:`seeded_init`: build a module with the global RNG forked and seeded,
  so modules whose constructors draw from the global RNG are reproducible.
- :class:`Standardizer`: per-feature mean/scale, numpy in, numpy out.
- :func:`fit_flat_energy`: fit an :class:`~ebmlab.energies.MLPEnergy` to flat
  (standardized) data with a named objective.
- :func:`fit_resumable`: :func:`ebmlab.train.fit` into an optional checkpoint
  directory, resuming the checkpoint found there (``checkpoint_dir``).
"""

from __future__ import annotations

__all__ = [
    "CD_MODES",
    "FlatEnergyFit",
    "Standardizer",
    "check_array_2d",
    "check_int_params",
    "derive_seed",
    "fit_flat_energy",
    "fit_resumable",
    "resolve_device",
    "seeded_init",
    "to_tensor",
    "torch_generator",
    "validate_data",
]

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from sklearn.utils import check_array, check_random_state
from torch import Tensor, nn

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _sk_validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


T = TypeVar("T")


def validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data`` (>= 1.6) or ``estimator._validate_data``."""
    return _sk_validate_data(estimator, *args, **kwargs)


def check_array_2d(
    X: Any,
    *,
    estimator: Any = None,
    reset: bool = True,
    dtype: Any = np.float64,
    name: str = "X",
) -> np.ndarray:
    """Validate ``X`` into a 2-D, finite, float NumPy array.

    Accepts NumPy arrays, pandas DataFrames and nested lists. With an
    ``estimator``, goes through scikit-learn's ``validate_data``: ``reset=True``
    (in ``fit``) stores ``n_features_in_`` and ``feature_names_in_``;
    ``reset=False`` checks the column count (and names) against them.

    Arguments:
        X: Data, shape ``(n_samples, n_features)``.
        estimator: The estimator being fitted or used, or ``None``.
        reset: Store (``True``) or check (``False``) the feature count.
        dtype: Output dtype (a dtype, or a tuple of accepted dtypes).
        name: The argument's name, for error messages.

    Returns:
        The validated array, shape ``(n_samples, n_features)``.

    Raises:
        ValueError: If ``X`` is not 2-D, is empty, holds NaN/inf or has the
            wrong number of columns.

    Example:
        >>> check_array_2d([[0, 1], [2, 3]]).dtype
        dtype('float64')
    """
    if estimator is not None:
        out = validate_data(estimator, X, reset=reset, dtype=dtype, ensure_2d=True)
    else:
        out = check_array(X, dtype=dtype, ensure_2d=True, input_name=name)
    return np.ascontiguousarray(out)


def check_int_params(estimator: Any, minimums: Sequence[tuple[str, int]]) -> None:
    """Check that each named hyperparameter is an integer (not a bool) at least its minimum.

    Raises:
        ValueError: Naming the first hyperparameter that is not, with its value.
    """
    for name, low in minimums:
        value = getattr(estimator, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def derive_seed(random_state: Any) -> int:
    """An int seed in ``[0, 2**31 - 1)`` from an int, ``RandomState`` or ``None``.

    ``None`` gives a fresh random seed (scikit-learn's convention); an int
    always gives the same seed; a ``RandomState`` is advanced by one draw.
    """
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def torch_generator(random_state: Any, device: Any = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded from ``random_state`` (see :func:`derive_seed`).

    Example:
        >>> g1, g2 = torch_generator(0), torch_generator(0)
        >>> bool(torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2)))
        True
    """
    return torch.Generator(device=torch.device(device)).manual_seed(derive_seed(random_state))


def resolve_device(device: Any) -> torch.device:
    """The torch device for an estimator's ``device`` parameter.

    Arguments:
        device: ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), ``"auto"`` (CUDA when
            available, else CPU), ``None`` (CPU) or a ``torch.device``.

    Returns:
        The device.

    Raises:
        ValueError: For an unknown name, or ``"cuda"`` without a CUDA device.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'auto' or None, got {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    return dev


def seeded_init(build: Callable[[], T], seed: int) -> T:
    """Call ``build()`` with the global CPU RNG forked and seeded with ``seed``.

    Module constructors (``nn.Linear``, spectral normalization, random
    Fourier features) draw from the global RNG; this makes them reproducible
    without leaving the global RNG changed.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build()


def to_tensor(X: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """A NumPy array as a tensor on ``device`` (a copy)."""
    return torch.as_tensor(np.ascontiguousarray(X), dtype=dtype, device=device).clone()


class Standardizer:
    """Per-feature standardization ``(x - mean_) / scale_``; constant features get scale 1.

    Example:
        >>> s = Standardizer().fit(np.array([[0.0, 1.0], [2.0, 1.0]]))
        >>> s.transform(np.array([[1.0, 1.0]])).tolist()
        [[0.0, 0.0]]
    """

    mean_: np.ndarray
    scale_: np.ndarray

    def fit(self, X: np.ndarray, *, min_scale: float = 0.0) -> Standardizer:
        """Store the mean and standard deviation (at least ``min_scale``) of ``X``."""
        self.mean_ = X.mean(0)
        scale = X.std(0)
        scale = np.maximum(scale, min_scale)
        self.scale_ = np.where(scale > 1e-12 * (1.0 + np.abs(self.mean_)), scale, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(X - mean_) / scale_``."""
        return (X - self.mean_) / self.scale_  # type: ignore[no-any-return]

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """``Z * scale_ + mean_``."""
        return Z * self.scale_ + self.mean_  # type: ignore[no-any-return]

    @property
    def log_det(self) -> float:
        """``sum(log scale_)``: add ``-log_det`` to a standardized log-density."""
        return float(np.sum(np.log(self.scale_)))


def fit_resumable(
    energy: nn.Module,
    data: Tensor,
    objective: Any,
    settings: Any,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`ebmlab.train.fit` with checkpoints in ``checkpoint_dir`` (``None``: none).

    A checkpoint already in ``checkpoint_dir`` is resumed, so a fit killed
    midway continues where it stopped and ends with the weights of an
    uninterrupted one. Returns the :class:`~ebmlab.train.FitResult`.
    """
    from ..train.loop import CHECKPOINT_NAME, fit

    run_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
    resume = run_dir is not None and (run_dir / CHECKPOINT_NAME).is_file()
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("progress", False)
    return fit(energy, data, objective, settings, run_dir=run_dir, resume=resume, **kwargs)


#: Objectives that draw negatives with MCMC (need a sampler).
CD_MODES = ("cd", "pcd", "short-run")


def _build_cd(
    name: str,
    options: dict[str, Any],
    data: Tensor,
    device: torch.device,
    generator: torch.Generator,
) -> tuple[Any, Any]:
    """A contrastive-divergence objective with a Langevin sampler, and its replay buffer.

    ``options`` may hold ``sampler`` (a sampler object), ``step_size`` and
    ``noise_scale`` (of the default Langevin sampler), ``buffer_size`` and
    ``reinit_prob`` (``pcd``), and the keywords of
    :class:`~ebmlab.objectives.ContrastiveDivergence` (``n_steps``, ``alpha``, ...).
    Fresh chains start from a Gaussian with the data's mean and per-feature
    standard deviation.
    """
    from ..objectives import build_objective
    from ..samplers import Langevin

    options = dict(options)
    sampler = options.pop("sampler", None)
    step_size = float(options.pop("step_size", 0.01))
    noise_scale = options.pop("noise_scale", None)
    buffer_size = int(options.pop("buffer_size", 1000))
    reinit_prob = float(options.pop("reinit_prob", 0.05))
    if sampler is None:
        sampler = Langevin(step_size, noise_scale)
    mean = data.mean(0).to(device)
    std = data.std(0).clamp_min(1e-6).to(device)

    def init_fn(n: int, g: torch.Generator | None) -> Tensor:
        z = torch.randn((n, *mean.shape), generator=g, device=mean.device, dtype=mean.dtype)
        return mean + std * z

    options.setdefault("init_fn", init_fn)
    obj = build_objective(name, sampler, **options)
    state = obj.init_state(buffer_size, reinit_prob=reinit_prob, generator=generator)
    return obj, state


def _bake_parametrizations(module: nn.Module) -> None:
    """Replace parametrized weights (spectral norm) by their current values, in place.

    In eval mode a spectrally normalized layer is a fixed linear map; baking it
    makes the module picklable and a little faster.
    """
    from torch.nn.utils import parametrize

    for sub in module.modules():
        if parametrize.is_parametrized(sub):
            for name in list(sub.parametrizations.keys()):  # type: ignore[union-attr,operator]
                parametrize.remove_parametrizations(sub, name, leave_parametrized=True)


@dataclass
class FlatEnergyFit:
    """What :func:`fit_flat_energy` returns.

    Attributes:
        energy: The fitted energy (on the training device, eval mode, spectral
            normalization baked into plain weights).
        objective: The objective object (NCE keeps its learned ``log_z``).
        losses: The logged losses.
    """

    energy: nn.Module
    objective: Any
    losses: list[float]


def fit_flat_energy(
    X: np.ndarray,
    *,
    objective: str = "dsm",
    objective_options: dict[str, Any] | None = None,
    hidden: Sequence[int] = (128, 128),
    activation: str = "silu",
    spectral_norm: bool = False,
    base_scale: float | None = 2.0,
    n_steps: int = 500,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    verbose: bool = False,
    energy: nn.Module | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> FlatEnergyFit:
    """Fit an :class:`~ebmlab.energies.MLPEnergy` to flat data with a named objective.

    The data should already be standardized (the ``base_scale`` Gaussian term
    is in those units). Training runs in float32 with
    :func:`ebmlab.train.fit` (Adam/AdamW, cosine schedule, short warm-up), one
    generator seeded with ``seed``.

    Arguments:
        X: Training data, shape ``(N, D)``.
        objective: A name of :data:`ebmlab.objectives.OBJECTIVES`.
        objective_options: Keyword arguments of the objective (for ``"nce"``
            with no ``noise`` given, a Gaussian fitted to ``X`` is used).
        hidden: Hidden widths of the MLP.
        activation: Activation of the MLP.
        spectral_norm: Spectral normalization on every layer.
        base_scale: Standard deviation of the Gaussian reference term (or
            ``None``).
        n_steps: Parameter updates.
        batch_size: Rows per update (at most ``N``).
        learning_rate: Peak learning rate.
        weight_decay: Decoupled weight decay.
        seed: Seeds the initial weights and the training generator.
        device: Training device.
        verbose: Show a progress bar.
        energy: A fitted energy to continue training (warm start; ``hidden``,
            ``activation``, ``spectral_norm`` and ``base_scale`` are then its own).
        checkpoint_dir: Crash-safe checkpoints go here, and one found here is
            resumed (see :func:`fit_resumable`).

    Returns:
        A :class:`FlatEnergyFit`.
    """
    from ..energies import MLPEnergy
    from ..objectives import build_objective
    from ..train import TrainSettings

    dev = torch.device(device)
    data = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32)
    d = int(data.shape[1])
    energy = (
        energy
        if energy is not None
        else seeded_init(
            lambda: MLPEnergy(
                d,
                hidden=tuple(int(h) for h in hidden),
                activation=activation,
                spectral_norm=spectral_norm,
                base_scale=base_scale,
            ),
            seed,
        )
    )
    options = dict(objective_options or {})
    state: Any = None
    gen = torch.Generator(device=dev).manual_seed(int(seed) + 1)
    if objective == "nce" and "noise" not in options:
        from ..objectives import fit_gaussian_noise

        options["noise"] = fit_gaussian_noise(data)
    if objective in CD_MODES:
        obj, state = _build_cd(objective, options, data, dev, gen)
    else:
        obj = build_objective(objective, **options)
    steps = int(n_steps)
    settings = TrainSettings(
        steps=steps,
        batch_size=min(int(batch_size), int(data.shape[0])),
        lr=float(learning_rate),
        weight_decay=float(weight_decay),
        lr_schedule="cosine",
        warmup_steps=min(20, max(steps // 10, 0)),
        log_every=max(1, steps // 20) if steps else 1,
        checkpoint_every=max(1, steps // 20) if checkpoint_dir is not None and steps else 0,
        seed=int(seed),
        device=str(dev),
    )
    result = fit_resumable(
        energy,
        data,
        obj,
        settings,
        checkpoint_dir=checkpoint_dir,
        state=state,
        progress=bool(verbose),
    )
    energy.eval()
    _bake_parametrizations(energy)
    losses = [float(row.get("loss", float("nan"))) for row in result.metrics]
    return FlatEnergyFit(energy=energy, objective=obj, losses=losses)
