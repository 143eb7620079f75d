"""Annealing schedules: inverse temperatures from 0 (base) to 1 (target).

``"linear"`` spaces them evenly; ``"sigmoid"`` (Wu et al. 2017) takes small
steps at both ends, where a broad base or a sharp target changes fastest;
``"adaptive"`` (see :mod:`ebmlab.partition.ais`) places them from a pilot run.

References:
    Wu, Y., Burda, Y., Salakhutdinov, R. & Grosse, R. (2017). On the
    quantitative analysis of decoder-based generative models. ICLR.
    https://arxiv.org/abs/1611.04273
"""

from __future__ import annotations

__all__ = ["SCHEDULES", "annealing_schedule", "check_betas", "interp"]

import torch
from torch import Tensor

#: Names of the built-in annealing schedules (the inverse temperatures from 0 to 1).
SCHEDULES = ("adaptive", "linear", "sigmoid")


def annealing_schedule(name: str, n_temperatures: int, *, sharpness: float = 4.0) -> Tensor:
    """Inverse temperatures ``0 = beta_0 < ... < beta_T = 1`` (float64, ``(T + 1,)``).

    Arguments:
        name: ``"linear"`` or ``"sigmoid"``: ``beta_t`` proportional to
            ``sigmoid(sharpness (2 t / T - 1))``, rescaled to run from 0 to 1
            (Wu et al. 2017): small steps at both ends.
        n_temperatures: ``T >= 1``.
        sharpness: Steepness of the sigmoid.

    Example:
        >>> annealing_schedule("linear", 4).tolist()
        [0.0, 0.25, 0.5, 0.75, 1.0]
        >>> b = annealing_schedule("sigmoid", 100)
        >>> float(b[1] - b[0]) < 0.01 < float(b[51] - b[50])
        True
    """
    if n_temperatures < 1:
        raise ValueError(f"n_temperatures must be >= 1, got {n_temperatures}")
    t = torch.linspace(0.0, 1.0, n_temperatures + 1, dtype=torch.float64)
    if name == "linear":
        return t
    if name == "sigmoid":
        s = torch.sigmoid(sharpness * (2.0 * t - 1.0))
        b = (s - s[0]) / (s[-1] - s[0])
        b[0], b[-1] = 0.0, 1.0
        return b
    raise ValueError(f"schedule must be one of {list(SCHEDULES)} or a tensor, got {name!r}")


def check_betas(betas: Tensor) -> Tensor:
    """An explicit annealing schedule, checked: 1-D float64 on the CPU, strictly increasing
    from 0.0 to 1.0.

    Raises:
        ValueError: The schedule does not start at 0, end at 1, or increase.

    Example:
        >>> check_betas(torch.tensor([0.0, 0.5, 1.0])).dtype
        torch.float64
    """
    b = torch.as_tensor(betas, dtype=torch.float64).flatten().cpu()
    if b.numel() < 2 or float(b[0]) != 0.0 or float(b[-1]) != 1.0:
        raise ValueError("an explicit schedule must start at 0.0 and end at 1.0")
    if bool((b.diff() <= 0).any()):
        raise ValueError("an explicit schedule must be strictly increasing")
    return b


def interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation (``numpy.interp``) for increasing ``xp``."""
    idx = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    y0, y1 = fp[idx - 1], fp[idx]
    w = ((x - x0) / (x1 - x0).clamp_min(1e-300)).clamp(0.0, 1.0)
    return y0 + w * (y1 - y0)
