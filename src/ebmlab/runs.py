"""Run directories: build everything from a config, train, evaluate, reload.

A run directory (DESIGN.md) holds ``config.yaml`` (every default written out),
``model.safetensors``, ``state.json``, ``train_state.safetensors`` (optimizer,
replay buffer, RNG), ``metrics.csv``, ``report.json`` and PNG figures. Every
command that reads a run rebuilds the model from ``config.yaml`` and
``model.safetensors``; nothing is unpickled.
"""

from __future__ import annotations

__all__ = [
    "DetectResult",
    "Run",
    "build_energy",
    "denoise_run",
    "detect_run",
    "evaluate_run",
    "load_data",
    "load_run",
    "log_z_run",
    "resume_run",
    "sample_run",
    "score_run",
    "train_run",
]

import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from . import __version__
from .config import RunConfig, load_config
from .data import Toy, load_tensor, make_toy
from .data.images import is_image_source
from .energies import MLPEnergy
from .energies.base import energy_and_grad
from .errors import ConfigError, DataError, RunDirError
from .evaluation import default_bounds, heldout_nll, mmd
from .objectives import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    NoiseContrastiveEstimation,
    ScoreMatching,
    SlicedScoreMatching,
    fit_gaussian_noise,
    fit_mixture_noise,
)
from .partition import Estimate, log_likelihood
from .partition import log_z as partition_log_z
from .samplers import build_sampler, run
from .train import TrainSettings, atomic_save_tensors, atomic_write_json, atomic_write_text, fit
from .train.distributed import (
    barrier,
    init_from_env,
    is_main_process,
    rank_seed,
    world_size,
)
from .train.loop import CHECKPOINT_NAME, METRICS_NAME


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
    """

    config: RunConfig
    energy: MLPEnergy
    train: Tensor
    test: Tensor
    toy: Toy | None
    bounds: list[tuple[float, float]]


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
    if d.file is not None and (d.image is not None or is_image_source(d.file)):
        from .images import load_image_data  # image hook

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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if m.type != "mlp":  # image hook
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
    if o.name == "sm":
        return ScoreMatching(o.hessian, n_probes=o.n_probes)
    if o.name == "dsm":
        return DenoisingScoreMatching(o.noise_std, noise_levels=o.noise_levels)
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
    sampler = build_sampler(cfg.sampler.method, **cfg.sampler.hyperparameters())
    init_fn = _init_fn(bounds, event_shape, _dtype(cfg), device)
    if o.restart == "data" and data is not None:
        init_fn = _data_init_fn(data.to(device), o.restart_noise, cfg.sampler.clamp)
    try:
        return ContrastiveDivergence(
            sampler,
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


def _versions() -> dict[str, str]:
    return {
        "ebmlab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write_state(out: Path, cfg: RunConfig, step: int, status: str, seconds: float) -> None:
    atomic_write_json(
        out / "state.json",
        {
            "status": status,
            "step": step,
            "steps": cfg.train.steps,
            "seed": cfg.seed,
            "train_seconds": seconds,
            "files": {
                "model": "model.safetensors",
                "checkpoint": CHECKPOINT_NAME,
                "checkpoint_contents": "model, optimizer, replay buffer, RNG state",
                "metrics": METRICS_NAME,
                "config": "config.yaml",
            },
            "versions": _versions(),
        },
    )


def _prepare(cfg: RunConfig) -> tuple[Run, torch.device]:
    # Under torchrun this joins the process group (gloo on CPU, nccl on GPU).
    dev = torch.device(init_from_env(str(_device(cfg.device))))
    train, test, toy, bounds = load_data(cfg)
    event_shape = tuple(train.shape[1:])
    energy = build_energy(cfg, event_shape).to(dev)
    return Run(cfg, energy, train, test, toy, bounds), dev


def _train(run_: Run, dev: torch.device, out: Path, *, resume: bool, progress: bool) -> float:
    cfg = run_.config
    event_shape = tuple(run_.train.shape[1:])
    _set_threads(cfg, run_.energy.dim)
    objective = _objective(cfg, run_.bounds, event_shape, dev, data=run_.train)
    # With several processes each rank holds its share of the chains and batch.
    world = world_size()
    chains = max(1, (cfg.objective.n_chains or cfg.train.batch_size) // world)
    local_batch = max(1, cfg.train.batch_size // world)
    state = objective.init_state(
        chains,
        reinit_prob=cfg.objective.reinit_prob,
        reservoir=cfg.objective.reservoir,
        generator=torch.Generator(device=dev).manual_seed(rank_seed(cfg.seed + 1)),
    )
    if state is not None:
        objective.n_negatives = min(chains, local_batch)
    t = cfg.train
    settings = TrainSettings(
        steps=t.steps,
        batch_size=t.batch_size,
        lr=t.lr,
        betas=t.betas,
        weight_decay=t.weight_decay,
        lr_schedule=t.lr_schedule,
        warmup_steps=t.warmup_steps,
        grad_clip=t.grad_clip,
        log_every=t.log_every,
        checkpoint_every=t.checkpoint_every,
        seed=cfg.seed,
        device=str(dev),
        ema=t.ema,
    )
    prior = 0.0
    if resume and (out / "state.json").is_file():
        import json

        prior = float(json.loads((out / "state.json").read_text()).get("train_seconds", 0.0))
    main = is_main_process()
    if main:
        _write_state(out, cfg, 0, "running", prior)
    result = fit(
        run_.energy,
        run_.train,
        objective,
        settings,
        state=state,
        run_dir=out,
        resume=resume,
        progress=progress,
    )
    seconds = prior + result.seconds
    if main:
        atomic_save_tensors(
            out / "model.safetensors",
            dict(run_.energy.state_dict()),
            {"format": "ebmlab-energy", "ebmlab": __version__},
        )
        _write_state(out, cfg, result.step, "trained", seconds)
    barrier()
    return seconds


def train_run(
    cfg: RunConfig, out: str | os.PathLike[str], *, progress: bool = True, evaluate: bool = True
) -> dict[str, Any]:
    """Train a fresh run into ``out`` and (by default) evaluate it.

    Returns:
        The report (also written to ``report.json``), or ``{}`` without evaluation.
    """
    out_p = Path(out)
    run_, dev = _prepare(cfg)  # bad data fails here, before anything is written
    out_p.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        atomic_write_text(out_p / "config.yaml", cfg.to_yaml())
    seconds = _train(run_, dev, out_p, resume=False, progress=progress)
    if not (evaluate and is_main_process()):
        return {}
    return evaluate_run(out_p, run_, train_seconds=seconds, progress=progress)


def resume_run(
    out: str | os.PathLike[str],
    *,
    steps: int | None = None,
    progress: bool = True,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Continue a run from its last checkpoint (optionally extended to ``steps`` in all)."""
    out_p = Path(out)
    cfg = _read_config(out_p)
    if not (out_p / CHECKPOINT_NAME).is_file():
        raise RunDirError(f"{out_p}: no {CHECKPOINT_NAME} to resume from")
    if steps is not None:
        if steps < 0:
            raise ConfigError(f"--steps must be >= 0, got {steps}")
        cfg.train.steps = steps
        if is_main_process():
            atomic_write_text(out_p / "config.yaml", cfg.to_yaml())
    run_, dev = _prepare(cfg)
    seconds = _train(run_, dev, out_p, resume=True, progress=progress)
    if not (evaluate and is_main_process()):
        return {}
    return evaluate_run(out_p, run_, train_seconds=seconds, progress=progress)


