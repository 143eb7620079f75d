"""Figures for run directories: samples, learned vs true density, training curves.

Matplotlib runs headless (Agg); every function writes one PNG and returns its
path.
"""

from __future__ import annotations

__all__ = ["plot_curves", "plot_density", "plot_samples"]

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import Tensor

from ._types import EnergyFn
from .partition.quadrature import grid_points


def _save(fig: plt.Figure, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp.png")
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, p)
    return p


def plot_samples(
    samples: Tensor,
    data: Tensor,
    path: str | os.PathLike[str],
    bounds: Sequence[tuple[float, float]] | None = None,
) -> Path:
    """Model samples beside data (2-D: scatter; otherwise the first two coordinates)."""
    s = samples.reshape(samples.shape[0], -1)[:, :2].double().cpu()
    d = data.reshape(data.shape[0], -1)[: s.shape[0], :2].double().cpu()  # same count
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), sharex=True, sharey=True)
    for ax, pts, title in ((axes[0], d, "data"), (axes[1], s, "model samples")):
        if pts.shape[1] == 1:
            ax.hist(pts[:, 0].numpy(), bins=80, density=True)
        else:
            ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), s=1.5, alpha=0.5)
            ax.set_aspect("equal")
        ax.set_title(title)
    if bounds is not None and len(bounds) >= 2:
        axes[0].set_xlim(*bounds[0])
        axes[0].set_ylim(*bounds[1])
    return _save(fig, path)


def plot_density(
    energy: EnergyFn,
    bounds: Sequence[tuple[float, float]],
    path: str | os.PathLike[str],
    true_log_prob: Callable[[Tensor], Tensor] | None = None,
    resolution: int = 200,
) -> Path:
    """Learned density ``exp(-E) / Z`` on a grid, beside the true one when known (1-2 D)."""
    d = len(bounds)
    if d not in (1, 2):
        raise ValueError(f"plot_density draws 1-D or 2-D energies, got dimension {d}")
    dtype = next((p.dtype for p in getattr(energy, "parameters", list)()), torch.float32)
    pts, axes_t = grid_points(bounds, resolution, dtype=dtype)
    with torch.no_grad():
        logp = -energy(pts).double()
    logp = logp - torch.logsumexp(logp, 0)
    panels = [("learned density", logp)]
    if true_log_prob is not None:
        with torch.no_grad():
            t = true_log_prob(pts.double()).double()
        panels.append(("true density", t - torch.logsumexp(t, 0)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 4.5), squeeze=False)
    for ax, (title, lp) in zip(axes[0], panels, strict=True):
        if d == 1:
            ax.plot(axes_t[0].numpy(), lp.exp().numpy())
        else:
            img = lp.exp().reshape(resolution, resolution).T.numpy()
            ax.imshow(img, origin="lower", extent=(*bounds[0], *bounds[1]), cmap="viridis")
        ax.set_title(title)
    return _save(fig, path)


def plot_curves(metrics_csv: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Training curves from ``metrics.csv``: loss, energies, gap, acceptance, gradient norm."""
    with open(metrics_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    step = [float(r["step"]) for r in rows]
    keys = [
        ("loss", "loss"),
        ("energy", ("energy_pos", "energy_neg")),
        ("energy_gap", "energy_gap"),
        ("acceptance_rate", "acceptance_rate"),
        ("grad_norm", "grad_norm"),
        ("lr", "lr"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, (title, cols) in zip(axes.ravel(), keys, strict=True):
        for c in (cols,) if isinstance(cols, str) else cols:
            ax.plot(step, [float(r[c]) for r in rows], label=c)
        ax.set_title(title)
        ax.set_xlabel("step")
        if not isinstance(cols, str):
            ax.legend()
    fig.tight_layout()
    return _save(fig, path)
