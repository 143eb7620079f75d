"""Inference in conditional energies F(x, y): search, sampling, Gibbs probabilities.

Inference is a search for low-energy answers ``y`` given ``x``. For continuous
``y`` it is gradient descent from many starts, whose end points are clustered
into distinct answers (so a one-to-many mapping gives several answers); for
discrete ``y`` it is exact enumeration. Probabilities, when wanted, come from
the Gibbs distribution

.. math:: P(y \\mid x) = \\frac{\\exp(-\\beta F(x, y))}{\\int \\exp(-\\beta F(x, y'))\\,dy'},

computed exactly for discrete ``y`` and by quadrature for low-dimensional
continuous ``y``; :func:`sample_conditional` draws from it by Langevin dynamics.

These functions work on any conditional energy (duck typing): a callable
``F(x, y) -> (N,)`` with ``x`` of shape ``(N, x_dim)``; continuous ``y`` has shape
``(N, y_dim)`` (attribute ``y_dim``), discrete ``y`` is a ``(N,)`` tensor of class
indices (attribute ``n_classes``, method ``energies(x) -> (N, n_classes)``).
Re-exported by :mod:`ebmlab.conditional.energies`; import them from there.
"""

from __future__ import annotations

__all__ = [
    "GibbsConditional",
    "Modes",
    "cluster_answers",
    "descend",
    "gibbs_conditional",
    "infer",
    "restart_points",
    "sample_conditional",
]

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..energies.base import energy_and_grad
from ..partition.quadrature import grid_points
from ..samplers import build_sampler, run

#: A box: one ``(low, high)`` pair per coordinate of ``y``.
Bounds = Sequence[tuple[float, float]]

INFER_METHODS = ("auto", "descent", "langevin", "enumerate")


class Modes(NamedTuple):
    """Distinct low-energy answers per input, sorted by energy (lowest first).

    Rows have different numbers of answers; the tensors are padded to the
    largest count ``M``: ``y`` with NaN (continuous) or -1 (discrete),
    ``energy`` with ``+inf``, ``weight`` with 0.

    Attributes:
        y: Answers, shape ``(N, M, y_dim)`` (continuous) or ``(N, M)`` class
            indices (discrete).
        energy: ``F(x, y)`` of each answer, shape ``(N, M)``.
        weight: Share of the restarts that ended in each answer's basin
            (descent), of the Langevin chains (langevin), or the Gibbs
            probability at ``beta`` (enumerate); shape ``(N, M)``.
        n_modes: Number of answers per row, shape ``(N,)``.
    """

    y: Tensor
    energy: Tensor
    weight: Tensor
    n_modes: Tensor


class GibbsConditional(NamedTuple):
    """The Gibbs distribution ``P(y | x)`` on a finite set or a grid of answers.

    Attributes:
        values: The answers: class indices ``(K,)`` (discrete) or grid cell
            centres ``(G, y_dim)`` (continuous).
        log_prob: ``log P(y | x)`` per row and answer, shape ``(N, K)`` or
            ``(N, G)``; for continuous ``y`` a log *density*.
        probs: Probability of each answer (discrete) or mass of each grid
            cell (continuous), shape ``(N, K)`` or ``(N, G)``; rows sum to 1.
        log_z: ``log`` of the normalizer of ``exp(-beta F(x, .))``, shape ``(N,)``.
    """

    values: Tensor
    log_prob: Tensor
    probs: Tensor
    log_z: Tensor


def _is_discrete(energy: Any) -> bool:
    return getattr(energy, "n_classes", None) is not None


def _class_energies(energy: Any, x: Tensor) -> Tensor:
    """``(N, K)`` energies of every class."""
    if hasattr(energy, "energies"):
        return energy.energies(x)  # type: ignore[no-any-return]
    k = int(energy.n_classes)
    n = x.shape[0]
    ys = torch.arange(k, device=x.device).repeat(n)
    return energy(x.repeat_interleave(k, 0), ys).reshape(n, k)  # type: ignore[no-any-return]