def _read_config(out: Path) -> RunConfig:
    if not out.is_dir():
        raise RunDirError(f"run directory {out} not found")
    if not (out / "config.yaml").is_file():
        raise RunDirError(f"{out}: config.yaml missing; is this a run directory?")
    return load_config(out / "config.yaml")


def load_run(out: str | os.PathLike[str], *, device: str | None = None) -> Run:
    """Rebuild a trained run from ``config.yaml`` + ``model.safetensors``."""
    out_p = Path(out)
    cfg = _read_config(out_p)
    if device is not None:
        cfg.device = device
    weights = out_p / "model.safetensors"
    if not weights.is_file():
        raise RunDirError(f"{out_p}: model.safetensors missing; has training finished?")
    run_, dev = _prepare(cfg)
    run_.energy.load_state_dict(load_file(str(weights), device=str(dev)))
    run_.energy.eval()
    return run_


def _chain_starts(
    out: Path, run_: Run, n: int, generator: torch.Generator, dev: torch.device
) -> Tensor:
    """Start final sampling from the persistent chains when they exist, else from noise."""
    event_shape = tuple(run_.train.shape[1:])
    init = _init_fn(run_.bounds, event_shape, _dtype(run_.config), dev)
    ckpt = out / CHECKPOINT_NAME
    if ckpt.is_file():
        from safetensors import safe_open

        with safe_open(str(ckpt), framework="pt") as fh:
            if "extra.buffer" in fh.keys():  # noqa: SIM118 - safe_open has no __contains__
                buf = fh.get_tensor("extra.buffer").to(dev, _dtype(run_.config))
                idx = torch.randint(buf.shape[0], (n,), generator=generator, device=dev)
                return buf[idx]
    return init(n, generator)


