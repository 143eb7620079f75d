"""Building a run from its config: data, energy, objective, sampler; reloading a run.

Everything a run holds is rebuilt from ``config.yaml`` (and, for a trained run,
``model.safetensors``): :func:`load_data` (a toy or a user file, split into
train and held-out rows), :func:`build_energy` (the network, initialized from the
seed), :func:`build_run_sampler` and the objective named by the config, and
:func:`load_run` (a trained run, weights loaded). Nothing is unpickled.
"""

from __future__ import annotations

__all__ = ["Run", "build_energy", "build_run_sampler", "load_data", "load_run", "run_generator"]

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._version import __version__
from ..config import RunConfig, load_config
from ..data import Toy, load_tensor, make_toy
from ..data.images import is_image_source
from ..energies import MLPEnergy
from ..errors import ConfigError, DataError, RunDirError
from ..evaluation import default_bounds
from ..objectives import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    NoiseConditionalScoreMatching,
    NoiseContrastiveEstimation,
    ScoreMatching,
    SlicedScoreMatching,
    fit_gaussian_noise,
    fit_mixture_noise,
)
from ..samplers import build_sampler
from ..samplers.auto import OnlineStepSize
from ..train.checkpoint import file_sha256, load_tensors
from ..train.distributed import init_from_env
from ..train.tensorboard import TensorBoardLogger


@dataclass
class Run:
    """Everything rebuilt from a run directory (or about to be written to one).

    Attributes:
        config: The resolved configuration.
        energy: The model (low energy = high probability).
        train: Training data ``(N, *event_shape)``.
        test: Held-out data ``(M, *event_shape)``.
        toy: The toy distribution, when the data is one (it knows its density).
        bounds: Per-axis box around the data, for plots, quadrature and chain starts.
        train_labels: Class indices ``(N,)`` of the training rows (JEM runs), else None.
        test_labels: Class indices ``(M,)`` of the held-out rows (JEM runs), else None.
    """

    config: RunConfig
    energy: MLPEnergy
    train: Tensor
    test: Tensor
    toy: Toy | None
    bounds: list[tuple[float, float]]
    train_labels: Tensor | None = None
    test_labels: Tensor | None = None


