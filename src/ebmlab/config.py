"""Validated run configuration (YAML <-> pydantic).

Every section forbids unknown keys: a typo is an error naming the key and the
closest valid one. ``RunConfig()`` is the built-in default run: eight
Gaussians fitted by persistent contrastive divergence.
"""

from __future__ import annotations

__all__ = [
    "DataConfig",
    "EvaluateConfig",
    "ImageScalingConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "RunConfig",
    "SamplerConfig",
    "TrainConfig",
    "load_config",
    "parse_config",
]

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ImageScalingConfig(_Section):
    """The recorded pixel map of an image run (see ``ebmlab.data.ImageScaling``):
    ``low``/``high`` go to -1/+1; samples are written back in ``dtype`` and ``layout``."""

    low: float
    high: float
    dtype: str
    layout: Literal["NHW", "NCHW", "NHWC"]
    # (C, H, W) of one image inside the library.
    shape: list[int] = Field(default_factory=list)


class DataConfig(_Section):
    """Where the training data comes from: a built-in toy, a user file, or images
    (a file, a folder, an IDX file or ``builtin:digits`` / ``builtin:mnist5k``)."""

    toy: str | None = "eight_gaussians"
    file: str | None = None
    # Set for image runs: the scaling recorded when the images were first read.
    image: ImageScalingConfig | None = None
    n_train: int = Field(50_000, ge=1)
    n_test: int = Field(20_000, ge=1)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.file is None and self.toy is None:
            raise ValueError("data needs a toy name or a file")
        return self


class ModelConfig(_Section):
    """The energy network: an MLP over flattened inputs, or for images a strided
    CNN (``conv``: ``channels`` per layer, ``hidden`` the head) or a residual
    network (``resnet``: ``channels`` per stage, ``depth`` blocks per stage)."""

    type: Literal["mlp", "conv", "resnet"] = "mlp"
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64, 64])
    depth: int = Field(1, ge=1)
    hidden: list[int] = Field(default_factory=lambda: [64, 64, 64])
    activation: Literal["silu", "swish", "elu", "softplus", "tanh", "gelu"] = "silu"
    spectral_norm: bool = False
    base_scale: float | None = Field(4.0, gt=0.0)
    fourier_features: int = Field(0, ge=0)
    fourier_scale: float = Field(0.5, gt=0.0)


class SamplerConfig(_Section):
    """The MCMC transition used for negatives and for final samples.

    ``step_size: null`` (the default) adapts it: during training an online
    controller keeps the negatives' acceptance near ``target_accept``
    (:class:`~ebmlab.samplers.auto.OnlineStepSize`); for final samples a
    ``warmup`` of step size and diagonal mass (``adapt_mass``) runs first and
    is then frozen (:func:`~ebmlab.samplers.warmup`). ``method: pt`` samples
    with parallel tempering over ``n_replicas`` temperatures down to
    ``beta_min`` with ``pt_base`` moves (training uses ``pt_base`` alone).
    Langevin has no acceptance to adapt: its default step is 0.01.
    """

    method: Literal["langevin", "ula", "mala", "hmc", "chees", "pt"] = "mala"
    step_size: float | None = Field(None, gt=0.0)
    noise_scale: float | None = Field(None, ge=0.0)
    n_leapfrog: int = Field(5, ge=1)
    trajectory_length: float | None = Field(None, gt=0.0)
    target_accept: float | None = Field(None, gt=0.0, lt=1.0)
    warmup: int = Field(500, ge=0)
    adapt_mass: bool = True
    n_replicas: int = Field(8, ge=2)
    beta_min: float = Field(0.01, gt=0.0, lt=1.0)
    pt_base: Literal["mala", "hmc", "chees"] = "mala"
    grad_clip: float | None = Field(None, gt=0.0)
    # Per-coordinate gradient clamp (the per-pixel clamp of image recipes).
    grad_clamp: float | None = Field(None, gt=0.0)
    clamp: tuple[float, float] | None = None
    # The fast path: blocked MLP gradients on the CPU, torch.compile (CUDA
    # graphs on GPU) otherwise; same chains in distribution (docs/scaling.md).
    compile: bool = False

    @property
    def base_method(self) -> str:
        """The sampler that moves each chain (``pt_base`` for ``pt``)."""
        return self.pt_base if self.method == "pt" else self.method

    @property
    def is_adaptive(self) -> bool:
        """Whether the step size is adapted (none given, a Metropolis sampler)."""
        return self.step_size is None and self.base_method in ("mala", "hmc", "chees")

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword arguments for :func:`ebmlab.samplers.build_sampler` of
        :attr:`base_method` (an adapted step size starts at 0.01)."""
        method = self.base_method
        step = 0.01 if self.step_size is None else self.step_size
        if method in ("langevin", "ula"):
            return {
                "step_size": step,
                "noise_scale": self.noise_scale,
                "grad_clip": self.grad_clip,
                "grad_clamp": self.grad_clamp,
                "clamp": self.clamp,
                "compile": self.compile,
            }
        if method == "hmc":
            return {"step_size": step, "n_leapfrog": self.n_leapfrog, "compile": self.compile}
        if method == "chees":
            return {"step_size": step, "trajectory_length": self.trajectory_length}
        return {"step_size": step, "compile": self.compile}

    def sample_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`ebmlab.sample` (warm-up unless a step size is set)."""
        hp = self.hyperparameters()
        if self.is_adaptive:
            hp.pop("step_size")
        opts: dict[str, Any] = {
            "warmup": self.warmup if (self.is_adaptive or self.method == "pt") else 0,
            "target_accept": self.target_accept,
            "adapt_mass": self.adapt_mass,
            **hp,
        }
        if self.method == "pt":
            opts.update(base=self.pt_base, n_replicas=self.n_replicas, beta_min=self.beta_min)
        return opts