def sample_run(
    out: str | os.PathLike[str],
    n: int,
    *,
    steps: int | None = None,
    seed: int = 0,
    device: str | None = None,
    run_: Run | None = None,
    progress: bool = False,
) -> Tensor:
    """Draw ``n`` samples from a trained run with its sampler.

    Chains start from the persistent chains saved with the run (or from noise
    when there are none) and take ``steps`` transitions (default
    ``evaluate.sample_steps``).

    Returns:
        Samples, shape ``(n, *event_shape)``.
    """
    out_p = Path(out)
    if n < 1:
        raise ConfigError(f"number of samples must be >= 1, got {n}")
    run_ = run_ or load_run(out_p, device=device)
    cfg = run_.config
    dev = next(run_.energy.parameters()).device
    g = torch.Generator(device=dev).manual_seed(seed)
    x0 = _chain_starts(out_p, run_, n, g, dev)
    sampler = build_sampler(cfg.sampler.method, **cfg.sampler.hyperparameters())
    n_steps = cfg.evaluate.sample_steps if steps is None else steps
    return run(sampler, run_.energy, x0, n_steps, generator=g, progress=progress).state.x


def score_run(
    out: str | os.PathLike[str], path: str | os.PathLike[str], *, device: str | None = None
) -> Tensor:
    """Energies ``(N,)`` of the rows of a .npy/.npz/.csv file under a trained run."""
    run_ = load_run(out, device=device)
    dim = run_.energy.dim
    if run_.config.data.image is not None:  # image hook
        from .images import load_image_rows

        x = load_image_rows(run_.config, run_.energy.event_shape, path)
        if bool(x.isnan().any()):
            raise DataError(f"{path}: NaN pixels; score needs complete images")
        x = x.to(_dtype(run_.config))
    else:
        x = load_tensor(path, dim=dim, dtype=_dtype(run_.config))
    dev = next(run_.energy.parameters()).device
    with torch.no_grad():
        return torch.cat(
            [
                run_.energy(c.to(dev)).cpu()
                for c in x.reshape((-1, *run_.energy.event_shape)).split(65536)
            ]
        )


def _estimate_log_z(
    run_: Run,
    energy: MLPEnergy,
    method: str,
    *,
    n_chains: int | None = None,
    n_temperatures: int | None = None,
    seed: int | None = None,
) -> Estimate:
    """log Z of a run's energy by ``method`` (see :func:`ebmlab.partition.log_z`)."""
    cfg = run_.config
    ev = cfg.evaluate
    dev = next(energy.parameters()).device
    g = torch.Generator(device=dev).manual_seed(cfg.seed + 7 if seed is None else seed)
    data = run_.train.to(device=dev, dtype=next(energy.parameters()).dtype)
    options: dict[str, Any] = {}
    if method in ("ais", "bdmc") or (method == "auto" and energy.dim > 3):
        options = {
            "n_chains": n_chains or ev.ais_chains,
            "n_temperatures": n_temperatures or ev.ais_temperatures,
        }
    # AIS makes thousands of small calls: on a busy 2-core machine a second torch thread
    # made a 6-D evaluation 50x slower (measured), so small problems run on one thread.
    threads = torch.get_num_threads()
    width = max([energy.dim, *cfg.model.hidden])
    if cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    elif dev.type == "cpu" and int(options.get("n_chains", 1)) * width <= 256 * 512:
        torch.set_num_threads(1)
    try:
        return partition_log_z(
            energy,
            method,
            data=data,
            bounds=run_.bounds if energy.dim <= 3 else None,
            resolution=ev.quadrature_resolution,
            generator=g,
            **options,
        )
    except ValueError as exc:
        raise ConfigError(f"log Z by {method}: {exc}") from None
    finally:
        torch.set_num_threads(threads)