def _dtype(cfg: RunConfig) -> torch.dtype:
    return torch.float64 if cfg.dtype == "float64" else torch.float32


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not a torch device (try cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here")
    return dev


def load_data(cfg: RunConfig) -> tuple[Tensor, Tensor, Toy | None, list[tuple[float, float]]]:
    """Training and held-out data for a config, the toy if any, and a bounding box."""
    dtype = _dtype(cfg)
    d = cfg.data
    if cfg.objective.name == "jem":  # labelled images (the labels: runs.jem)
        from .jem import load_labelled_data

        train, test, _, _ = load_labelled_data(cfg, dtype)
        return train, test, None, [(-1.0, 1.0)] * train[0].numel()
    if d.file is not None and (d.image is not None or is_image_source(d.file)):
        from .images import load_image_data

        train, test = load_image_data(cfg, dtype)
        return train, test, None, [(-1.0, 1.0)] * train[0].numel()
    if d.file is not None:
        x = load_tensor(d.file, dtype=dtype)
        if x.shape[0] < 2:
            raise DataError(
                f"{d.file}: need at least 2 rows to split train/test, got {x.shape[0]}"
            )
        g = torch.Generator().manual_seed(cfg.seed)
        perm = torch.randperm(x.shape[0], generator=g)
        n_test = max(1, round(d.test_fraction * x.shape[0]))
        test, train = x[perm[:n_test]], x[perm[n_test:]]
        return train, test, None, default_bounds(x, margin=0.25)
    assert d.toy is not None
    toy = make_toy(d.toy)
    train = toy.sample(d.n_train, seed=cfg.seed, dtype=dtype)
    test = toy.sample(d.n_test, seed=cfg.seed + 1_000_003, dtype=dtype)
    b = toy.bounds
    return train, test, toy, [(b[0], b[1]), (b[2], b[3])]


def build_energy(cfg: RunConfig, event_shape: tuple[int, ...]) -> MLPEnergy:
    """The energy network of ``cfg``, initialized deterministically from ``cfg.seed``.

    The global RNG is forked, so the caller's random state is untouched.
    """
    m = cfg.model
    if cfg.objective.name == "ncsm" and m.type == "mlp":
        raise ConfigError(
            "objective 'ncsm' needs an image run (model.type conv or resnet); "
            "for rows use ebmlab.estimators.EnergyDenoiser"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if cfg.objective.name == "jem":  # a classifier energy: one logit per class
            from .jem import build_classifier_energy

            return build_classifier_energy(cfg, event_shape).to(_dtype(cfg))  # type: ignore[return-value]
        if m.type != "mlp":  # images: ConvEnergy / ResNetEnergy
            from .images import build_image_energy

            return build_image_energy(cfg, event_shape).to(_dtype(cfg))  # type: ignore[return-value]
        energy = MLPEnergy(
            event_shape,
            m.hidden,
            activation=m.activation,
            spectral_norm=m.spectral_norm,
            base_scale=m.base_scale,
            fourier_features=m.fourier_features,
            fourier_scale=m.fourier_scale,
        )
    return energy.to(_dtype(cfg))


def _init_fn(
    bounds: list[tuple[float, float]],
    event_shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> Any:
    lo = torch.tensor([b[0] for b in bounds], dtype=dtype, device=device)
    hi = torch.tensor([b[1] for b in bounds], dtype=dtype, device=device)

    def init_fn(n: int, generator: torch.Generator | None) -> Tensor:
        u = torch.rand(n, lo.numel(), generator=generator, dtype=dtype, device=device)
        return (lo + (hi - lo) * u).reshape((n, *event_shape))

    return init_fn


def _data_init_fn(data: Tensor, noise: float, clamp: tuple[float, float] | None) -> Any:
    """Fresh chain starts at random training points plus Gaussian noise of std ``noise``."""

    def init_fn(n: int, generator: torch.Generator | None) -> Tensor:
        idx = torch.randint(data.shape[0], (n,), generator=generator, device=data.device)
        z = torch.empty((n, *data.shape[1:]), dtype=data.dtype, device=data.device)
        x = data[idx] + noise * z.normal_(generator=generator)
        return x.clamp(*clamp) if clamp is not None else x

    return init_fn


def _objective(
    cfg: RunConfig,
    bounds: list[tuple[float, float]],
    event_shape: tuple[int, ...],
    device: torch.device,
    data: Tensor | None = None,
) -> Any:
    """The objective named by ``cfg.objective.name`` (NCE fits its noise to ``data``)."""
    o = cfg.objective
    if o.name == "jem":
        from .jem import jem_objective

        return jem_objective(cfg, _init_fn(bounds, event_shape, _dtype(cfg), device))
    if o.name == "sm":
        return ScoreMatching(o.hessian, n_probes=o.n_probes)
    if o.name == "dsm":
        return DenoisingScoreMatching(o.noise_std, noise_levels=o.noise_levels)
    if o.name == "ncsm":
        return NoiseConditionalScoreMatching(o.sigma_min, o.sigma_max)
    if o.name == "ssm":
        return SlicedScoreMatching(
            o.n_projections, variance_reduction=o.variance_reduction, projection=o.projection
        )
    if o.name == "nce":
        if data is None:
            raise ConfigError("objective 'nce' fits its noise to the training data: none given")
        flat = data.to(device).reshape(data.shape[0], -1)
        if o.noise == "mixture":
            noise: Any = fit_mixture_noise(
                flat, o.noise_components, o.noise_scale, random_state=cfg.seed
            )
        else:
            noise = fit_gaussian_noise(flat, o.noise_scale)
        return NoiseContrastiveEstimation(noise, o.noise_ratio).to(
            device=device, dtype=_dtype(cfg)
        )
    init_fn = _init_fn(bounds, event_shape, _dtype(cfg), device)
    if o.restart == "data" and data is not None:
        init_fn = _data_init_fn(data.to(device), o.restart_noise, cfg.sampler.clamp)
    try:
        return ContrastiveDivergence(
            build_run_sampler(cfg),
            o.n_steps,
            mode=o.name,
            alpha=o.alpha,
            init_fn=init_fn,
            kl_weight=o.kl_weight,
            data_noise=o.data_noise,
        )
    except ValueError as exc:
        raise ConfigError(f"objective {o.name!r}: {exc}") from None


def _set_threads(cfg: RunConfig, dim: int) -> None:
    if cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    elif dim <= 3 and max(cfg.model.hidden, default=0) <= 128:
        # Small matrices: thread start-up costs more than it saves (measured).
        torch.set_num_threads(1)


def build_run_sampler(cfg: RunConfig) -> Any:
    """The training sampler of ``cfg.sampler``: the named base sampler with its
    hyperparameters, wrapped in :class:`~ebmlab.samplers.auto.OnlineStepSize` when no step
    size is given (the acceptance is then kept at ``target_accept`` while the energy moves)."""
    sampler: Any = build_sampler(cfg.sampler.base_method, **cfg.sampler.hyperparameters())
    if cfg.sampler.is_adaptive:
        sampler = OnlineStepSize(sampler, cfg.sampler.target_accept)
    return sampler


def run_generator(device: torch.device | str, seed: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``: every random stream of a run."""
    return torch.Generator(device=device).manual_seed(int(seed))


def _versions() -> dict[str, str]:
    return {
        "ebmlab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _prepare(cfg: RunConfig) -> tuple[Run, torch.device]:
    # Under torchrun this joins the process group (gloo on CPU, nccl on GPU).
    dev = torch.device(init_from_env(str(_device(cfg.device))))
    y_train = y_test = None
    if cfg.objective.name == "jem":  # labelled images
        from .jem import load_labelled_data

        train, test, y_train, y_test = load_labelled_data(cfg, _dtype(cfg))
        toy, bounds = None, [(-1.0, 1.0)] * train[0].numel()
    else:
        train, test, toy, bounds = load_data(cfg)
    event_shape = tuple(train.shape[1:])
    energy = build_energy(cfg, event_shape).to(dev)
    return Run(cfg, energy, train, test, toy, bounds, y_train, y_test), dev


def _read_config(out: Path) -> RunConfig:
    if not out.is_dir():
        raise RunDirError(f"run directory {out} not found")
    if not (out / "config.yaml").is_file():
        raise RunDirError(f"{out}: config.yaml missing; is this a run directory?")
    _check_recorded_sha256(out, "config.yaml")
    return load_config(out / "config.yaml")


def _read_state(out: Path) -> dict[str, Any]:
    """``state.json`` of a run directory (``{}`` when absent); corrupt: :class:`RunDirError`."""
    import json

    path = out / "state.json"
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = " ".join(str(exc).split())[:120]
        raise RunDirError(f"{path}: corrupt or unreadable JSON ({why})") from None
    if not isinstance(state, dict) or not isinstance(state.get("sha256"), dict | None):
        raise RunDirError(f"{path}: corrupt (expected a JSON object with a sha256 table)")
    return state


def _check_recorded_sha256(out: Path, name: str) -> None:
    """Compare ``name`` with the SHA-256 that ``state.json`` records for it, if any."""
    sums = _read_state(out).get("sha256")
    if sums and name in sums and file_sha256(out / name) != sums[name]:
        edited = " (edited on purpose? then remove its line from state.json)"
        raise RunDirError(
            f"{out / name}: corrupt file (its SHA-256 differs from the one in state.json)"
            + (edited if name == "config.yaml" else "")
        )


def load_run(out: str | os.PathLike[str], *, device: str | None = None) -> Run:
    """Rebuild a trained run from ``config.yaml`` + ``model.safetensors``."""
    out_p = Path(out)
    cfg = _read_config(out_p)
    if device is not None:
        cfg.device = device
    weights = out_p / "model.safetensors"
    if not weights.is_file():
        raise RunDirError(f"{out_p}: model.safetensors missing; has training finished?")
    _check_recorded_sha256(out_p, "model.safetensors")
    run_, dev = _prepare(cfg)
    tensors, _ = load_tensors(weights, device=dev, require_digest=False)
    try:
        run_.energy.load_state_dict(tensors)
    except RuntimeError as exc:
        why = " ".join(str(exc).split())[:160]
        raise RunDirError(f"{weights}: does not fit the model of config.yaml ({why})") from None
    run_.energy.eval()
    return run_


def _tensorboard(cfg: RunConfig, out: Path) -> TensorBoardLogger | None:
    """A TensorBoard writer into the run directory when ``train.tensorboard`` is on."""
    if not cfg.train.tensorboard:
        return None
    return TensorBoardLogger(out)
