"""Restoring corrupted rows and images with a trained run's energy (``ebmlab denoise``).

:func:`denoise_run` (and its streaming form :func:`iter_denoise_run`) restores
rows with Gaussian noise or missing entries: MAP descent or posterior-mean
Langevin on the posterior energy, or, on image runs trained with ``ncsm``,
:func:`ebmlab.runs.restore.restore_images` (Tweedie's formula, annealed chains,
or energy-weighted completions taken from the run's training images).
Low energy = probable.
"""

from __future__ import annotations

__all__ = ["DENOISE_METHODS", "DENOISE_NOISES", "denoise_run", "iter_denoise_run"]

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.loaders import _NPLOAD_ERRORS, CHUNK_ROWS, iter_array_chunks
from ..energies import NoiseConditionalImageEnergy
from ..energies.base import energy_and_grad
from ..errors import ConfigError, DataError
from .build import Run, load_run, run_generator

#: ``ebmlab denoise`` noise models and restoration methods.
DENOISE_NOISES = ("gaussian", "mask")
#: Restorations of ``ebmlab denoise`` (:func:`denoise_run`): ``auto`` (on ``ncsm`` runs
#: ``exemplar`` for images with a large hole, else ``langevin``; ``descent`` on other runs),
#: MAP by gradient descent, the posterior mean of Langevin chains, Tweedie's posterior mean
#: (``ncsm`` runs), or energy-weighted training exemplars (``ncsm`` runs).
DENOISE_METHODS = ("auto", "descent", "langevin", "tweedie", "exemplar")
#: Defaults of ``method="exemplar"`` (chosen on validation images of mnist5k, lower half
#: missing; docs/benchmarks.md, "Image restoration (mnist5k)").
EXEMPLAR_DEFAULTS = {
    "n_candidates": 20,
    "temperature": 20.0,
    "energy_sigma": 0.4,
    "distance_scale": 3.0,
}


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
    exemplar: Mapping[str, Any] | None = None,
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
    the smallest trained level. ``"exemplar"`` (``ncsm`` image runs) fills
    missing pixels from the run's **training images**: the
    ``n_candidates`` nearest on the observed pixels, each pasted next to the
    observed pixels and weighted by the energy (the composite's energy minus
    its exemplar's at level ``energy_sigma``, divided by ``temperature``) and
    by a Gaussian kernel of scale ``distance_scale`` on the observed pixels;
    the result is their weighted mean (importance sampling over a candidate
    set: :func:`ebmlab.runs.restore.restore_from_exemplars`). It needs the
    run's training data (rebuilt from its config). ``"auto"`` on ``ncsm``
    runs uses ``"exemplar"`` for each image with a hole (a fully missing
    square of side a quarter of the image's, 7 pixels on 28x28) and
    ``"langevin"`` for the others. Restored pixels of
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
        exemplar: Settings of ``"exemplar"`` overriding ``EXEMPLAR_DEFAULTS``
            (``n_candidates``, ``temperature`` (``None``: no energy weights,
            the kernel average of the candidates), ``energy_sigma``,
            ``distance_scale``, ``refine_steps``, ``refine_sigma``).

    Returns:
        Restored rows, shape ``(N, D)``, float64 on the CPU.

    Raises:
        ConfigError: For an unknown noise/method or a missing/invalid parameter.
        DataError: For a malformed data or mask file.
    """
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
                exemplar=exemplar,
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
    exemplar: Mapping[str, Any] | None = None,
) -> Iterator[Tensor]:
    """:func:`denoise_run` in constant memory: restored rows, ``chunk_rows`` at a time.

    Rows are restored independently, so the chunks of ``"descent"`` equal the
    one-shot result; ``"langevin"`` draws its noise from one generator in row
    order, so its result depends on ``chunk_rows`` (statistically equivalent).
    """
    import numpy as np

    _check_denoise(noise, method, noise_std, n_steps, n_chains, step_size)
    ex_opts = _exemplar_options(exemplar)
    run_ = load_run(out, device=device)
    is_nc = isinstance(run_.energy, NoiseConditionalImageEnergy)
    if method == "auto" and not is_nc:
        method = "descent"
    elif method in ("tweedie", "exemplar") and not is_nc:
        raise ConfigError(
            f"method {method!r} needs an image run trained with objective 'ncsm' "
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
            run_,
            y_np,
            observed,
            noise,
            noise_std,
            method,
            n_steps,
            step_size,
            n_chains,
            g,
            ex_opts,
        )
    if noise == "mask" and mask is None and not any_missing:
        raise ConfigError(
            "nothing to restore: no NaN entries in the data and no --mask FILE "
            "(for Gaussian noise give --noise-std)"
        )


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
    ex_opts: dict[str, Any],
) -> Tensor:
    """Restore one chunk of rows (see :func:`denoise_run`)."""
    import numpy as np

    energy = run_.energy
    for p in energy.parameters():
        p.requires_grad_(False)
    if isinstance(energy, NoiseConditionalImageEnergy) and method != "descent":
        return _restore_nc(
            run_, energy, y_np, observed, noise, noise_std, method, n_steps, n_chains, g, ex_opts
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


def _exemplar_options(exemplar: Mapping[str, Any] | None) -> dict[str, Any]:
    """``EXEMPLAR_DEFAULTS`` updated by ``exemplar``, checked; keyword arguments of
    :func:`ebmlab.runs.restore.restore_from_exemplars`."""
    opts: dict[str, Any] = dict(EXEMPLAR_DEFAULTS)
    known = (*EXEMPLAR_DEFAULTS, "refine_steps", "refine_sigma")
    for key, value in (exemplar or {}).items():
        if key not in known:
            raise ConfigError(f"exemplar settings are {list(known)}, got {key!r}")
        opts[key] = value
    t = opts["temperature"]
    if t is not None and math.isinf(float(t)):
        opts["temperature"] = None  # an infinite temperature: no energy weights
    for key in ("energy_sigma", "distance_scale", "temperature", "refine_sigma"):
        v = opts.get(key)
        if v is not None and not float(v) > 0:
            raise ConfigError(f"exemplar {key} must be > 0, got {v}")
    if int(opts["n_candidates"]) < 1:
        raise ConfigError(f"exemplar n_candidates must be >= 1, got {opts['n_candidates']}")
    if int(opts.get("refine_steps", 0)) < 0:
        raise ConfigError(f"exemplar refine_steps must be >= 0, got {opts['refine_steps']}")
    opts["sigma"] = float(opts.pop("energy_sigma"))
    return opts


def _has_hole(observed: Tensor) -> Tensor:
    """Per image ``(N, C, H, W) -> (N,)``: True when a square of side a quarter of the
    image's (at least 2) is missing in every channel."""
    side = max(2, min(observed.shape[-2:]) // 4)
    seen = observed.any(1, keepdim=True).to(torch.float32)
    seen = torch.nn.functional.max_pool2d(seen, side, stride=1)  # 0 where the square is empty
    return (seen == 0).flatten(1).any(1)


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
    ex_opts: dict[str, Any],
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
    y_img, obs_img = y.reshape(shape).to(dev), obs.reshape(shape).to(dev)
    if method == "auto":  # exemplars for images with a large hole, chains for the others
        hole = _has_hole(obs_img)
        groups = [(hole, "exemplar"), (~hole, "langevin")]
    else:
        groups = [(torch.ones(obs_img.shape[0], dtype=torch.bool, device=dev), method)]
    x = torch.empty_like(y_img)
    for rows, how in groups:
        if not bool(rows.any()):
            continue
        x[rows] = restore_images(
            energy,
            y_img[rows],
            obs_img[rows],
            noise_std=noise_std if noise == "gaussian" else None,
            method=how,
            n_steps=n_steps,
            n_chains=n_chains,
            generator=g,
            exemplars=run_.train.to(device=dev, dtype=dtype) if how == "exemplar" else None,
            exemplar_options=ex_opts,
        )
    result = x.reshape(obs.shape).double().cpu()
    if noise == "mask":
        result = torch.where(obs, torch.as_tensor(y_np, dtype=torch.float64), result)
    return result
