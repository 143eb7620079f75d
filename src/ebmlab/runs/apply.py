"""Applying a trained run: sample, score, detect anomalies, denoise, log Z.

Each function reloads the run (:func:`ebmlab.runs.build.load_run`) and uses its
energy: :func:`sample_run` continues the run's sampler from its persistent
chains (or, for a JEM run and a label, samples that class from noise),
:func:`score_run` gives energies of a file's rows, :func:`detect_run` flags
rows above a threshold set on the training data, :func:`denoise_run` restores
corrupted rows (MAP descent or posterior-mean Langevin) and :func:`log_z_run`
estimates log Z. Low energy = probable.
"""

from __future__ import annotations

__all__ = [
    "DENOISE_METHODS",
    "DENOISE_NOISES",
    "DetectResult",
    "denoise_run",
    "detect_run",
    "iter_denoise_run",
    "iter_detect_run",
    "iter_score_run",
    "log_z_run",
    "sample_run",
    "score_run",
]

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor

from ..data.loaders import _NPLOAD_ERRORS, CHUNK_ROWS, iter_array_chunks
from ..energies import MLPEnergy, NoiseConditionalImageEnergy
from ..energies.base import energy_and_grad
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


#: ``ebmlab denoise`` noise models and restoration methods.
DENOISE_NOISES = ("gaussian", "mask")
#: Restorations of ``ebmlab denoise`` (:func:`denoise_run`): ``auto`` (``langevin`` on
#: ``ncsm`` runs, else ``descent``), MAP by gradient descent, the posterior mean of Langevin
#: chains, or Tweedie's posterior mean (``ncsm`` runs).
DENOISE_METHODS = ("auto", "descent", "langevin", "tweedie")


def _rows_with_nan(path: str | os.PathLike[str], dim: int, chunk_rows: int) -> Iterator[Any]:
    """Chunks ``(n, dim)`` of a file as float64 NumPy, NaN allowed in ``.npy`` files."""
    import numpy as np

    p = Path(path)
    if p.suffix.lower() != ".npy":
        yield from iter_array_chunks(p, dim=dim, dtype=np.float64, chunk_rows=chunk_rows)
        return
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="c")
    except (OSError, *_NPLOAD_ERRORS) as exc:
        raise DataError(f"{p}: not a readable .npy array ({' '.join(str(exc).split())})") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{p}: is an .npz archive, not a .npy array")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != dim:
        raise DataError(f"{p}: expected rows of shape (N, {dim}), got {arr.shape}")
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{p}: expected finite numbers (NaN = missing), got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{p}: expected real numbers (NaN = missing), got dtype {arr.dtype}")
    for i in range(0, arr.shape[0], chunk_rows):
        block = np.asarray(arr[i : i + chunk_rows]).astype(np.float64)
        if np.isinf(block).any():
            raise DataError(f"{p}: expected finite numbers (NaN = missing), found infinity")
        yield block


def _npy_rows(path: str | os.PathLike[str]) -> int | None:
    """Rows of a ``.npy`` file from its header (None for other files or a bad header)."""
    import numpy as np

    if Path(path).suffix.lower() != ".npy":
        return None
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, *_NPLOAD_ERRORS):
        return None
    return int(arr.shape[0]) if isinstance(arr, np.ndarray) and arr.ndim else None


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


def _image_chunks(
    run_: Run,
    path: str | os.PathLike[str],
    mask: str | os.PathLike[str] | None,
    chunk_rows: int,
) -> Iterator[tuple[Any, Any]]:
    """An image run's corrupted images (in ``[-1, 1]``, NaN = missing) and masks, in chunks.

    Image files are read whole (decoding needs the full file); the work is chunked."""
    from .images import load_image_rows

    y = load_image_rows(run_.config, run_.energy.event_shape, path).numpy()
    m = _image_mask(mask, y.shape) if mask is not None else None
    for i in range(0, y.shape[0], chunk_rows):
        yield y[i : i + chunk_rows], (m[i : i + chunk_rows] if m is not None else None)


