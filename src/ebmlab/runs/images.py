"""Image runs: the image recipe's defaults, data split, energy, figures and report.

``ebmlab train --data SOURCE`` with an image source (see
:mod:`ebmlab.data.images`) builds its config with :func:`image_run_config`:
a :class:`~ebmlab.energies.ConvEnergy` trained by persistent contrastive
divergence through :func:`ebmlab.train.fit`, with SGLD negatives from a
replay buffer. The defaults (chosen by the runs in docs/images.md) are:

==========================  =============================================
sampler                     Langevin, step 10, noise 0.005, per-pixel
                            gradient clamp 0.03, pixels clamped to [-1, 1]
objective                   ``pcd``, 20 steps, buffer 8,192, 5% restarts
                            from uniform noise, energy penalty 0.1, data
                            noise 0.005
train                       batch 128, Adam 2e-4 betas (0, 0.999),
                            constant rate, 1,000 updates
==========================  =============================================

The run directory gets ``samples.png`` (buffer samples beside fresh chains
from noise), ``chains.gif`` (chains descending from noise) and a
``report.json`` with FID/KID in classifier features
(`ebmlab.sample_quality`) and, for 8x8 images, the dequantized test
log-likelihood by AIS with a BDMC bracket.
"""

from __future__ import annotations

__all__ = [
    "build_image_energy",
    "image_grid",
    "image_run_config",
    "load_image_data",
    "load_image_rows",
    "scaling_of",
    "write_chains_gif",
    "write_image_samples",
]

import copy
import dataclasses
import io
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import ImageScalingConfig, RunConfig
from ..data.images import ImageScaling, load_images, stratified_split
from ..energies import ConvEnergy, Energy, NoiseConditionalImageEnergy, ResNetEnergy
from ..errors import ConfigError


def image_run_config(source: str, objective: str = "pcd") -> RunConfig:
    """The default config of an image run on ``source`` (see the module doc).

    ``objective="ncsm"`` gives the restoration recipe instead (what ``ebmlab
    denoise`` works best with): the same network reading ``log sigma`` as one
    more input channel (:class:`~ebmlab.energies.NoiseConditionalImageEnergy`),
    trained by noise-conditional denoising score matching with ``sigma`` from
    0.01 to 1.0 on ``[-1, 1]`` and a smoothed Gaussian reference of scale
    ``sigma_data`` 0.5; Adam 1e-3 with a cosine decay, batch 128, 4,000
    updates. Other objective names only set ``objective.name``.
    """
    cfg = RunConfig()
    name = source.split(":", 1)[1] if source.startswith("builtin:") else Path(source).stem
    cfg.name = name or "images"
    cfg.data.file = source
    cfg.data.toy = None
    cfg.model.type = "conv"
    cfg.model.channels = [16, 32, 64, 64]
    cfg.model.hidden = [64]
    cfg.model.base_scale = None
    s = cfg.sampler
    s.method, s.step_size, s.noise_scale = "langevin", 10.0, 0.005
    s.grad_clamp, s.clamp = 0.03, (-1.0, 1.0)
    o = cfg.objective
    o.name, o.n_steps, o.alpha, o.n_chains = "pcd", 20, 0.1, 8192
    o.reinit_prob, o.restart, o.data_noise = 0.05, "uniform", 0.005
    t = cfg.train
    t.steps, t.batch_size, t.lr, t.betas = 1000, 128, 2e-4, (0.0, 0.999)
    t.lr_schedule, t.warmup_steps, t.checkpoint_every = "constant", 0, 250
    e = cfg.evaluate
    e.n_samples, e.sample_steps, e.mmd_samples = 1000, 60, 1000
    e.log_z_method, e.ais_chains, e.ais_temperatures = "bdmc", 256, 1000
    if source == "builtin:digits":
        # 8x8 digits: a smaller network, a Gaussian reference term so that
        # exp(-E) is integrable (AIS log-likelihood), and data noise the width
        # of one grey level (0.125 on [-1, 1]) so the model sees dequantized data.
        cfg.model.channels = [32, 64]
        cfg.model.base_scale = 2.0
        o.data_noise = 0.04
    o.name = objective  # type: ignore[assignment]  # validated by the config
    if objective == "ncsm":
        o.sigma_min, o.sigma_max, o.sigma_data = 0.01, 1.0, 0.5
        t.steps, t.lr, t.betas, t.lr_schedule = 4000, 1e-3, (0.9, 0.999), "cosine"
    return cfg