class ObjectiveConfig(_Section):
    """The training objective: contrastive divergence (``cd``, ``pcd``,
    ``short-run``), score matching (``sm``, ``dsm``, ``ssm``), noise-contrastive
    estimation (``nce``) or, for image runs, noise-conditional denoising score
    matching (``ncsm``: the energy reads the noise level, ``log sigma`` uniform
    in ``[sigma_min, sigma_max]``; what ``ebmlab denoise`` restores with). Keys
    that an objective does not use are ignored by it."""

    name: Literal["cd", "pcd", "short-run", "sm", "dsm", "ssm", "nce", "ncsm"] = "pcd"
    n_steps: int = Field(10, ge=0)
    alpha: float = Field(0.0, ge=0.0)
    n_chains: int | None = Field(None, ge=1)
    reinit_prob: float = Field(0.0, ge=0.0, le=1.0)
    reservoir: bool = False
    # Fresh chain starts: uniform over the data's box, or a training point plus
    # Gaussian noise of std restart_noise ("data").
    restart: Literal["uniform", "data"] = "uniform"
    restart_noise: float = Field(0.5, ge=0.0)
    # Gaussian noise added to each data batch (image recipes).
    data_noise: float = Field(0.0, ge=0.0)
    # Improved contrastive divergence (Du et al. 2021): weight of the KL term (0: off).
    kl_weight: float = Field(0.0, ge=0.0)
    # sm: exact Hessian trace up to exact_max_dim dimensions, else Hutchinson's estimate.
    hessian: Literal["auto", "exact", "hutchinson"] = "auto"
    n_probes: int = Field(1, ge=1)
    # dsm: one noise level, or several (noise_levels overrides noise_std).
    noise_std: float = Field(0.1, gt=0.0)
    noise_levels: list[float] | None = None
    # ncsm: the range of trained noise levels (data units; [-1, 1] for images).
    sigma_min: float = Field(0.01, gt=0.0)
    sigma_max: float = Field(1.0, gt=0.0)
    # ncsm: scale of the smoothed Gaussian reference of the energy (None: none).
    sigma_data: float | None = Field(None, gt=0.0)
    # ssm: projections per point, variance-reduced form, direction distribution.
    n_projections: int = Field(1, ge=1)
    variance_reduction: bool = True
    projection: Literal["gaussian", "rademacher"] = "gaussian"
    # nce: noise samples per data point; the noise is a Gaussian ("gaussian") or a
    # Gaussian mixture of noise_components components ("mixture") fitted to the training
    # data, widened by noise_scale.
    noise_ratio: float = Field(1.0, gt=0.0)
    noise: Literal["gaussian", "mixture"] = "gaussian"
    noise_components: int = Field(8, ge=1)
    noise_scale: float = Field(1.0, gt=0.0)

    @model_validator(mode="after")
    def _positive_levels(self) -> ObjectiveConfig:
        if self.noise_levels is not None and (
            not self.noise_levels or min(self.noise_levels) <= 0
        ):
            raise ValueError(
                f"noise_levels must be a non-empty list of numbers > 0, got {self.noise_levels}"
            )
        if not self.sigma_min < self.sigma_max:
            raise ValueError(
                f"sigma_min must be < sigma_max, got {self.sigma_min} and {self.sigma_max}"
            )
        return self