def denoise_run(
    out: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    noise: str = "gaussian",
    noise_std: float | None = None,
    mask: str | os.PathLike[str] | None = None,
    method: str = "auto",
    n_steps: int = 200,
    step_size: float | None = None,
    n_chains: int = 16,
    seed: int = 0,
    device: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
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
    or the run's sampler step size (mask). ``"auto"`` (the default) is
    ``"langevin"`` for an image run trained with the ``ncsm`` objective and
    ``"descent"`` otherwise.

    Image runs trained with ``ncsm`` (a noise-conditional energy) restore by
    :func:`ebmlab.runs.restore.restore_images`: Gaussian noise by one Tweedie
    step at ``noise_std`` (the posterior mean; ``"tweedie"`` and
    ``"langevin"`` agree there), missing pixels by an annealed restoration
    over ``n_steps`` noise levels, averaging ``n_chains`` random chains
    (``"langevin"``: a posterior mean) or one deterministic chain
    (``"tweedie"``: faster, blurrier); ``"descent"`` descends the energy at
    the smallest trained level. Restored pixels of
    image runs are clipped to the data's range.

    Arguments:
        out: Run directory.
        path: ``.npy``/``.npz``/``.csv`` of corrupted rows ``(N, D)``.
        noise: ``"gaussian"`` or ``"mask"``.
        noise_std: Gaussian noise level (required for ``"gaussian"``).
        mask: ``.npy`` file of the observed-entry mask ``(N, D)``.
        method: ``"auto"``, ``"descent"``, ``"langevin"`` or ``"tweedie"``
            (``ncsm`` image runs only).
        n_steps: Gradient or Langevin steps (``ncsm`` runs: noise levels).
        step_size: Step size (default above).
        n_chains: Langevin chains per row.
        seed: Seed of the Langevin noise.
        device: Torch device (default: the run's).
        chunk_rows: Rows restored at a time (:func:`iter_denoise_run`).

    Returns:
        Restored rows, shape ``(N, D)``, float64 on the CPU.

    Raises:
        ConfigError: For an unknown noise/method or a missing/invalid parameter.
        DataError: For a malformed data or mask file.
    """
    _check_denoise(noise, method, noise_std, n_steps, n_chains, step_size)
    return torch.cat(
        list(
            iter_denoise_run(
                out,
                path,
                noise=noise,
                noise_std=noise_std,
                mask=mask,
                method=method,
                n_steps=n_steps,
                step_size=step_size,
                n_chains=n_chains,
                seed=seed,
                device=device,
                chunk_rows=chunk_rows,
            )
        )
    )


def iter_denoise_run(
    out: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    noise: str = "gaussian",
    noise_std: float | None = None,
    mask: str | os.PathLike[str] | None = None,
    method: str = "auto",
    n_steps: int = 200,
    step_size: float | None = None,
    n_chains: int = 16,
    seed: int = 0,
    device: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Tensor]:
    """:func:`denoise_run` in constant memory: restored rows, ``chunk_rows`` at a time.

    Rows are restored independently, so the chunks of ``"descent"`` equal the
    one-shot result; ``"langevin"`` draws its noise from one generator in row
    order, so its result depends on ``chunk_rows`` (statistically equivalent).
    """
    import numpy as np

    _check_denoise(noise, method, noise_std, n_steps, n_chains, step_size)
    run_ = load_run(out, device=device)
    is_nc = isinstance(run_.energy, NoiseConditionalImageEnergy)
    if method == "auto":
        method = "langevin" if is_nc else "descent"
    elif method == "tweedie" and not is_nc:
        raise ConfigError(
            "method 'tweedie' needs an image run trained with objective 'ncsm' "
            "(ebmlab train --data IMAGES --objective ncsm)"
        )
    dim = run_.energy.dim
    image = run_.config.data.image
    if image is not None and noise_std is not None:  # the data's pixel units -> [-1, 1]
        noise_std = noise_std * 2.0 / (image.high - image.low)
    g = run_generator(next(run_.energy.parameters()).device, seed)
    chunks: Iterator[tuple[Any, Any]] = (
        _image_chunks(run_, path, mask, chunk_rows)
        if image is not None
        else _row_chunks(path, mask, dim, chunk_rows)
    )
    any_missing = False
    for y_np, m in chunks:
        observed = ~np.isnan(y_np)
        if m is not None:
            observed &= m != 0
        if noise == "mask" and observed.all():
            yield torch.from_numpy(y_np.copy())  # nothing missing: the rows as they are
            continue
        any_missing = True
        yield _denoise_chunk(
            run_, y_np, observed, noise, noise_std, method, n_steps, step_size, n_chains, g
        )
    if noise == "mask" and mask is None and not any_missing:
        raise ConfigError("noise 'mask' needs --mask FILE or NaN entries in the data")


def _row_chunks(
    path: str | os.PathLike[str],
    mask: str | os.PathLike[str] | None,
    dim: int,
    chunk_rows: int,
) -> Iterator[tuple[Any, Any]]:
    """Chunks of rows ``(n, dim)`` (NaN = missing) with their mask chunks, in file order."""
    n_data, n_mask = _npy_rows(path), _npy_rows(mask) if mask is not None else None
    if n_data is not None and n_mask is not None and n_data != n_mask:
        raise DataError(
            f"{mask}: mask shape {(n_mask, dim)} differs from the data's {(n_data, dim)}"
        )
    masks = _rows_with_nan(mask, dim, chunk_rows) if mask is not None else None
    rows = 0
    for y_np in _rows_with_nan(path, dim, chunk_rows):
        rows += y_np.shape[0]
        m = None
        if masks is not None:
            m = next(masks, None)
            if m is None or m.shape != y_np.shape:
                raise DataError(f"{mask}: mask shape differs from the data's (at row {rows})")
        yield y_np, m
    if masks is not None and next(masks, None) is not None:
        raise DataError(f"{mask}: mask has more rows than the data ({rows})")


def _check_denoise(
    noise: str,
    method: str,
    noise_std: float | None,
    n_steps: int,
    n_chains: int,
    step_size: float | None,
) -> None:
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


def _denoise_chunk(
    run_: Run,
    y_np: Any,
    observed: Any,
    noise: str,
    noise_std: float | None,
    method: str,
    n_steps: int,
    step_size: float | None,
    n_chains: int,
    g: torch.Generator,
) -> Tensor:
    """Restore one chunk of rows (see :func:`denoise_run`)."""
    import numpy as np

    energy = run_.energy
    for p in energy.parameters():
        p.requires_grad_(False)
    if isinstance(energy, NoiseConditionalImageEnergy) and method != "descent":
        return _restore_nc(
            run_, energy, y_np, observed, noise, noise_std, method, n_steps, n_chains, g
        )
    dim = energy.dim
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
        step = (run_.config.sampler.step_size or 0.01) if step_size is None else float(step_size)
    missing = ~obs
    event = energy.event_shape
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
    if run_.config.data.image is not None:
        result = result.clamp(-1.0, 1.0)
    if noise == "mask":
        result = torch.where(obs.cpu(), torch.as_tensor(y_np), result)
    return result


def _restore_nc(
    run_: Run,
    energy: NoiseConditionalImageEnergy,
    y_np: Any,
    observed: Any,
    noise: str,
    noise_std: float | None,
    method: str,
    n_steps: int,
    n_chains: int,
    g: torch.Generator,
) -> Tensor:
    """Restore one chunk of images with a noise-conditional energy (``ncsm`` runs)."""
    import numpy as np

    from .restore import restore_images

    dev = next(energy.parameters()).device
    dtype = next(energy.parameters()).dtype
    shape = (-1, *energy.event_shape)
    mean = run_.train.reshape(run_.train.shape[0], -1).mean(0).to(dtype)  # missing: start here
    obs = torch.as_tensor(observed)
    y = torch.where(obs, torch.as_tensor(np.nan_to_num(y_np), dtype=dtype), mean.expand(obs.shape))
    x = restore_images(
        energy,
        y.reshape(shape).to(dev),
        obs.reshape(shape).to(dev),
        noise_std=noise_std if noise == "gaussian" else None,
        method=method,
        n_steps=n_steps,
        n_chains=n_chains,
        generator=g,
    )
    result = x.reshape(obs.shape).double().cpu()
    if noise == "mask":
        result = torch.where(obs, torch.as_tensor(y_np, dtype=torch.float64), result)
    return result