def log_z_run(
    out: str | os.PathLike[str],
    method: str = "auto",
    *,
    n_chains: int | None = None,
    n_temperatures: int | None = None,
    seed: int | None = None,
    device: str | None = None,
) -> Estimate:
    """log Z of a trained run's energy, in float64 (``ebmlab logz``).

    ``auto`` integrates by quadrature in 1-3 dimensions and runs AIS above;
    AIS and BDMC fit their Gaussian base to the training data and default to
    ``evaluate.ais_chains`` chains and ``evaluate.ais_temperatures`` temperatures.
    """
    run_ = load_run(out, device=device)
    e64 = build_energy(run_.config, run_.energy.event_shape).double()
    e64.load_state_dict(run_.energy.state_dict())
    e64 = e64.to(next(run_.energy.parameters()).device).eval()
    return _estimate_log_z(
        run_, e64, method, n_chains=n_chains, n_temperatures=n_temperatures, seed=seed
    )


def evaluate_run(
    out: str | os.PathLike[str],
    run_: Run | None = None,
    *,
    train_seconds: float | None = None,
    progress: bool = False,
    plots: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained run and write ``report.json`` (and figures).

    Report keys: ``nll_heldout`` (+ ``nll_heldout_stderr``), ``entropy_floor``
    (+ stderr; null without a known density), ``nll_gap``, ``log_z``,
    ``log_z_stderr``, ``log_z_method``, ``mmd``, ``train_seconds``, ``steps``,
    ``eval_seconds``. log Z is exact (quadrature) in 1-3 dimensions; above, it is
    estimated by ``evaluate.log_z_method`` (AIS or BDMC, base fitted to the training
    data) and the report adds ``log_z_lower``, ``log_z_upper``, ``log_z_ess`` and
    ``log_z_seconds``; ``nll_heldout_stderr`` then counts the examples' spread only
    (add ``log_z_stderr`` for the estimate's own error).
    """
    import json

    t0 = time.perf_counter()
    out_p = Path(out)
    run_ = run_ or load_run(out_p)
    cfg = run_.config
    energy = run_.energy.eval()
    ev = cfg.evaluate
    dim = energy.dim
    report: dict[str, Any] = {"name": cfg.name, "dim": dim}
    state_path = out_p / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    report["steps"] = state.get("step")
    report["train_seconds"] = (
        train_seconds if train_seconds is not None else state.get("train_seconds")
    )
    if cfg.data.image is not None:  # image hook: samples, grids, FID/KID, 8x8 likelihood
        from .images import evaluate_image_run

        evaluate_image_run(out_p, run_, report, plots=plots, progress=progress)
        report["eval_seconds"] = time.perf_counter() - t0
        report["versions"] = _versions()
        atomic_write_json(out_p / "report.json", report)
        return report
    # Exact NLL by quadrature for 1-3 dimensions, in float64.
    e64 = build_energy(cfg, energy.event_shape).double()
    e64.load_state_dict(energy.state_dict())
    e64 = e64.cpu().eval()
    if 1 <= dim <= 3:
        r = heldout_nll(
            e64,
            run_.test.double().reshape(-1, dim),
            run_.bounds,
            resolution=ev.quadrature_resolution,
        )
        report.update(
            nll_heldout=r.nll,
            nll_heldout_stderr=r.nll_stderr,
            log_z=r.log_z,
            log_z_stderr=r.log_z_error,
            log_z_method=r.method,
        )
    else:
        # Above 3 dimensions: log Z by AIS (or BDMC), base fitted to the training data;
        # the held-out NLL then uses log_likelihood (its stderr is over examples only).
        est = _estimate_log_z(run_, e64, ev.log_z_method)
        nll = -log_likelihood(e64, run_.test.double(), est)
        report.update(
            nll_heldout=float(nll.mean()),
            nll_heldout_stderr=float(nll.std() / math.sqrt(nll.numel())),
            log_z=est.value,
            log_z_stderr=est.stderr,
            log_z_method=est.method,
            log_z_lower=est.lower,
            log_z_upper=est.upper,
            log_z_ess=est.ess,
            log_z_seconds=est.seconds,
        )
    if run_.toy is not None and run_.toy.has_log_prob:
        h, h_se = run_.toy.entropy(n=ev.entropy_samples, seed=cfg.seed)
        report.update(entropy_floor=h, entropy_floor_stderr=h_se)
    else:
        report.update(entropy_floor=None, entropy_floor_stderr=None)
    if report["nll_heldout"] is not None and report["entropy_floor"] is not None:
        report["nll_gap"] = report["nll_heldout"] - report["entropy_floor"]
        report["nll_gap_stderr"] = math.hypot(
            report["nll_heldout_stderr"], report["entropy_floor_stderr"]
        )
    else:
        report["nll_gap"] = None
        report["nll_gap_stderr"] = None
    samples = sample_run(out_p, ev.n_samples, seed=cfg.seed, run_=run_, progress=progress)
    samples = samples.detach().cpu()
    m = min(ev.mmd_samples, samples.shape[0], run_.test.shape[0])
    report["mmd"] = mmd(samples[:m], run_.test[:m])
    report["sample_finite_fraction"] = float(
        torch.isfinite(samples.reshape(samples.shape[0], -1)).all(1).double().mean()
    )
    report["eval_seconds"] = time.perf_counter() - t0
    report["versions"] = _versions()
    if plots:
        from .plotting import plot_curves, plot_density, plot_samples

        plot_samples(samples, run_.test, out_p / "samples.png", run_.bounds)
        if dim in (1, 2):
            true_lp = run_.toy.log_prob if run_.toy is not None and run_.toy.has_log_prob else None
            plot_density(e64, run_.bounds, out_p / "energy.png", true_lp)
        if (out_p / METRICS_NAME).is_file():
            plot_curves(out_p / METRICS_NAME, out_p / "curves.png")
    atomic_write_json(out_p / "report.json", report)
    return report


@dataclass
class DetectResult:
    """What :func:`detect_run` returns.

    Attributes:
        energy: Energy of each row, shape ``(N,)`` (higher = more anomalous).
        labels: ``+1`` inlier / ``-1`` anomaly per row, shape ``(N,)``.
        threshold: Energy above which a row is an anomaly: the
            ``1 - contamination`` quantile of the training rows' energies.
        contamination: The fraction of training rows above ``threshold``.
    """

    energy: Tensor
    labels: Tensor
    threshold: float
    contamination: float


def detect_run(
    out: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    contamination: float = 0.05,
    device: str | None = None,
) -> DetectResult:
    """Flag anomalous rows of a data file with a trained run's energy.

    Every row's energy is compared with a threshold taken from the run's own
    training data (rebuilt from ``config.yaml``): the ``1 - contamination``
    quantile of the training energies, so that a fraction ``contamination``
    of the training rows would be flagged. Higher energy = more anomalous.

    Arguments:
        out: Run directory.
        path: ``.npy``/``.npz``/``.csv`` file of rows.
        contamination: Expected fraction of anomalies, in ``(0, 0.5]``.
        device: Torch device (default: the run's).

    Returns:
        A :class:`DetectResult`.

    Raises:
        ConfigError: If ``contamination`` is outside ``(0, 0.5]``.
    """
    if not (isinstance(contamination, int | float) and 0 < contamination <= 0.5):
        raise ConfigError(f"contamination must be in (0, 0.5], got {contamination!r}")
    run_ = load_run(out, device=device)
    energy = score_run(out, path, device=device)
    dev = next(run_.energy.parameters()).device
    with torch.no_grad():
        train_e = torch.cat(
            [
                run_.energy(c.to(dev)).cpu()
                for c in run_.train.reshape((-1, *run_.energy.event_shape)).split(65536)
            ]
        )
    threshold = float(torch.quantile(train_e.double(), 1.0 - float(contamination)))
    labels = torch.where(energy > threshold, -1, 1)
    return DetectResult(energy, labels, threshold, float(contamination))


#: ``ebmlab denoise`` noise models and restoration methods.
DENOISE_NOISES = ("gaussian", "mask")
DENOISE_METHODS = ("descent", "langevin")


def _load_rows_with_nan(path: str | os.PathLike[str], dim: int) -> Any:
    """Rows ``(N, dim)`` of a file as float64 NumPy, NaN allowed in ``.npy`` files."""
    import numpy as np

    from .data.loaders import load_array

    p = Path(path)
    if p.suffix.lower() != ".npy":
        return load_array(p, dim=dim, dtype=np.float64)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: not a readable .npy array ({exc})") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != dim:
        raise DataError(f"{p}: expected rows of shape (N, {dim}), got {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.number) or np.isinf(arr).any():
        raise DataError(f"{p}: expected finite numbers (NaN = missing), got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _image_mask(path: str | os.PathLike[str], shape: tuple[int, ...]) -> Any:
    """An image run's observed-pixel mask: a ``.npy`` holding as many values as the images."""
    import numpy as np

    try:
        m = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy mask ({exc})") from None
    if m.dtype.kind not in "biuf" or m.size != int(np.prod(shape)) or m.shape[0] != shape[0]:
        raise DataError(f"{path}: mask of shape {m.shape} does not match {shape[0]} images")
    return m.reshape(shape)


def denoise_run(
    out: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    noise: str = "gaussian",
    noise_std: float | None = None,
    mask: str | os.PathLike[str] | None = None,
    method: str = "descent",
    n_steps: int = 200,
    step_size: float | None = None,
    n_chains: int = 16,
    seed: int = 0,
    device: str | None = None,
) -> Tensor:
    """Restore corrupted rows of a data file with a trained run's energy (``ebmlab denoise``).

    Noise models:

    * ``"gaussian"``: ``y = x + noise_std * eps``; the restoration works on the
      posterior energy ``U(x) = E(x) + |x - y|^2 / (2 noise_std^2)``.
    * ``"mask"``: entries are missing where the ``mask`` file (same shape,
      nonzero/True = observed) says so, or where the data holds NaN (``.npy``);
      ``U = E`` over the missing entries, the observed ones are kept exactly.
      NaN entries are treated as missing under ``"gaussian"`` too. Missing
      entries start at the mean of the run's training data.

    Methods: ``"descent"`` (``n_steps`` gradient steps on ``U`` with a
    per-row backtracking step: a MAP estimate) or ``"langevin"`` (``n_chains``
    Metropolis-adjusted Langevin chains per row on ``U``, the step adapted
    over the first half of the steps, the states averaged over the second
    half: a posterior mean). The first step is ``noise_std^2 / 4`` (Gaussian)
    or the run's sampler step size (mask).

    Arguments:
        out: Run directory.
        path: ``.npy``/``.npz``/``.csv`` of corrupted rows ``(N, D)``.
        noise: ``"gaussian"`` or ``"mask"``.
        noise_std: Gaussian noise level (required for ``"gaussian"``).
        mask: ``.npy`` file of the observed-entry mask ``(N, D)``.
        method: ``"descent"`` or ``"langevin"``.
        n_steps: Gradient or Langevin steps.
        step_size: Step size (default above).
        n_chains: Langevin chains per row.
        seed: Seed of the Langevin noise.
        device: Torch device (default: the run's).

    Returns:
        Restored rows, shape ``(N, D)``, float64 on the CPU.

    Raises:
        ConfigError: For an unknown noise/method or a missing/invalid parameter.
        DataError: For a malformed data or mask file.
    """
    import numpy as np

    if noise not in DENOISE_NOISES:
        raise ConfigError(f"noise must be one of {list(DENOISE_NOISES)}, got {noise!r}")
    if method not in DENOISE_METHODS:
        raise ConfigError(f"method must be one of {list(DENOISE_METHODS)}, got {method!r}")
    if noise == "gaussian" and not (noise_std is not None and noise_std > 0):
        raise ConfigError(f"noise 'gaussian' needs --noise-std > 0, got {noise_std!r}")
    if noise == "mask" and noise_std is not None:
        raise ConfigError("--noise-std applies to noise 'gaussian' only, not to 'mask'")
    for name, value, low in (("n_steps", n_steps, 1), ("n_chains", n_chains, 1)):
        if int(value) < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")
    if step_size is not None and not step_size > 0:
        raise ConfigError(f"step size must be > 0, got {step_size}")
    run_ = load_run(out, device=device)
    energy = run_.energy
    for p in energy.parameters():
        p.requires_grad_(False)
    dim = energy.dim
    image = run_.config.data.image
    if image is not None:  # image hook: pixels in the data's units -> [-1, 1]
        from .images import load_image_rows

        y_np = load_image_rows(run_.config, energy.event_shape, path).numpy()
        if noise_std is not None:
            noise_std = noise_std * 2.0 / (image.high - image.low)
    else:
        y_np = _load_rows_with_nan(path, dim)
    observed = ~np.isnan(y_np)
    if mask is not None:
        m = _load_rows_with_nan(mask, dim) if image is None else _image_mask(mask, y_np.shape)
        if m.shape != y_np.shape:
            raise DataError(f"{mask}: mask shape {m.shape} differs from the data's {y_np.shape}")
        observed &= m != 0
    elif noise == "mask" and observed.all():
        raise ConfigError("noise 'mask' needs --mask FILE or NaN entries in the data")
    dev = next(energy.parameters()).device
    dtype = next(energy.parameters()).dtype
    mean = run_.train.reshape(run_.train.shape[0], -1).mean(0).to(dtype)  # missing: start here
    y = torch.as_tensor(np.nan_to_num(y_np), dtype=dtype)
    obs = torch.as_tensor(observed)
    y = torch.where(obs, y, mean.expand_as(y)).to(dev)
    obs = obs.to(dev)
    if noise == "gaussian":
        assert noise_std is not None
        s2 = float(noise_std) ** 2
        free = torch.ones_like(obs)
        step = s2 / 4.0 if step_size is None else float(step_size)
    else:
        s2 = math.inf
        free = ~obs
        step = run_.config.sampler.step_size if step_size is None else float(step_size)
    missing = ~obs
    event = energy.event_shape
    g = torch.Generator(device=dev).manual_seed(int(seed))
    k = int(n_chains) if method == "langevin" else 1
    y_k = y.repeat_interleave(k, 0)
    free_k = free.repeat_interleave(k, 0).to(dtype)
    anchor = obs.repeat_interleave(k, 0).to(dtype)  # data term only on observed entries

    def potential(z: Tensor) -> tuple[Tensor, Tensor]:
        """``U`` per row and its gradient on the free entries."""
        e, grad = energy_and_grad(energy, z.reshape((-1, *event)))
        grad = grad.reshape(z.shape)
        if noise == "gaussian":
            diff = anchor * (z - y_k)
            e = e + 0.5 * diff.pow(2).sum(1) / s2
            grad = grad + diff / s2
        return e, grad * free_k

    x = y_k.clone()
    u, grad = potential(x)
    eps = torch.full((x.shape[0], 1), step, dtype=dtype, device=dev)
    total = torch.zeros_like(x)
    count = 0
    steps = int(n_steps)
    for t in range(steps):
        if method == "descent":  # per-row backtracking: grow after a success, halve otherwise
            x_new = x - eps * grad
        else:  # Metropolis-adjusted Langevin on U, step adapted during the first half
            z = torch.randn(x.shape, generator=g, device=dev, dtype=dtype) * free_k
            x_new = x - eps * grad + torch.sqrt(2.0 * eps) * z
        u_new, grad_new = potential(x_new)
        if method == "descent":
            ok = u_new <= u
        else:
            fwd = (x_new - x + eps * grad).pow(2).sum(1)
            bwd = (x - x_new + eps * grad_new).pow(2).sum(1)
            log_alpha = u - u_new + (fwd - bwd) / (4.0 * eps[:, 0])
            draw = torch.rand(u.shape, generator=g, device=dev, dtype=dtype)
            ok = draw.log() < log_alpha
        x = torch.where(ok[:, None], x_new, x)
        u = torch.where(ok, u_new, u)
        grad = torch.where(ok[:, None], grad_new, grad)
        if method == "descent" or t < steps // 2:
            eps = eps * torch.where(ok, 1.1, 0.5)[:, None]
        elif method == "langevin":
            total = total + x
            count += 1
    if method == "langevin":
        x = (total / max(count, 1)).reshape(-1, k, dim).mean(1)
    result = torch.where(free | missing, x, y).double().cpu()
    if noise == "mask":
        result = torch.where(obs.cpu(), torch.as_tensor(y_np), result)
    return result
