"""Exact sums over binary states, shared by the Boltzmann machines.

:func:`enumerate_binary` lists binary configurations; ``_enumerate_log_sum_exp``
streams ``log sum_x exp(-E(x))`` over all of them in chunks (the exact
``log Z`` of an RBM's smaller layer or of a small fully visible Boltzmann
machine, up to :data:`MAX_ENUMERATION_UNITS` units).
"""

from __future__ import annotations

__all__ = ["MAX_ENUMERATION_UNITS", "enumerate_binary"]

import math
from collections.abc import Callable

import torch
from torch import Tensor

#: Largest layer that :meth:`RBM.exact_log_z` enumerates (``2**26`` states).
MAX_ENUMERATION_UNITS = 26


def enumerate_binary(
    n_units: int,
    start: int = 0,
    stop: int | None = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Binary configurations number ``start .. stop - 1`` of ``n_units`` units.

    State ``i`` holds the bits of ``i``, the first unit most significant.

    Arguments:
        n_units: Number of binary units (at most 62).
        start: First state index.
        stop: One past the last (default ``2 ** n_units``).
        dtype: Floating dtype of the result.
        device: Device of the result.

    Returns:
        States in {0, 1}, shape ``(stop - start, n_units)``.

    Example:
        >>> enumerate_binary(2)
        tensor([[0., 0.],
                [0., 1.],
                [1., 0.],
                [1., 1.]])
    """
    if not 0 <= n_units <= 62:
        raise ValueError(f"n_units must be in [0, 62], got {n_units}")
    stop = 2**n_units if stop is None else stop
    if not 0 <= start <= stop <= 2**n_units:
        raise ValueError(f"need 0 <= start <= stop <= {2**n_units}, got {start}, {stop}")
    idx = torch.arange(start, stop, device=device, dtype=torch.int64)
    shifts = torch.arange(n_units - 1, -1, -1, device=device, dtype=torch.int64)
    return ((idx[:, None] >> shifts) & 1).to(dtype or torch.get_default_dtype())


def _enumerate_log_sum_exp(
    energy_fn: Callable[[Tensor], Tensor],
    n_units: int,
    *,
    dtype: torch.dtype,
    device: torch.device | str | None,
    chunk_size: int = 2**16,
    values: tuple[float, float] = (0.0, 1.0),
) -> float:
    """``log sum_x exp(-energy_fn(x))`` over all binary ``x``, streamed in chunks.

    ``values`` maps the bits 0 and 1 (``(-1, 1)`` for spins).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    total = 2**n_units
    running = torch.tensor(-math.inf, dtype=torch.float64, device=device)
    lo, hi = values
    with torch.no_grad():
        for start in range(0, total, chunk_size):
            states = enumerate_binary(
                n_units, start, min(total, start + chunk_size), dtype=dtype, device=device
            )
            if (lo, hi) != (0.0, 1.0):
                states = lo + (hi - lo) * states
            running = torch.logaddexp(running, torch.logsumexp(-energy_fn(states).double(), 0))
    value = float(running)
    if not math.isfinite(value):
        raise ValueError(f"log Z by enumeration is {value}: the energy returned non-finite values")
    return value


def _gdev(generator: torch.Generator | None) -> torch.device:
    """The device random numbers of ``generator`` live on (CPU for ``None``)."""
    return generator.device if generator is not None else torch.device("cpu")


def _bernoulli(p: Tensor, generator: torch.Generator | None) -> Tensor:
    # Uniforms drawn in float64 whatever p's dtype (torch.bernoulli draws per dtype), so a
    # float32 and a float64 model consume the generator alike and see the same draws.
    u = torch.rand(p.shape, generator=generator, dtype=torch.float64, device=p.device)
    return (u < p).to(p.dtype)


def _randn(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normals in ``like``'s dtype and device, drawn in float64 (as ``_bernoulli``)."""
    z = torch.randn(shape, generator=generator, dtype=torch.float64, device=like.device)
    return z.to(like.dtype)
