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
    "commented_yaml",
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
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True
    )


class ImageScalingConfig(_Section):
    """The recorded pixel map of an image run (see ``ebmlab.data.ImageScaling``):
    ``low``/``high`` go to -1/+1; samples are written back in ``dtype`` and ``layout``."""

    low: float
    """Pixel value mapped to -1 (e.g. 0 for uint8 images)."""
    high: float
    """Pixel value mapped to +1 (e.g. 255 for uint8 images)."""
    dtype: str
    """NumPy dtype of the user's pixels; samples are written back in it."""
    layout: Literal["NHW", "NCHW", "NHWC"]
    """Axis order of the user's array: NHW (grey), NCHW or NHWC; samples are written back in it."""
    shape: list[int] = Field(default_factory=list)
    """(C, H, W) of one image inside the library."""


class DataConfig(_Section):
    """Where the training data comes from: a built-in toy, a user file, or images
    (a file, a folder, an IDX file or ``builtin:digits`` / ``builtin:mnist5k``)."""

    toy: str | None = "eight_gaussians"
    """Built-in toy distribution (`ebmlab.data.TOYS`, e.g. eight_gaussians, two_moons); used when
    `file` is null."""
    file: str | None = None
    """User data: a .npy/.npz/.csv of rows, or images (.npy/.npz arrays, a folder of PNG/JPEG, an
    MNIST IDX file, builtin:digits, builtin:mnist5k). Takes precedence over `toy`; relative
    paths are read from the working directory."""
    image: ImageScalingConfig | None = None
    """Set for image runs when the images are first read: the recorded pixel scaling (written to
    the run's config.yaml; leave it out in a new config)."""
    n_train: int = Field(50_000, ge=1)
    """Training points drawn from the toy (toys only)."""
    n_test: int = Field(20_000, ge=1)
    """Held-out points drawn from the toy, with another seed (toys only)."""
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    """Share of the rows of `file` held out for evaluation: a random split seeded by `seed`
    (images: stratified by label)."""

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
    """Energy network: mlp (over flattened inputs), conv (strided CNN, images) or resnet (images).
    """
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64, 64])
    """conv: channels of each layer; resnet: channels of each stage."""
    depth: int = Field(1, ge=1)
    """resnet: residual blocks per stage."""
    hidden: list[int] = Field(default_factory=lambda: [64, 64, 64])
    """mlp: widths of the hidden layers; conv: widths of the head."""
    activation: Literal["silu", "swish", "elu", "softplus", "tanh", "gelu"] = "silu"
    """Nonlinearity between layers."""
    spectral_norm: bool = False
    """Spectral normalization of every layer (bounds the network's Lipschitz constant)."""
    base_scale: float | None = Field(4.0, gt=0.0)
    """Standard deviation s of a Gaussian reference term |x|^2 / (2 s^2) added to the energy,
    which keeps exp(-E) integrable; null: none."""
    fourier_features: int = Field(0, ge=0)
    """mlp: number of random Fourier frequencies fed to the network besides x (0: none)."""
    fourier_scale: float = Field(0.5, gt=0.0)
    """mlp: standard deviation of the random Fourier frequencies."""
    classes: list[int] | None = None
    """jem: the label values, recorded from the data on the first read; the network then
    outputs one logit per class. null: unlabelled."""


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
    """MCMC transition: langevin/ula (unadjusted), mala, hmc, chees (ChEES-HMC) or pt (parallel
    tempering over `pt_base`)."""
    step_size: float | None = Field(None, gt=0.0)
    """Fixed step size; null adapts it (Metropolis samplers) or uses 0.01 (Langevin)."""
    noise_scale: float | None = Field(None, ge=0.0)
    """Langevin: standard deviation of the injected noise; null: the exact sqrt(2 * step_size)."""
    n_leapfrog: int = Field(5, ge=1)
    """hmc: leapfrog steps per transition."""
    trajectory_length: float | None = Field(None, gt=0.0)
    """chees: initial trajectory length; null: adapted from the step size."""
    target_accept: float | None = Field(None, gt=0.0, lt=1.0)
    """Acceptance the step-size adaptation aims at; null: the sampler's own default."""
    warmup: int = Field(500, ge=0)
    """Warm-up steps (step size and mass) before final samples are drawn, then frozen."""
    adapt_mass: bool = True
    """Adapt a diagonal mass (preconditioner) during warm-up."""
    n_replicas: int = Field(8, ge=2)
    """pt: number of temperatures."""
    beta_min: float = Field(0.01, gt=0.0, lt=1.0)
    """pt: lowest inverse temperature."""
    pt_base: Literal["mala", "hmc", "chees"] = "mala"
    """pt: the transition that moves each replica (and that training uses)."""
    grad_clip: float | None = Field(None, gt=0.0)
    """Langevin: clip each chain's gradient to this norm; null: no clipping."""
    grad_clamp: float | None = Field(None, gt=0.0)
    """Langevin: clamp each coordinate of the gradient to this magnitude (the per-pixel clamp of
    image recipes); null: none."""
    clamp: tuple[float, float] | None = None
    """Langevin: clamp the chains to [low, high] after each step; null: no clamping."""
    compile: bool = False
    """The fast path: blocked MLP gradients on the CPU, torch.compile (CUDA graphs on GPU)
    otherwise; the same chains in distribution (docs/scaling.md)."""

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
    estimation (``nce``), for labelled images the joint energy objective of
    JEM (``jem``: cross-entropy plus ``generative_weight`` times the contrastive
    term, ``n_steps`` SGLD steps with the ``sampler`` section's step size, noise
    and clamps, ``alpha`` the energy penalty, ``n_chains`` the replay buffer), or,
    for image runs, noise-conditional denoising score matching (``ncsm``: the
    energy reads the noise level, ``log sigma`` uniform in ``[sigma_min,
    sigma_max]``; what ``ebmlab denoise`` restores with). Keys that an objective
    does not use are ignored by it."""

    name: Literal["cd", "pcd", "short-run", "sm", "dsm", "ssm", "nce", "jem", "ncsm"] = "pcd"
    """cd, pcd, short-run (contrastive divergence), sm, dsm, ssm (score matching), nce
    (noise-contrastive estimation), jem (labelled images: classifier and energy) or ncsm
    (image runs: noise-conditional score matching, for denoise); see docs/objectives.md
    and docs/images.md."""
    n_steps: int = Field(10, ge=0)
    """CD family: MCMC steps per update for the negatives."""
    alpha: float = Field(0.0, ge=0.0)
    """CD family: weight of the energy-magnitude regularizer alpha * (E+^2 + E-^2)."""
    n_chains: int | None = Field(None, ge=1)
    """CD family: persistent chains or replay-buffer size; null: the batch size."""
    reinit_prob: float = Field(0.0, ge=0.0, le=1.0)
    """CD family: probability that a chain restarts from `restart` at each update."""
    reservoir: bool = False
    """CD family: replay buffer filled by reservoir sampling instead of overwriting."""
    restart: Literal["uniform", "data"] = "uniform"
    """CD family: fresh chain starts, uniform over the data's box, or a training point plus
    Gaussian noise of std `restart_noise` (data)."""
    restart_noise: float = Field(0.5, ge=0.0)
    """CD family: noise std of `restart: data`."""
    data_noise: float = Field(0.0, ge=0.0)
    """Std of Gaussian noise added to each data batch (image recipes); 0: none."""
    kl_weight: float = Field(0.0, ge=0.0)
    """CD family: weight of the KL term of improved contrastive divergence (Du et al. 2021); 0:
    off."""
    hessian: Literal["auto", "exact", "hutchinson"] = "auto"
    """sm: exact Hessian trace (auto: up to a few dimensions) or Hutchinson's estimate."""
    n_probes: int = Field(1, ge=1)
    """sm with Hutchinson's estimate: random probes per point."""
    noise_std: float = Field(0.1, gt=0.0)
    """dsm: the one noise level."""
    noise_levels: list[float] | None = None
    """dsm: several noise levels (overrides `noise_std`); null: one level."""
    sigma_min: float = Field(0.01, gt=0.0)
    """ncsm: the smallest trained noise level (data units; [-1, 1] for images)."""
    sigma_max: float = Field(1.0, gt=0.0)
    """ncsm: the largest trained noise level (data units)."""
    sigma_data: float | None = Field(None, gt=0.0)
    """ncsm: scale of the smoothed Gaussian reference of the energy; null: none."""
    n_projections: int = Field(1, ge=1)
    """ssm: random projections per point."""
    variance_reduction: bool = True
    """ssm: the variance-reduced form (Gaussian projections)."""
    projection: Literal["gaussian", "rademacher"] = "gaussian"
    """ssm: distribution of the projection directions."""
    noise_ratio: float = Field(1.0, gt=0.0)
    """nce: noise samples per data point."""
    noise: Literal["gaussian", "mixture"] = "gaussian"
    """nce: the noise distribution, a Gaussian or a Gaussian mixture fitted to the training data.
    """
    noise_components: int = Field(8, ge=1)
    """nce with `noise: mixture`: number of components."""
    noise_scale: float = Field(1.0, gt=0.0)
    """nce: widening factor of the fitted noise distribution."""
    generative_weight: float = Field(1.0, ge=0.0)
    """jem: weight of the contrastive term on E(x) (0: a plain classifier)."""
    conditional: bool = False
    """jem: class-conditional negatives, each chain sampling E(x, y) for a random class."""
    nda_weight: float = Field(0.0, ge=0.0)
    """jem: weight of chimera negatives (negative data augmentation, Sinha et al. 2021): the
    top of one training image over the bottom of one of another class, energy pushed up."""
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """jem: label smoothing of the cross-entropy term."""

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
    """Parameter updates in all."""
    batch_size: int = Field(512, ge=1)
    """Data points per update."""
    lr: float = Field(5e-3, gt=0.0)
    """Peak learning rate of Adam (AdamW when `weight_decay` > 0)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's betas."""
    weight_decay: float = Field(0.0, ge=0.0)
    """Decoupled weight decay (AdamW); 0: none."""
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"
    """Decay of the learning rate after warm-up: constant, cosine or linear to 0."""
    warmup_steps: int = Field(100, ge=0)
    """Linear learning-rate warm-up from 0 over this many updates."""
    grad_clip: float | None = Field(None, gt=0.0)
    """Clip the global gradient norm to this value; null: no clipping."""
    ema: float | None = Field(None, gt=0.0, lt=1.0)
    """Exponential moving average of the weights (e.g. 0.999): the run keeps the average; null:
    none."""
    log_every: int = Field(50, ge=1)
    """Updates between rows of metrics.csv."""
    checkpoint_every: int = Field(200, ge=0)
    """Updates between checkpoints (0: only at the end)."""
    threads: int | None = Field(None, ge=1)
    """torch CPU threads; null: torch's default (one thread for a small MLP in 1-3 D)."""
    tensorboard: bool = False
    """Also write TensorBoard event files into the run directory (needs ebmlab[tensorboard])."""


