"""Run directories: build everything from a config, train, evaluate, reload.

A run directory (DESIGN.md) holds ``config.yaml`` (every default written out),
``model.safetensors``, ``state.json``, ``train_state.safetensors`` (optimizer,
replay buffer, RNG), ``metrics.csv``, ``report.json`` and PNG figures. Every
command that reads a run rebuilds the model from ``config.yaml`` and
``model.safetensors``; nothing is unpickled.
"""

from __future__ import annotations

__all__ = [
    "Run",
    "build_energy",
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
from .energies import MLPEnergy
from .errors import ConfigError, DataError, RunDirError
from .evaluation import default_bounds, heldout_nll, mmd
from .objectives import ContrastiveDivergence
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


def _objective(
    cfg: RunConfig,
    bounds: list[tuple[float, float]],
    event_shape: tuple[int, ...],
    device: torch.device,
) -> ContrastiveDivergence:
    sampler = build_sampler(cfg.sampler.method, **cfg.sampler.hyperparameters())
    o = cfg.objective
    return ContrastiveDivergence(
        sampler,
        o.n_steps,
        mode=o.name,
        alpha=o.alpha,
        init_fn=_init_fn(bounds, event_shape, _dtype(cfg), device),
    )


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
    objective = _objective(cfg, run_.bounds, event_shape, dev)
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
    out_p.mkdir(parents=True, exist_ok=True)
    run_, dev = _prepare(cfg)
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
