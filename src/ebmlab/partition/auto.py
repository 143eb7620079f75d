"""One entry point for log Z: :func:`log_z` picks or runs an estimator.

``method="auto"`` computes when it can and estimates otherwise:

- discrete energies (``domain=`` or ``energy.domain``) with at most
  ``max_exact_states`` (default ``2**26``) states: exact enumeration;
- continuous energies of dimension 1 to 3: quadrature;
- everything else: annealed importance sampling.

``"exact"``, ``"quadrature"``, ``"ais"`` and ``"bdmc"`` force a method. Every
method returns an :class:`~ebmlab.partition.Estimate`.
"""

from __future__ import annotations

__all__ = ["METHODS", "log_z"]

import inspect
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from .ais import ais_log_z
from .bases import pilot_affine
from .bdmc import bdmc_log_z
from .domain import domain_of
from .estimate import Estimate
from .exact import MAX_STATES, exact_log_z

#: Methods accepted by :func:`log_z`.
METHODS = ("auto", "exact", "quadrature", "ais", "bdmc")

_AIS_OPTIONS = set(inspect.signature(ais_log_z).parameters) - {"energy"}
_BDMC_OPTIONS = set(inspect.signature(bdmc_log_z).parameters) - {"energy"}


def _quadrature_box(
    energy: EnergyFn,
    shape: tuple[int, ...],
    data: Tensor | None,
    generator: torch.Generator | None,
) -> list[tuple[float, float]]:
    if data is not None:
        x = data.detach().reshape(data.shape[0], -1).double()
        lo, hi = x.min(0).values, x.max(0).values
        width = (hi - lo).clamp_min(1e-6)
        lo, hi = lo - 0.5 * width, hi + 0.5 * width
    else:
        amap, _ = pilot_affine(energy, shape, generator=generator)
        m, s = amap.mean.double(), amap.std.double()
        lo, hi = m - 6 * s, m + 6 * s
    return [(float(a), float(b)) for a, b in zip(lo, hi, strict=True)]


def log_z(
    energy: EnergyFn,
    method: str = "auto",
    *,
    event_shape: tuple[int, ...] | int | None = None,
    domain: Any = None,
    data: Tensor | None = None,
    bounds: Sequence[tuple[float, float]] | None = None,
    resolution: int | None = None,
    max_exact_states: int = 2**26,
    generator: torch.Generator | None = None,
    **options: Any,
) -> Estimate:
    """Log partition function ``log Z`` of any energy, by the method asked for.

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``, usually an
            :class:`~ebmlab.energies.Energy`; low energy = high probability.
        method: ``"auto"``, ``"exact"`` (enumeration, or quadrature in 1-3
            dimensions), ``"quadrature"``, ``"ais"`` or ``"bdmc"``.
        event_shape: Shape of one configuration (default ``energy.event_shape``).
        domain: ``"continuous"`` (default) or a discrete domain; default
            ``energy.domain`` when it exists (see
            :func:`~ebmlab.partition.parse_domain`).
        data: Samples ``(N, *event_shape)``: the quadrature box is placed
            around them, and AIS fits its Gaussian base to them.
        bounds: Quadrature box, ``D`` pairs ``(low, high)`` (default: around
            ``data``, else around a short MCMC run on the energy; the box grows
            when it cuts off mass).
        resolution: Quadrature cells per axis.
        max_exact_states: ``"auto"`` enumerates up to this many states
            (``"exact"`` goes up to ``2**30``).
        generator: Random generator for the stochastic methods.
        **options: Passed to :func:`~ebmlab.partition.ais_log_z` or
            :func:`~ebmlab.partition.bdmc_log_z` (``n_chains``,
            ``n_temperatures``, ``base``, ``schedule``, ``sampler``...); ignored
            when ``"auto"`` resolves to an exact method.

    Returns:
        An :class:`~ebmlab.partition.Estimate` (``value``, ``stderr``,
        ``lower``, ``upper``, ``method``, ``seconds``...).

    Raises:
        ValueError: For an unknown method or option, or a method that cannot
            apply (quadrature above 3 dimensions, too many states to enumerate).

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> est = log_z(Gaussian.standard(2), bounds=[(-8.0, 8.0)] * 2)
        >>> est.method, round(est.value, 4)
        ('quadrature', 1.8379)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    unknown = set(options) - _AIS_OPTIONS - _BDMC_OPTIONS
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for log_z; valid: {sorted(_BDMC_OPTIONS)}"
        )
    shape = getattr(energy, "event_shape", None) if event_shape is None else event_shape
    if shape is None:
        raise ValueError("event_shape is required for an energy without .event_shape")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    d = domain_of(energy, domain)
    dim = math.prod(shape)
    chosen = method
    if method == "auto":
        if d.is_discrete:
            n_states_log2 = d.log_n_states(shape) / math.log(2)
            chosen = "exact" if n_states_log2 <= math.log2(max_exact_states) + 1e-9 else "ais"
        else:
            chosen = "quadrature" if dim <= 3 else "ais"
    if chosen == "quadrature" and d.is_discrete:
        raise ValueError(f"quadrature is for continuous energies; this domain is {d.name}")
    if chosen in ("exact", "quadrature"):
        if method != "auto" and options:
            raise ValueError(f"options {sorted(options)} do not apply to method={chosen!r}")
        if not d.is_discrete and not 1 <= dim <= 3:
            raise ValueError(
                f"{chosen} log Z of a continuous energy needs dimension 1 to 3, got {dim}; "
                "use method='ais' or 'bdmc'"
            )
        t0 = time.perf_counter()
        box = None
        if not d.is_discrete:
            box = (
                list(bounds)
                if bounds is not None
                else _quadrature_box(energy, shape, data, generator)
            )
        est = exact_log_z(
            energy,
            event_shape=shape,
            domain=d,
            bounds=box,
            resolution=resolution,
            max_states=MAX_STATES if method == "exact" else max_exact_states,
        )
        return est.with_seconds(time.perf_counter() - t0)
    if chosen == "ais":
        bad = set(options) - _AIS_OPTIONS
        if bad:
            raise ValueError(f"option(s) {sorted(bad)} do not apply to method='ais'")
        return ais_log_z(
            energy, event_shape=shape, domain=d, data=data, generator=generator, **options
        )
    return bdmc_log_z(
        energy, event_shape=shape, domain=d, data=data, generator=generator, **options
    )