class EvaluateConfig(_Section):
    """Final evaluation: samples, exact NLL by quadrature, MMD."""

    n_samples: int = Field(5000, ge=10)
    """Final samples drawn for the figures and sample metrics."""
    sample_steps: int = Field(500, ge=0)
    """MCMC steps of each final chain (after warm-up)."""
    quadrature_resolution: int | None = Field(None, ge=8)
    """Cells per axis of the finest grid of the exact log Z by quadrature (1-3 dimensions);
    null: chosen by the dimension."""
    mmd_samples: int = Field(2000, ge=10)
    """Points of each set in the MMD between samples and held-out data."""
    entropy_samples: int = Field(1_000_000, ge=100)
    """Monte Carlo points of the toy's entropy (the NLL floor no model can beat)."""
    log_z_method: Literal["ais", "bdmc"] = "ais"
    """log Z above 3 dimensions (quadrature below): ais, or bdmc for a bracket."""
    ais_chains: int = Field(256, ge=2)
    """AIS chains."""
    ais_temperatures: int = Field(1000, ge=1)
    """AIS intermediate temperatures."""


class RunConfig(_Section):
    """A whole run: what ``ebmlab train`` reads and writes to ``config.yaml``."""

    name: str = "demo"
    """Run name: the run directory is runs/NAME unless `--out` is given."""
    seed: int = 0
    """Seed of the initialization, the data split, batches and sampling."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, ..."""
    dtype: Literal["float32", "float64"] = "float32"
    """Floating-point precision of the model and data."""
    data: DataConfig = Field(default_factory=lambda: DataConfig())
    """Where the training data comes from."""
    model: ModelConfig = Field(default_factory=lambda: ModelConfig())
    """The energy network."""
    sampler: SamplerConfig = Field(default_factory=lambda: SamplerConfig())
    """The MCMC transition for negatives and final samples."""
    objective: ObjectiveConfig = Field(default_factory=lambda: ObjectiveConfig())
    """The training objective."""
    train: TrainConfig = Field(default_factory=lambda: TrainConfig())
    """The optimization loop."""
    evaluate: EvaluateConfig = Field(default_factory=lambda: EvaluateConfig())
    """The final evaluation."""

    def to_yaml(self) -> str:
        """Every field written out, defaults included."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def commented_yaml(cfg: RunConfig | None = None, *, width: int = 88) -> str:
    """A config as YAML with each key's meaning as a comment above it
    (``ebmlab config --defaults``); it loads back to the same config.

    Arguments:
        cfg: The config to write; ``None``: the defaults, ``RunConfig()``.
        width: Wrap the comments at this many characters.

    Returns:
        YAML text, every key written out.

    Example:
        >>> text = commented_yaml()
        >>> parse_config(yaml.safe_load(text)) == RunConfig()
        True
    """
    import textwrap

    cfg = RunConfig() if cfg is None else cfg
    lines: list[str] = []

    def value(v: Any) -> str:
        # A one-element flow list gives YAML's inline form of any value.
        return yaml.safe_dump([v], default_flow_style=True, width=10_000).strip()[1:-1]

    def section(model: BaseModel, indent: str) -> None:
        for name, field in type(model).model_fields.items():
            v = getattr(model, name)
            for line in textwrap.wrap(field.description or "", width - len(indent) - 2):
                lines.append(f"{indent}# {line}")
            if isinstance(v, BaseModel):
                lines.append(f"{indent}{name}:")
                section(v, indent + "  ")
            else:
                lines.append(f"{indent}{name}: {value(_jsonable(v))}")

    section(cfg, "")
    return "\n".join(lines) + "\n"


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _section_fields(path: tuple[Any, ...]) -> list[str]:
    model: Any = RunConfig
    """The energy network."""
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
