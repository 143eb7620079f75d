"""Figures for run directories: samples, learned vs true density, training curves,
reliability diagrams of classifiers.

Matplotlib runs headless (Agg); every function writes one PNG and returns its
path.
"""

from __future__ import annotations

__all__ = ["plot_curves", "plot_density", "plot_reliability", "plot_samples"]

import csv
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

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


def plot_reliability(
    probas: Mapping[str, Any] | Any,
    y: Any,
    path: str | os.PathLike[str],
    n_bins: int = 15,
) -> Path:
    """Reliability diagram: accuracy against confidence per confidence bin, and how many rows.

    The rows are binned by confidence ``max_k proba[i, k]`` into ``n_bins``
    equal-width bins (the bins of
    :func:`ebmlab.estimators.classifier.expected_calibration_error`). Left: each
    bin's accuracy against its mean confidence ``c``, with bars of two binomial
    standard errors ``2 sqrt(c (1 - c) / n_bin)``: how far the accuracy of a
    *calibrated* bin of that size strays from the diagonal by chance. Right: the
    rows per bin (log scale).

    Arguments:
        probas: Class probabilities ``(n_samples, n_classes)``, or a mapping from a
            model's name (the legend) to its probabilities on the same rows.
        y: True class indices (columns of the probabilities), shape ``(n_samples,)``.
        path: PNG to write.
        n_bins: Confidence bins.

    Returns:
        ``path``.

    Example:
        >>> import tempfile
        >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_reliability({"model": p}, [0, 1, 1], f"{d}/r.png").name
        'r.png'
    """
    given = dict(probas) if isinstance(probas, Mapping) else {"model": probas}
    models = {name: np.asarray(p, dtype=np.float64) for name, p in given.items()}
    yy = np.asarray(y).reshape(-1)
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    for name, p in models.items():
        if p.ndim != 2 or p.shape[0] != yy.shape[0]:
            raise ValueError(
                f"probabilities of {name!r} must be (n_samples, n_classes) matching y "
                f"{yy.shape}, got {p.shape}"
            )
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    fig, (ax, ax_n) = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for k, (name, p) in enumerate(models.items()):
        conf, correct = p.max(1), p.argmax(1) == yy
        which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, int(n_bins) - 1)
        n = np.bincount(which, minlength=int(n_bins))
        full = n > 0
        c = np.bincount(which, conf, int(n_bins))[full] / n[full]
        acc = np.bincount(which, correct.astype(np.float64), int(n_bins))[full] / n[full]
        se = 2 * np.sqrt(c * (1 - c) / n[full])
        shift = (k - (len(models) - 1) / 2) * 0.006  # keep the bars of several models apart
        lo, hi = np.minimum(se, acc), np.minimum(se, 1 - acc)  # bars cut to [0, 1]
        ax.errorbar(c + shift, acc, yerr=(lo, hi), marker="o", ms=4, capsize=2, lw=1, label=name)
        ax_n.bar(
            edges[:-1] + (k + 0.5) * (edges[1] - edges[0]) / (len(models) + 0.5),
            n,
            width=(edges[1] - edges[0]) / (len(models) + 0.5),
            align="edge",
            label=name,
        )
    ax.set(xlim=(0, 1.02), ylim=(-0.02, 1.02))
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability (bars: 2 SE of a calibrated bin)")
    ax.legend(loc="upper left", fontsize=8)
    ax_n.set_yscale("log")
    ax_n.set_xlabel("confidence")
    ax_n.set_ylabel("rows per bin")
    fig.tight_layout()
    return _save(fig, path)
