"""Log-likelihoods given log Z, and likelihood ratios that need no Z at all.

With ``p(x) = exp(-E(x)) / Z``:

.. math:: \\log p(x) = -E(x) - \\log Z, \\qquad
          \\log \\frac{p(x_a)}{p(x_b)} = E(x_b) - E(x_a).

The ratio is exact whatever ``Z`` is: when only relative likelihoods matter
(ranking, model-free comparisons of two inputs under one model), use
:func:`log_ratio` and skip estimating ``Z``.
"""

from __future__ import annotations

__all__ = ["log_likelihood", "log_ratio"]

import torch
from torch import Tensor

from .._types import EnergyFn
from .estimate import Estimate


def _energies(energy: EnergyFn, x: Tensor, batch_size: int) -> Tensor:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    shape = getattr(energy, "event_shape", None)
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(
            f"x must have shape (N, {', '.join(map(str, shape))}), got {tuple(x.shape)}"
        )
    with torch.no_grad():
        return torch.cat([energy(c).double() for c in x.split(batch_size)])


def log_likelihood(
    energy: EnergyFn,
    x: Tensor,
    log_z: Estimate | Tensor | float,
    *,
    batch_size: int = 65536,
) -> Tensor:
    """Normalized log density ``log p(x) = -E(x) - log Z`` per configuration.

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``; low energy = probable.
        x: Configurations, shape ``(N, *event_shape)``.
        log_z: The log normalizer: an :class:`Estimate` (its ``value``), a
            0-d tensor or a float.
        batch_size: Configurations per energy call.

    Returns:
        Log densities in nats, shape ``(N,)``, float64 (computed without
        gradients). The uncertainty of ``log Z`` shifts every entry alike.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> g = Gaussian.standard(2)
        >>> ll = log_likelihood(g, torch.zeros(3, 2), g.log_z)
        >>> round(float(ll[0]), 4)  # -log(2 pi)
        -1.8379
    """
    lz = float(log_z.value) if isinstance(log_z, Estimate) else float(log_z)
    return -_energies(energy, x, batch_size) - lz


def log_ratio(energy: EnergyFn, x_a: Tensor, x_b: Tensor, *, batch_size: int = 65536) -> Tensor:
    """``log p(x_a) / p(x_b) = E(x_b) - E(x_a)``, exact, with no partition function.

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``.
        x_a: Configurations, shape ``(N, *event_shape)`` (or ``(1, ...)`` to
            compare one configuration against every row of ``x_b``).
        x_b: Configurations, shape ``(N, *event_shape)`` or ``(1, ...)``.
        batch_size: Configurations per energy call.

    Returns:
        Log ratios in nats, shape ``(N,)``, float64: positive where ``x_a`` is
        more probable than ``x_b``.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> g = Gaussian.standard(1)
        >>> log_ratio(g, torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0]])).tolist()
        [0.5, 0.0]
    """
    na, nb = x_a.shape[0], x_b.shape[0]
    if na != nb and 1 not in (na, nb):
        raise ValueError(
            f"x_a and x_b must hold the same number of rows (or one row), got {na} and {nb}"
        )
    if tuple(x_a.shape[1:]) != tuple(x_b.shape[1:]):
        raise ValueError(
            f"x_a and x_b must share an event shape, got {tuple(x_a.shape)} and {tuple(x_b.shape)}"
        )
    return _energies(energy, x_b, batch_size) - _energies(energy, x_a, batch_size)