class TrainConfig(_Section):
    """The optimization loop."""

    steps: int = Field(5000, ge=0)
    batch_size: int = Field(512, ge=1)
    lr: float = Field(5e-3, gt=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0.0)
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"
    warmup_steps: int = Field(100, ge=0)
    grad_clip: float | None = Field(None, gt=0.0)
    # Exponential moving average of the weights (e.g. 0.999): the run keeps the average.
    ema: float | None = Field(None, gt=0.0, lt=1.0)
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(200, ge=0)
    threads: int | None = Field(None, ge=1)
    # Also write TensorBoard event files into the run directory (ebmlab[tensorboard]).
    tensorboard: bool = False


class EvaluateConfig(_Section):
    """Final evaluation: samples, exact NLL by quadrature, MMD."""

    n_samples: int = Field(5000, ge=10)
    sample_steps: int = Field(500, ge=0)
    quadrature_resolution: int | None = Field(None, ge=8)
    mmd_samples: int = Field(2000, ge=10)
    entropy_samples: int = Field(1_000_000, ge=100)
    # log Z above 3 dimensions (quadrature below): AIS, or BDMC for a bracket.
    log_z_method: Literal["ais", "bdmc"] = "ais"
    ais_chains: int = Field(256, ge=2)
    ais_temperatures: int = Field(1000, ge=1)


class RunConfig(_Section):
    """A whole run: what ``ebmlab train`` reads and writes to ``config.yaml``."""

    name: str = "demo"
    seed: int = 0
    device: str = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    data: DataConfig = Field(default_factory=lambda: DataConfig())
    model: ModelConfig = Field(default_factory=lambda: ModelConfig())
    sampler: SamplerConfig = Field(default_factory=lambda: SamplerConfig())
    objective: ObjectiveConfig = Field(default_factory=lambda: ObjectiveConfig())
    train: TrainConfig = Field(default_factory=lambda: TrainConfig())
    evaluate: EvaluateConfig = Field(default_factory=lambda: EvaluateConfig())

    def to_yaml(self) -> str:
        """Every field written out, defaults included."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _section_fields(path: tuple[Any, ...]) -> list[str]:
    model: Any = RunConfig
    for part in path[:-1]:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type):
            return []
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
    return list(model.model_fields)


def _describe(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    key = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        valid = _section_fields(loc)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{source}: unknown config key '{key}'{hint} (valid keys here: {', '.join(valid)})"
    where = f"config key '{key}'" if key else "config"
    got = err.get("input")
    got_s = f" (got {got!r})" if not isinstance(got, dict) and got is not None else ""
    return f"{source}: {where}: {err['msg']}{got_s}"


def parse_config(raw: Any, source: str = "config") -> RunConfig:
    """Validate a mapping into a :class:`RunConfig`.

    Raises:
        ConfigError: One line naming the key and what was expected.

    Example:
        >>> parse_config({"train": {"steps": 10}}).train.steps
        10
        >>> parse_config({"train": {"stesp": 10}})
        Traceback (most recent call last):
        ...
        ebmlab.errors.ConfigError: config: unknown config key 'train.stesp'; did you mean ...
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and validate a YAML config file.

    Raises:
        ConfigError: Missing file, bad YAML, or an invalid key or value.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text; expected a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: invalid YAML{where}") from None
    return parse_config(raw, str(p))