def scaling_of(cfg: RunConfig) -> ImageScaling | None:
    """The recorded pixel scaling of an image run (``None`` for other runs)."""
    im = cfg.data.image
    return None if im is None else ImageScaling.from_dict(im.model_dump(exclude={"shape"}))


def _split(
    cfg: RunConfig, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    assert cfg.data.file is not None
    data = load_images(cfg.data.file, dtype=dtype, scaling=scaling_of(cfg))
    if cfg.data.image is None:
        cfg.data.image = ImageScalingConfig(**data.scaling.to_dict(), shape=list(data.x.shape[1:]))
    if data.x.shape[0] < 2:
        raise ConfigError(f"{cfg.data.file}: need at least 2 images to split train/test")
    tr, te = stratified_split(data.x.shape[0], data.y, cfg.data.test_fraction, cfg.seed)
    y = data.y
    return data.x[tr], data.x[te], None if y is None else y[tr], None if y is None else y[te]


def load_image_data(cfg: RunConfig, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Training and held-out images ``(N, C, H, W)`` in ``[-1, 1]`` (stratified by
    label when there are labels); records the scaling in ``cfg.data.image``."""
    train, test, _, _ = _split(cfg, dtype)
    return train, test


def build_image_energy(cfg: RunConfig, event_shape: tuple[int, ...]) -> Energy:
    """The ``conv`` or ``resnet`` energy of ``cfg`` (float32; the caller seeds and casts)."""
    m = cfg.model
    if len(event_shape) != 3:
        raise ConfigError(
            f"model.type {m.type!r} needs images (C, H, W), got data of shape {event_shape}"
        )
    o = cfg.objective
    if o.name == "ncsm":  # the noise level is one more input channel
        c, h, w = event_shape
        net = build_image_energy(
            cfg.model_copy(update={"objective": o.model_copy(update={"name": "pcd"})}),
            (c + 1, h, w),
        )
        return NoiseConditionalImageEnergy(net, o.sigma_min, o.sigma_max, o.sigma_data)
    try:
        if m.type == "conv":
            return ConvEnergy(
                event_shape,
                m.channels,
                hidden=m.hidden[0] if m.hidden else 64,
                activation=m.activation,
                spectral_norm=m.spectral_norm,
                base_scale=m.base_scale,
            )
        return ResNetEnergy(
            event_shape,
            m.channels,
            depth=m.depth,
            activation=m.activation,
            spectral_norm=m.spectral_norm,
            base_scale=m.base_scale,
        )
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from None


def load_image_rows(
    cfg: RunConfig, event_shape: tuple[int, ...], path: str | os.PathLike[str]
) -> Tensor:
    """Images of a file under an image run's scaling, as float64 rows ``(N, D)``
    in ``[-1, 1]`` (NaN pixels kept: missing values for ``denoise``)."""
    scaling = scaling_of(cfg)
    data = load_images(
        path, dtype=torch.float64, scaling=scaling, event_shape=event_shape, allow_nan=True
    )
    return data.x.reshape(data.x.shape[0], -1)


# ------------------------------------------------------------------ figures


def image_grid(x: Tensor, n_cols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images ``(N, C, H, W)`` in ``[-1, 1]`` into one uint8 picture
    ``(rows * (H + pad) + pad, cols * (W + pad) + pad[, 3])``."""
    x = x.detach().float().cpu().clamp(-1, 1)
    n, c, h, w = x.shape
    cols = n_cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    img = ((x + 1) * 127.5).round().to(torch.uint8).numpy()
    ch = 1 if c == 1 else 3
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, ch), 128, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        tile = img[i, :ch].transpose(1, 2, 0) if c >= 3 else img[i, :1].transpose(1, 2, 0)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) :][:, :w] = tile
    return grid[..., 0] if ch == 1 else grid