def _check_bounds(bounds: Bounds | tuple[float, float], y_dim: int) -> list[tuple[float, float]]:
    if (
        isinstance(bounds, tuple)
        and len(bounds) == 2
        and all(isinstance(b, int | float) for b in bounds)
    ):
        box = [(float(bounds[0]), float(bounds[1]))] * y_dim  # type: ignore[arg-type]
    else:
        box = [(float(lo), float(hi)) for lo, hi in bounds]  # type: ignore[misc]
    if len(box) != y_dim:
        raise ValueError(f"bounds must give {y_dim} (low, high) pairs, got {len(box)}")
    for lo, hi in box:
        if not hi > lo:
            raise ValueError(f"bounds must be (low, high) with low < high, got {(lo, hi)}")
    return box


def _y_dim(energy: Any, default: int | None = None) -> int:
    d = getattr(energy, "y_dim", None)
    if d is None:
        if default is None:
            raise ValueError("the energy has no y_dim attribute; pass y_init")
        return default
    return int(d)


def restart_points(
    bounds: Bounds | tuple[float, float],
    n: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """Starting points spread over a box by Latin hypercube sampling.

    Every coordinate's range is cut into ``n`` equal strata and each stratum
    gets exactly one point (a random position in it), so even a few restarts
    cover every part of each axis.

    Arguments:
        bounds: ``D`` pairs ``(low, high)``.
        n: Number of points.
        generator: Random generator.

    Returns:
        Points, shape ``(n, D)``.

    Example:
        >>> tuple(restart_points([(-1.0, 1.0)], 8, generator=torch.Generator()).shape)
        (8, 1)
    """
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    box = [(float(lo), float(hi)) for lo, hi in bounds]  # type: ignore[misc]
    d = len(box)
    u = torch.rand(n, d, generator=generator, dtype=torch.float64)
    strata = torch.stack([torch.randperm(n, generator=generator) for _ in range(d)], 1)
    frac = (strata.to(torch.float64) + u) / n
    lo = torch.tensor([b[0] for b in box], dtype=torch.float64)
    hi = torch.tensor([b[1] for b in box], dtype=torch.float64)
    return (lo + (hi - lo) * frac).to(dtype=dtype, device=device)


def descend(
    fn: Callable[[Tensor], Tensor],
    y0: Tensor,
    *,
    n_steps: int = 100,
    step_size: float = 0.1,
    bounds: Bounds | None = None,
) -> tuple[Tensor, Tensor]:
    """Minimize ``fn`` from every starting point by gradient descent.

    Each point keeps its own step size: a step is taken only when it lowers
    ``fn`` enough (Armijo's condition); the step then grows by 20%, else it
    is halved. This needs no tuning to the energy's scale: sharp and flat
    basins both converge. With ``bounds`` the iterates are projected onto the
    box. The loop does no host synchronization.

    Arguments:
        fn: Callable ``(M, *shape) -> (M,)`` (energies; lower is better).
        y0: Starting points, shape ``(M, *shape)``.
        n_steps: Gradient steps.
        step_size: Initial step size.
        bounds: Optional box, one ``(low, high)`` per coordinate of the
            flattened point.

    Returns:
        ``(y, e)``: end points ``(M, *shape)`` and their ``fn`` values ``(M,)``
        (detached).

    Example:
        >>> y, e = descend(lambda y: ((y - 2.0) ** 2).sum(-1), torch.zeros(3, 1))
        >>> bool(torch.allclose(y, torch.full((3, 1), 2.0)))
        True
    """
    if int(n_steps) < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    shape = y0.shape
    lo = hi = None
    if bounds is not None:
        box = _check_bounds(bounds, int(math.prod(shape[1:])))
        lo = torch.tensor([b[0] for b in box], dtype=y0.dtype, device=y0.device)
        hi = torch.tensor([b[1] for b in box], dtype=y0.dtype, device=y0.device)

    def project(y: Tensor) -> Tensor:
        if lo is None or hi is None:
            return y
        return torch.maximum(torch.minimum(y.reshape(shape[0], -1), hi), lo).reshape(shape)

    y = project(y0.detach())
    e, g = energy_and_grad(fn, y)
    lr = torch.full((shape[0],), float(step_size), dtype=y.dtype, device=y.device)
    lr_max = 1e3 * float(step_size)
    view = (-1,) + (1,) * (len(shape) - 1)
    for _ in range(int(n_steps)):
        y_new = project(y - lr.reshape(view) * g)
        e_new, g_new = energy_and_grad(fn, y_new)
        decrease = (g * (y - y_new)).reshape(shape[0], -1).sum(-1)
        ok = torch.isfinite(e_new) & (e_new <= e - 1e-4 * decrease)
        y = torch.where(ok.reshape(view), y_new, y)
        g = torch.where(ok.reshape(view), g_new, g)
        e = torch.where(ok, e_new, e)
        lr = torch.where(ok, (lr * 1.2).clamp(max=lr_max), lr * 0.5)
    return y, e


def cluster_answers(
    y: Tensor,
    energy: Tensor,
    tol: float,
    *,
    max_modes: int | None = None,
    energy_gap: float | None = None,
) -> Modes:
    """Group end points of a search into distinct answers, sorted by energy.

    Per row, points are visited from the lowest energy up; a point farther
    than ``tol`` (Euclidean) from every answer found so far becomes a new
    answer (it is its own representative: the lowest-energy point of its
    group), else it joins the first (lowest-energy) answer within ``tol``.

    Arguments:
        y: End points, shape ``(N, R, D)``.
        energy: Their energies, shape ``(N, R)``; non-finite ones are dropped.
        tol: Distance under which two points are the same answer.
        max_modes: Keep at most this many answers per row.
        energy_gap: Drop answers whose energy exceeds the row's lowest by
            more than this.

    Returns:
        :class:`Modes` with ``weight`` the share of the row's finite points
        in each answer's group.

    Example:
        >>> y = torch.tensor([[[0.0], [1.0], [0.001]]])
        >>> m = cluster_answers(y, torch.tensor([[0.0, 1.0, 0.5]]), tol=0.01)
        >>> m.n_modes.tolist(), m.y[0, :, 0].tolist()
        ([2], [0.0, 1.0])
    """
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if max_modes is not None and int(max_modes) < 1:
        raise ValueError(f"max_modes must be >= 1 or None, got {max_modes}")
    if energy_gap is not None and not energy_gap >= 0:
        raise ValueError(f"energy_gap must be >= 0 or None, got {energy_gap}")
    n, r, d = y.shape
    e = torch.where(torch.isfinite(energy), energy, torch.full_like(energy, math.inf))
    e_sorted, order = e.sort(dim=1, stable=True)
    y_sorted = y.gather(1, order.unsqueeze(-1).expand(n, r, d))
    finite = torch.isfinite(e_sorted) & torch.isfinite(y_sorted).all(-1)
    dist = torch.cdist(y_sorted, y_sorted)  # (N, R, R)
    is_center = torch.zeros(n, r, dtype=torch.bool, device=y.device)
    assigned = torch.full((n, r), -1, dtype=torch.long, device=y.device)
    for j in range(r):
        near = is_center[:, :j] & (dist[:, j, :j] <= tol)
        has = near.any(1)
        first = near.to(torch.int8).argmax(1) if j else torch.zeros_like(has, dtype=torch.long)
        is_center[:, j] = ~has & finite[:, j]
        assigned[:, j] = torch.where(has, first, torch.full_like(first, j))
    assigned = torch.where(finite, assigned, torch.zeros_like(assigned))
    counts = torch.zeros(n, r, dtype=y.dtype, device=y.device)
    counts.scatter_add_(1, assigned, finite.to(y.dtype))
    weight = counts / finite.sum(1, keepdim=True).clamp_min(1).to(y.dtype)
    if energy_gap is not None:
        best = e_sorted[:, :1]
        is_center &= e_sorted <= best + energy_gap
    rank = is_center.long().cumsum(1) - 1
    count = is_center.sum(1)
    if max_modes is not None:
        count = count.clamp(max=int(max_modes))
        is_center &= rank < int(max_modes)
    m = max(int(count.max()) if n else 0, 1)
    out_y = torch.full((n, m, d), math.nan, dtype=y.dtype, device=y.device)
    out_e = torch.full((n, m), math.inf, dtype=energy.dtype, device=y.device)
    out_w = torch.zeros(n, m, dtype=y.dtype, device=y.device)
    rows, cols = is_center.nonzero(as_tuple=True)
    dest = rank[rows, cols]
    out_y[rows, dest] = y_sorted[rows, cols]
    out_e[rows, dest] = e_sorted[rows, cols]
    out_w[rows, dest] = weight[rows, cols]
    return Modes(out_y, out_e, out_w, count)


def _pair_fn(energy: Any, x: Tensor, r: int, scale: float = 1.0) -> Callable[[Tensor], Tensor]:
    """``y (N * r, D) -> scale * F(x_i, y)`` with each row of ``x`` repeated ``r`` times."""
    x_rep = x.repeat_interleave(r, 0)

    def fn(y: Tensor) -> Tensor:
        e = energy(x_rep, y)
        return e if scale == 1.0 else scale * e  # type: ignore[no-any-return]

    return fn


def _starts(
    energy: Any,
    x: Tensor,
    n_restarts: int,
    bounds: Bounds | tuple[float, float] | None,
    y_init: Tensor | None,
    generator: torch.Generator | None,
) -> tuple[Tensor, list[tuple[float, float]] | None]:
    """Starting points ``(N, R, D)`` and the box (or None)."""
    n = x.shape[0]
    if y_init is not None:
        d = y_init.shape[-1]
        box = _check_bounds(bounds, d) if bounds is not None else None
        if y_init.dim() == 2:
            y0 = y_init.to(x).unsqueeze(0).expand(n, -1, -1)
        elif y_init.dim() == 3 and y_init.shape[0] == n:
            y0 = y_init.to(x)
        else:
            raise ValueError(
                f"y_init must have shape (R, y_dim) or (N={n}, R, y_dim), "
                f"got {tuple(y_init.shape)}"
            )
        return y0, box
    d = _y_dim(energy)
    box = _check_bounds(bounds if bounds is not None else (-3.0, 3.0), d)
    pts = restart_points(box, n_restarts, generator=generator, dtype=x.dtype, device=x.device)
    return pts.unsqueeze(0).expand(n, -1, -1), box


def infer(
    energy: Any,
    x: Tensor,
    *,
    method: str = "auto",
    n_restarts: int = 16,
    n_steps: int = 100,
    step_size: float = 0.1,
    bounds: Bounds | tuple[float, float] | None = None,
    y_init: Tensor | None = None,
    tol: float | None = None,
    max_modes: int | None = None,
    energy_gap: float | None = None,
    beta: float = 1.0,
    generator: torch.Generator | None = None,
) -> Modes:
    """The distinct low-energy answers ``y`` for each input ``x``.

    Methods:

    * ``"descent"`` (continuous ``y``): gradient descent on ``y -> F(x, y)``
      (:func:`descend`) from ``n_restarts`` starts, then the end points are
      clustered (:func:`cluster_answers`). Several answers per row mean
      several local minima: a one-to-many mapping.
    * ``"langevin"`` (continuous ``y``): ``n_steps`` Langevin steps sampling
      ``P(y | x)`` at inverse temperature ``beta`` (step ``step_size``), then
      descent from the samples; an answer's ``weight`` is the share of the
      chains in its basin, an estimate of its probability when the chains mix.
    * ``"enumerate"`` (discrete ``y``): every class, exactly; ``weight`` is the
      Gibbs probability at ``beta``.
    * ``"auto"``: ``"enumerate"`` for discrete ``y``, else ``"descent"``.

    The starts are the same for every row (drawn once, by Latin hypercube
    sampling over ``bounds``), so a row's answers do not depend on the other
    rows of the batch.

    Arguments:
        energy: Conditional energy ``F(x, y) -> (N,)``; low energy = good answer.
        x: Inputs, shape ``(N, x_dim)``.
        method: See above.
        n_restarts: Starts per row (continuous ``y``).
        n_steps: Descent (or Langevin) steps.
        step_size: Initial descent step (Langevin: the step).
        bounds: Search box for continuous ``y``: ``(low, high)`` for every
            coordinate or one pair per coordinate (default ``(-3, 3)``);
            iterates are projected onto it.
        y_init: Explicit starts ``(R, y_dim)`` or ``(N, R, y_dim)`` instead of
            drawing them from ``bounds``.
        tol: Distance under which two end points are one answer (default: 1%
            of the widest side of the box, or of the spread of ``y_init``).
        max_modes: At most this many answers per row.
        energy_gap: Drop answers whose energy exceeds the row's best by more.
        beta: Inverse temperature (``langevin``, ``enumerate`` weights).
        generator: Random generator.

    Returns:
        :class:`Modes`, answers sorted by energy.

    Example:
        >>> from ebmlab.conditional.energies import QuadraticConditionalEnergy
        >>> F = QuadraticConditionalEnergy(3, 2)
        >>> modes = infer(F, torch.randn(5, 3), generator=torch.Generator().manual_seed(0))
        >>> tuple(modes.y.shape), modes.n_modes.tolist()
        ((5, 1, 2), [1, 1, 1, 1, 1])
    """
    if method not in INFER_METHODS:
        raise ValueError(f"method must be one of {list(INFER_METHODS)}, got {method!r}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, x_dim), got {tuple(x.shape)}")
    discrete = _is_discrete(energy)
    if method == "auto":
        method = "enumerate" if discrete else "descent"
    if discrete != (method == "enumerate"):
        kind = "discrete" if discrete else "continuous"
        raise ValueError(f"method {method!r} does not apply to an energy over {kind} y")
    if method == "enumerate":
        with torch.no_grad():
            e = _class_energies(energy, x)
        e_sorted, order = e.sort(1)
        w = torch.softmax(-beta * e_sorted, 1)
        keep = torch.ones_like(e_sorted, dtype=torch.bool)
        if energy_gap is not None:
            keep = e_sorted <= e_sorted[:, :1] + energy_gap
        count = keep.sum(1)
        if max_modes is not None:
            count = count.clamp(max=int(max_modes))
        m = max(int(count.max()) if x.shape[0] else 0, 1)
        valid = torch.arange(e.shape[1], device=e.device)[None, :m] < count[:, None]
        y = torch.where(valid, order[:, :m], torch.full_like(order[:, :m], -1))
        return Modes(
            y,
            torch.where(valid, e_sorted[:, :m], torch.full_like(e_sorted[:, :m], math.inf)),
            torch.where(valid, w[:, :m], torch.zeros_like(w[:, :m])),
            count,
        )
    if int(n_restarts) < 1:
        raise ValueError(f"n_restarts must be >= 1, got {n_restarts}")
    y0, box = _starts(energy, x, int(n_restarts), bounds, y_init, generator)
    n, r, d = y0.shape
    flat = y0.reshape(n * r, d)
    fn = _pair_fn(energy, x, r)
    if method == "langevin":
        sampler = build_sampler("langevin", step_size=step_size)
        chains = run(
            sampler, _pair_fn(energy, x, r, beta), flat, int(n_steps), generator=generator
        )
        flat = chains.state.x
    y_end, e_end = descend(fn, flat, n_steps=n_steps, step_size=step_size, bounds=box)
    if tol is None:
        if box is not None:
            tol = 0.01 * max(hi - lo for lo, hi in box)
        else:
            spread = y0.reshape(-1, d).amax(0) - y0.reshape(-1, d).amin(0)
            tol = 0.01 * float(spread.max()) if float(spread.max()) > 0 else 1e-3
    return cluster_answers(
        y_end.reshape(n, r, d),
        e_end.reshape(n, r),
        float(tol),
        max_modes=max_modes,
        energy_gap=energy_gap,
    )


def gibbs_conditional(
    energy: Any,
    x: Tensor,
    beta: float = 1.0,
    *,
    bounds: Bounds | tuple[float, float] | None = None,
    resolution: int | None = None,
) -> GibbsConditional:
    """``P(y | x) = exp(-beta F(x, y)) / Z(x)``, exactly or on a grid.

    Discrete ``y``: every class, exactly. Continuous ``y`` with ``y_dim`` 1 to
    3: the midpoint rule on a grid over ``bounds`` (``log_z`` is then the
    quadrature estimate of :math:`\\log \\int \\exp(-\\beta F(x, y))\\,dy`;
    mass outside the box is ignored).

    Arguments:
        energy: Conditional energy ``F(x, y) -> (N,)``.
        x: Inputs, shape ``(N, x_dim)``.
        beta: Inverse temperature, ``> 0``.
        bounds: Box for continuous ``y`` (required there): ``(low, high)`` or
            one pair per coordinate.
        resolution: Grid cells per axis (default 512, 64, 24 for ``y_dim``
            1, 2, 3).

    Returns:
        A :class:`GibbsConditional`.

    Example:
        >>> from ebmlab.conditional.energies import DiscreteConditionalEnergy
        >>> p = gibbs_conditional(DiscreteConditionalEnergy(4, 3), torch.randn(2, 4))
        >>> tuple(p.probs.shape), bool(torch.allclose(p.probs.sum(1), torch.ones(2)))
        ((2, 3), True)
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if _is_discrete(energy):
        with torch.no_grad():
            e = _class_energies(energy, x)
        log_z = torch.logsumexp(-beta * e, 1)
        log_prob = -beta * e - log_z[:, None]
        values = torch.arange(e.shape[1], device=e.device)
        return GibbsConditional(values, log_prob, log_prob.exp(), log_z)
    d = _y_dim(energy)
    if not 1 <= d <= 3:
        raise ValueError(f"gibbs_conditional on a grid needs y_dim 1 to 3, got {d}")
    if bounds is None:
        raise ValueError("bounds is required for continuous y: the box to integrate over")
    box = _check_bounds(bounds, d)
    res = int(resolution) if resolution is not None else {1: 512, 2: 64, 3: 24}[d]
    if res < 2:
        raise ValueError(f"resolution must be >= 2, got {res}")
    grid, _ = grid_points(box, res, dtype=x.dtype, device=x.device)
    g = grid.shape[0]
    n = x.shape[0]
    with torch.no_grad():
        e = energy(x.repeat_interleave(g, 0), grid.repeat(n, 1)).reshape(n, g)
    log_cell = sum(math.log((hi - lo) / res) for lo, hi in box)
    log_z = torch.logsumexp(-beta * e, 1) + log_cell
    log_prob = -beta * e - log_z[:, None]
    return GibbsConditional(grid, log_prob, (log_prob + log_cell).exp(), log_z)


def sample_conditional(
    energy: Any,
    x: Tensor,
    n_samples: int = 100,
    *,
    beta: float = 1.0,
    method: str = "mala",
    n_steps: int = 200,
    step_size: float = 0.01,
    bounds: Bounds | tuple[float, float] | None = None,
    y_init: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw ``y ~ P(y | x) = exp(-beta F(x, y)) / Z(x)`` for every row of ``x``.

    Discrete ``y``: exact draws from the Gibbs probabilities. Continuous
    ``y``: ``n_samples`` chains per row of the sampler ``method``
    (``"langevin"``, ``"mala"``, ``"hmc"``) on ``beta * F(x, .)``, started by
    Latin hypercube sampling over ``bounds`` (default ``(-3, 3)``) or at
    ``y_init``; the end states are returned.

    Arguments:
        energy: Conditional energy ``F(x, y) -> (N,)``.
        x: Inputs, shape ``(N, x_dim)``.
        n_samples: Draws per row.
        beta: Inverse temperature, ``> 0``.
        method: Sampler name (continuous ``y``).
        n_steps: Sampler steps.
        step_size: Sampler step size.
        bounds: Box the chains start in (continuous ``y``).
        y_init: Starts ``(n_samples, y_dim)`` or ``(N, n_samples, y_dim)``.
        generator: Random generator.

    Returns:
        ``(N, n_samples, y_dim)`` (continuous) or ``(N, n_samples)`` class
        indices (discrete).

    Example:
        >>> from ebmlab.conditional.energies import QuadraticConditionalEnergy
        >>> y = sample_conditional(QuadraticConditionalEnergy(3, 2), torch.randn(4, 3), 10,
        ...                        n_steps=5)
        >>> tuple(y.shape)
        (4, 10, 2)
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if _is_discrete(energy):
        probs = gibbs_conditional(energy, x, beta).probs
        return torch.multinomial(probs, int(n_samples), replacement=True, generator=generator)
    y0, _ = _starts(energy, x, int(n_samples), bounds, y_init, generator)
    n, r, d = y0.shape
    sampler = build_sampler(method, step_size=step_size)
    hot = _pair_fn(energy, x, r, beta)
    out = run(sampler, hot, y0.reshape(n * r, d), int(n_steps), generator=generator)
    return out.state.x.reshape(n, r, d)  # type: ignore[no-any-return]
