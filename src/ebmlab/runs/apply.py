"""Applying a trained run: sample, score, detect anomalies, log Z (denoising: ``denoise``).

Each function reloads the run (:func:`ebmlab.runs.build.load_run`) and uses its
energy: :func:`sample_run` continues the run's sampler from its persistent
chains (or, for a JEM run and a label, samples that class from noise),
:func:`score_run` gives energies of a file's rows, :func:`detect_run` flags
rows above a threshold set on the training data and :func:`log_z_run`
estimates log Z; restoring corrupted rows lives in :mod:`ebmlab.runs.denoise`.
Low energy = probable.
"""

from __future__ import annotations

__all__ = [
    "DetectResult",
    "detect_run",
    "iter_detect_run",
    "iter_score_run",
    "log_z_run",
    "sample_run",
    "score_run",
]

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor

from ..data.loaders import CHUNK_ROWS, iter_array_chunks
from ..energies import MLPEnergy
from ..errors import ConfigError, DataError
from ..partition import Estimate
from ..partition import log_z as partition_log_z
from ..samplers import sample
from ..train.checkpoint import load_tensors
from ..train.loop import CHECKPOINT_NAME
from .build import Run, _dtype, _init_fn, build_energy, load_run, run_generator


def _chain_starts(
    out: Path, run_: Run, n: int, generator: torch.Generator, dev: torch.device
) -> Tensor:
    """Start final sampling from the persistent chains when they exist, else from noise."""
    event_shape = tuple(run_.train.shape[1:])
    init = _init_fn(run_.bounds, event_shape, _dtype(run_.config), dev)
    ckpt = out / CHECKPOINT_NAME
    if ckpt.is_file():
        tensors, _ = load_tensors(ckpt)  # checked: a corrupt checkpoint is named
        if "extra.buffer" in tensors:
            buf = tensors["extra.buffer"].to(dev, _dtype(run_.config))
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
    options: dict[str, Any] | None = None,
    label: int | None = None,
) -> Tensor:
    """Draw ``n`` samples from a trained run with its sampler.

    Chains start from the persistent chains saved with the run (or from noise
    when there are none) and take ``steps`` transitions (default
    ``evaluate.sample_steps``), after the sampler section's warm-up when its
    step size is adapted; ``options`` override keys of the ``sampler`` section
    (``method``, ``step_size``, ``warmup``, ``n_replicas``...). The adapted
    parameters are logged to the ``ebmlab.samplers`` logger.

    With ``label`` (JEM runs: a value of ``model.classes``) the chains start
    from uniform noise and sample ``p(x | y = label)``, energy
    ``E(x, y) = -f(x)[y]``.

    Returns:
        Samples, shape ``(n, *event_shape)``.

    Raises:
        ConfigError: ``n < 1``; a ``label`` for a run without labels, or one
            that is not among its classes.
    """
    out_p = Path(out)
    if n < 1:
        raise ConfigError(f"number of samples must be >= 1, got {n}")
    run_ = run_ or load_run(out_p, device=device)
    cfg = run_.config
    dev = next(run_.energy.parameters()).device
    g = run_generator(dev, seed)
    energy: Any = run_.energy
    if label is not None:
        from .jem import class_energy

        energy = class_energy(run_, label)
        event_shape = tuple(run_.train.shape[1:])
        x0 = _init_fn(run_.bounds, event_shape, _dtype(cfg), dev)(n, g)
    else:
        x0 = _chain_starts(out_p, run_, n, g, dev)
    sc = cfg.sampler.model_copy(update=options or {})
    try:
        sc = type(sc).model_validate(sc.model_dump())
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(k) for k in err["loc"])
        raise ConfigError(f"bad sampler option {where}: {err['msg']}") from None
    n_steps = cfg.evaluate.sample_steps if steps is None else steps
    return sample(
        energy, x0, sc.method, n_steps, generator=g, progress=progress, **sc.sample_options()
    )


def _np_dtype(run_: Run) -> Any:
    import numpy as np

    return np.float64 if _dtype(run_.config) == torch.float64 else np.float32


def _score_chunks(run_: Run, path: str | os.PathLike[str], chunk_rows: int) -> Iterator[Tensor]:
    import numpy as np

    energy = run_.energy
    dev = next(energy.parameters()).device
    if run_.config.data.image is not None:  # image files are read whole, scored in chunks
        from .images import load_image_rows

        x = load_image_rows(run_.config, energy.event_shape, path)
        if bool(x.isnan().any()):
            raise DataError(f"{path}: NaN pixels; score needs complete images")
        for c in x.to(_dtype(run_.config)).split(chunk_rows):
            with torch.no_grad():
                yield energy(c.reshape((-1, *energy.event_shape)).to(dev)).cpu()
        return
    chunks = iter_array_chunks(path, dim=energy.dim, dtype=_np_dtype(run_), chunk_rows=chunk_rows)
    for chunk in chunks:
        x = torch.from_numpy(np.ascontiguousarray(chunk)).reshape((-1, *energy.event_shape))
        with torch.no_grad():
            yield energy(x.to(dev)).cpu()


def iter_score_run(
    out: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    device: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Tensor]:
    """Energies of a file's rows, ``chunk_rows`` at a time, in file order (constant memory).

    The file is read in chunks (:func:`ebmlab.data.iter_array_chunks`), so its
    size is not limited by memory; a bad row raises when its chunk is reached.
    """
    run_ = load_run(out, device=device)
    yield from _score_chunks(run_, path, chunk_rows)


def score_run(
    out: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    device: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Tensor:
    """Energies ``(N,)`` of the rows of a .npy/.npz/.csv file under a trained run."""
    return torch.cat(list(iter_score_run(out, path, device=device, chunk_rows=chunk_rows)))


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
    g = run_generator(dev, cfg.seed + 7 if seed is None else seed)
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
    chunk_rows: int = CHUNK_ROWS,
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
        chunk_rows: Rows scored at a time.

    Returns:
        A :class:`DetectResult`.

    Raises:
        ConfigError: If ``contamination`` is outside ``(0, 0.5]``.
    """
    threshold, chunks = iter_detect_run(
        out, path, contamination=contamination, device=device, chunk_rows=chunk_rows
    )
    parts = list(chunks)
    energy = torch.cat([e for e, _ in parts])
    labels = torch.cat([lab for _, lab in parts])
    return DetectResult(energy, labels, threshold, float(contamination))


def iter_detect_run(
    out: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    contamination: float = 0.05,
    device: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[float, Iterator[tuple[Tensor, Tensor]]]:
    """:func:`detect_run` in constant memory: the threshold and ``(energy, labels)`` chunks.

    Raises:
        ConfigError: If ``contamination`` is outside ``(0, 0.5]``.
    """
    if not (isinstance(contamination, int | float) and 0 < contamination <= 0.5):
        raise ConfigError(f"contamination must be in (0, 0.5], got {contamination!r}")
    run_ = load_run(out, device=device)
    dev = next(run_.energy.parameters()).device
    with torch.no_grad():
        train_e = torch.cat(
            [
                run_.energy(c.to(dev)).cpu()
                for c in run_.train.reshape((-1, *run_.energy.event_shape)).split(CHUNK_ROWS)
            ]
        )
    threshold = float(torch.quantile(train_e.double(), 1.0 - float(contamination)))
    chunks = (
        (e, torch.where(e > threshold, -1, 1)) for e in _score_chunks(run_, path, chunk_rows)
    )
    return threshold, chunks