def _upscale(grid: np.ndarray, min_side: int = 256) -> Any:
    from PIL import Image

    im = Image.fromarray(grid)
    k = max(1, min_side // max(1, min(grid.shape[:2])))
    return im.resize((im.width * k, im.height * k), Image.Resampling.NEAREST) if k > 1 else im


def _atomic_image(path: Path, save: Any) -> Path:
    from ..train import atomic_write_bytes

    buf = io.BytesIO()
    save(buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_image_samples(
    x: Tensor, path: str | os.PathLike[str], scaling: ImageScaling | None
) -> str:
    """Write samples ``(N, C, H, W)`` (in ``[-1, 1]``): ``.png`` as a grid,
    ``.npy`` as an array in the data's range, dtype and layout.

    Returns:
        A one-line description of what was written.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".png":
        grid = _upscale(image_grid(x))
        _atomic_image(p, lambda fh: grid.save(fh, format="PNG"))
        return f"grid of {x.shape[0]} samples written to {p}"
    if suffix == ".npy":
        arr = scaling.to_numpy(x) if scaling is not None else x.detach().cpu().numpy()
        _atomic_image(p, lambda fh: np.save(fh, arr))
        return f"{arr.shape[0]} samples of shape {arr.shape[1:]} ({arr.dtype}) written to {p}"
    raise ConfigError(f"{p}: output must end in .png (a grid) or .npy (an array)")


def write_chains_gif(frames: list[Tensor], path: str | os.PathLike[str]) -> Path:
    """An animated GIF of chain states: ``frames[t]`` is ``(n, C, H, W)``."""
    ims = [_upscale(image_grid(f), 128).convert("P") for f in frames]

    def save(fh: Any) -> None:
        ims[0].save(fh, format="GIF", save_all=True, append_images=ims[1:], duration=120, loop=0)

    return _atomic_image(Path(path), save)


def _samples_png(buffer: Tensor, fresh: Tensor, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
    for ax, x, title in (
        (axes[0], buffer, "replay-buffer chains"),
        (axes[1], fresh, "fresh chains from noise"),
    ):
        grid = image_grid(x)
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(title)
        ax.axis("off")
    from ..plotting import _save

    return _save(fig, path)


# ------------------------------------------------------------------ evaluation


def _fresh_chains(
    run_: Any, n: int, n_steps: int, generator: torch.Generator, n_frames: int = 0
) -> tuple[Tensor, list[Tensor]]:
    """``n`` chains from uniform noise, ``n_steps`` steps; first ``n_frames`` chains recorded."""
    from ..samplers import build_sampler

    cfg = run_.config
    energy = run_.energy
    p = next(energy.parameters())
    sampler = build_sampler(cfg.sampler.base_method, **cfg.sampler.hyperparameters())
    x0 = torch.rand((n, *energy.event_shape), generator=generator, device=p.device, dtype=p.dtype)
    state = sampler.init(2 * x0 - 1, energy)
    frames = [state.x[:n_frames].cpu()] if n_frames else []
    every = max(1, n_steps // 20)
    for t in range(n_steps):
        state, _ = sampler.step(state, energy, generator=generator)
        if n_frames and ((t + 1) % every == 0 or t + 1 == n_steps):
            frames.append(state.x[:n_frames].cpu())
    return state.x.detach(), frames


def _labels(cfg: RunConfig) -> tuple[Tensor | None, Tensor | None]:
    _, _, y_tr, y_te = _split(cfg, torch.float32)
    return y_tr, y_te


class _Flat(Energy):
    """An image energy seen on flat vectors ``(N, D)`` (so that a flat base fits it)."""

    def __init__(self, energy: Energy) -> None:
        super().__init__((math.prod(energy.event_shape),))
        self.energy = energy
        self.image_shape = tuple(energy.event_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x.reshape(-1, *self.image_shape))


class _BoxWarped(Energy):
    """``exp(-E)`` on the box ``[-b, b]^D`` seen through ``x = b tanh(y)``.

    ``E_y(y) = E(b tanh y) - sum_i log(b (1 - tanh^2 y_i))``, so that
    ``integral exp(-E_y) dy = integral over the box of exp(-E) dx``: the box's
    normalizer, computed by annealing in unconstrained coordinates ``y``.
    """

    def __init__(self, energy: Energy, bound: float) -> None:
        super().__init__((math.prod(energy.event_shape),))
        self.energy = energy
        self.image_shape = tuple(energy.event_shape)
        self.bound = float(bound)

    def forward(self, y: Tensor) -> Tensor:
        # log(1 - tanh^2 y) = 2 (log 2 - y - softplus(-2 y)), stable for large |y|.
        log_jac = 2.0 * (math.log(2.0) - y - torch.nn.functional.softplus(-2.0 * y))
        x = self.bound * torch.tanh(y)
        e = self.energy(x.reshape(-1, *self.image_shape))
        return e - log_jac.sum(1) - y.shape[1] * math.log(self.bound)


class _Whitened(Energy):
    """A flat energy seen through ``x = mean + L u`` (``Z_x = Z_u |det L|``)."""

    def __init__(self, energy: Energy, mean: Tensor, factor: Tensor) -> None:
        super().__init__(tuple(energy.event_shape))
        self.energy = energy
        self.register_buffer("mean", mean)
        self.register_buffer("factor", factor)

    def forward(self, u: Tensor) -> Tensor:
        mean, factor = self.get_buffer("mean"), self.get_buffer("factor")
        return self.energy(mean + u @ factor.T)


def _whiten(energy: Energy, base: Any) -> tuple[Energy, Any, float]:
    """Anneal in the coordinates that whiten a Gaussian-mixture ``base``: HMC with
    a unit mass matrix then moves every direction at one scale. Returns the
    whitened energy, the whitened base and ``log |det L|`` (added to ``log Z``)."""
    from ..energies import GaussianMixture

    w, mu = base.log_weights.double().exp(), base.means.double()
    cov = base.covariances.double().expand(mu.shape[0], mu.shape[1], mu.shape[1])
    m = (w[:, None] * mu).sum(0)
    dev = mu - m
    total = (w[:, None, None] * (cov + dev[:, :, None] * dev[:, None, :])).sum(0)
    factor = torch.linalg.cholesky(0.5 * (total + total.T))
    inv = torch.linalg.solve_triangular(factor, torch.eye(factor.shape[0]).double(), upper=False)
    base_u = GaussianMixture(w, dev @ inv.T, inv @ cov @ inv.T)
    log_det = float(torch.log(torch.diagonal(factor)).sum())
    return _Whitened(energy, m, factor), base_u, log_det


def _box_coordinates(x: Tensor, bound: float) -> Tensor:
    """``y = atanh(x / b)``, flat ``(N, D)``, of images ``x`` ``(N, C, H, W)`` in ``[-b, b]``."""
    u = (x.reshape(x.shape[0], -1) / bound).clamp(-1.0 + 1e-12, 1.0 - 1e-12)
    return torch.atanh(u)


def _fit_base(train: Tensor, bound: float | None, n_components: int = 5, seed: int = 0) -> Any:
    """A Gaussian mixture (full covariances, EM) fitted to flat training images,
    in the box coordinates ``y = atanh(x / b)`` unless ``bound`` is ``None``: the
    AIS base of :func:`dequantized_log_likelihood` (exact samples, ``log_z = 0``)."""
    from sklearn.mixture import GaussianMixture as _SkGMM

    from ..energies import GaussianMixture

    x = train.double().cpu()
    y = (x.reshape(x.shape[0], -1) if bound is None else _box_coordinates(x, bound)).numpy()
    k = max(1, min(int(n_components), y.shape[0] // 2))
    gm = _SkGMM(k, covariance_type="full", reg_covar=1e-3, random_state=seed).fit(y)

    def t(a: Any) -> Tensor:
        return torch.as_tensor(a, dtype=torch.float64)

    return GaussianMixture(t(gm.weights_), t(gm.means_), t(gm.covariances_))


def _shifted(est: Any, shift: float) -> Any:
    """An :class:`~ebmlab.partition.Estimate` of ``log Z + shift``."""
    if shift == 0.0:
        return est
    return dataclasses.replace(
        est, value=est.value + shift, lower=est.lower + shift, upper=est.upper + shift
    )


def dequantized_log_likelihood(
    energy: Energy,
    test: Tensor,
    scaling: ImageScaling,
    cfg: RunConfig,
    seed: int,
    *,
    train: Tensor | None = None,
    base: Any = None,
    box: bool = True,
    n_transitions: int = 1,
    dequantized: Tensor | None = None,
) -> dict[str, Any]:
    """Test log-likelihood of integer-valued images, dequantized, by AIS with a
    BDMC bracket: nats per image and bits per dimension.

    Each pixel level ``v`` becomes ``v + u``, ``u ~ U(0, 1)`` (centred on the
    grid point), so the density is per unit of one level:
    ``log p(v + u) = log p_x(x) + D log(dx / dv)`` with ``dx / dv = 2 / (high - low)``.

    With ``box`` (the default), the model is ``exp(-E)`` restricted to the
    dequantized pixel box ``[-b, b]^D``, ``b = 1 + dx / 2`` (where the data
    are, and where the image samplers keep their chains: they clamp pixels),
    normalized over that box: ``log p_x(x) = -E(x) - log Z_box``. ``Z_box`` is
    annealed in the coordinates ``y = atanh(x / b)`` (:class:`_BoxWarped`).
    Without ``box``, ``Z`` is the integral over all of ``R^D`` (an energy
    whose ``exp(-E)`` is integrable there). AIS starts from ``base``: by
    default a Gaussian mixture fitted to the dequantized ``train`` images in
    the annealing coordinates (:func:`_fit_base`), else to the test images.

    Arguments:
        energy: The image energy ``(N, C, H, W) -> (N,)``.
        test: Test images in ``[-1, 1]``, ``(N, C, H, W)``.
        scaling: The run's pixel scaling (its ``high - low`` is the number of levels - 1).
        cfg: The run's config (``evaluate.ais_chains``, ``evaluate.ais_temperatures``).
        seed: Seed of the dequantization noise and of AIS.
        train: Training images for the base (``None``: the test images).
        base: An AIS base over the flat annealing coordinates, with exact
            ``log_z`` and ``sample`` (overrides ``train``).
        box: Normalize over the dequantized pixel box (else over ``R^D``).
        n_transitions: HMC transitions per temperature.
        dequantized: The dequantized test images, when the caller drew them
            (e.g. to share one draw between models); ``test`` is then unused.

    Returns:
        ``ll_nats_per_image`` (midpoint), its bracket ``ll_nats_per_image_lower``
        / ``_upper`` and ``ll_bracket_width``, ``bits_per_dim`` (and bracket),
        ``ll_log_z`` (the BDMC estimate of ``log Z_box``), ``ll_box`` and timings.
    """
    from ..partition import log_z as partition_log_z

    ev = cfg.evaluate
    g = torch.Generator().manual_seed(seed)
    e64 = copy.deepcopy(energy).double().cpu().eval()
    for q in e64.parameters():
        q.requires_grad_(False)
    level = 2.0 / (scaling.high - scaling.low)
    bound = 1.0 + level / 2.0
    x = test.double().cpu()
    x_deq = x + level * (torch.rand(x.shape, generator=g, dtype=torch.float64) - 0.5)
    if dequantized is not None:
        x_deq = dequantized.double().cpu().reshape(x_deq.shape)
    t0 = time.perf_counter()
    if base is None:
        fit_to = x_deq if train is None else train.double().cpu()
        if train is not None:
            gt = torch.Generator().manual_seed(seed + 1)
            fit_to = fit_to + level * (
                torch.rand(fit_to.shape, generator=gt, dtype=torch.float64) - 0.5
            )
        base = _fit_base(fit_to, bound if box else None, seed=seed)
    target: Energy = _BoxWarped(e64, bound) if box else _Flat(e64)
    log_det = 0.0
    if all(hasattr(base, k) for k in ("log_weights", "means", "covariances")):
        target, base, log_det = _whiten(target, base)
    est = partition_log_z(
        target,
        "bdmc",
        base=base,
        generator=g,
        n_chains=ev.ais_chains,
        n_temperatures=ev.ais_temperatures,
        n_transitions=n_transitions,
    )
    est = _shifted(est, log_det)
    d = x.shape[1] * x.shape[2] * x.shape[3]
    jac = d * math.log(level)
    with torch.no_grad():
        e = e64(x_deq)
    mean_e = float(e.mean())
    ll = -e - est.value
    out: dict[str, Any] = {
        "ll_nats_per_image": float(ll.mean()) + jac,
        "ll_nats_per_image_lower": -mean_e - est.upper + jac,
        "ll_nats_per_image_upper": -mean_e - est.lower + jac,
        "ll_stderr_over_images": float(ll.std() / math.sqrt(ll.numel())),
        "ll_bracket_width": est.upper - est.lower,
        "ll_log_z": est.to_dict(),
        "ll_box": [-bound, bound] if box else None,
        "ll_samples_exact": est.details.get("samples_exact"),
        "ll_seconds": time.perf_counter() - t0,
        "ll_dequantization": f"uniform over one level of {scaling.high - scaling.low:g}+1",
        "ll_n_test": int(x.shape[0]),
    }
    out["bits_per_dim"] = -out["ll_nats_per_image"] / (d * math.log(2.0))
    out["bits_per_dim_lower"] = -out["ll_nats_per_image_upper"] / (d * math.log(2.0))
    out["bits_per_dim_upper"] = -out["ll_nats_per_image_lower"] / (d * math.log(2.0))
    return out
