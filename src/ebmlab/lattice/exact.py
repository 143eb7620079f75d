"""Exact results for the 2D square-lattice Ising model (``J = 1``, ``k_B = 1``).

Onsager's energy and spontaneous magnetization of the infinite lattice, and
Kaufman's partition function of a finite periodic ``m x n`` lattice, from which
the finite-size energy and specific heat follow by differentiation. They are the
references that :mod:`ebmlab.lattice.observables` estimates are checked against.

References:
    Onsager, L. (1944). Physical Review 65, 117. Yang, C. N. (1952). The
    spontaneous magnetization of a two-dimensional Ising model. Physical
    Review 85, 808.
    Kaufman, B. (1949). Crystal statistics. II. Partition function evaluated by
    spinor analysis. Physical Review 76, 1232.
    Ferdinand, A. E. & Fisher, M. E. (1969). Bounded and inhomogeneous Ising
    models. Physical Review 185, 832.
"""

from __future__ import annotations

__all__ = ["kaufman_log_z", "kaufman_observables", "onsager_energy", "onsager_magnetization"]

import math

import torch
from scipy import special
from torch import Tensor


# ---------------------------------------------------------------------- exact
def onsager_magnetization(temperature: float) -> float:
    """Spontaneous magnetization of the infinite square lattice (``J = 1``).

    ``(1 - sinh(2 / T)^-4)^(1/8)`` below ``T_c``, 0 above (Onsager 1948, Yang 1952).

    Example:
        >>> round(onsager_magnetization(2.0), 6)
        0.911319
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    s = math.sinh(2.0 / temperature)
    return (1.0 - s**-4) ** 0.125 if s > 1.0 else 0.0


def onsager_energy(temperature: float) -> float:
    """Energy per spin of the infinite square lattice (``J = 1``, two bonds per spin).

    ``u = -coth(2 beta) [1 + (2 / pi) (2 tanh^2(2 beta) - 1) K(k)]`` with
    ``k = 2 sinh(2 beta) / cosh^2(2 beta)`` and ``K`` the complete elliptic
    integral of the first kind.

    Example:
        >>> round(onsager_energy(2.0), 6)
        -1.745565
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b2 = 2.0 / temperature
    k = 2.0 * math.sinh(b2) / math.cosh(b2) ** 2
    factor = 2.0 * math.tanh(b2) ** 2 - 1.0
    # At T_c, K(k) diverges logarithmically while the factor vanishes linearly.
    term = 0.0 if abs(factor) < 1e-12 else factor * float(special.ellipk(k * k))
    return -(1.0 / math.tanh(b2)) * (1.0 + (2.0 / math.pi) * term)


def kaufman_log_z(rows: int, cols: int, beta: float | Tensor, coupling: float = 1.0) -> Tensor:
    """Exact ``log Z`` of the periodic ``rows x cols`` square-lattice Ising model (no field).

    Kaufman's (1949) closed form as four products over the transfer-matrix
    spectrum, evaluated in log space; differentiable in ``beta`` (float64),
    so energy and specific heat follow by autograd (:func:`kaufman_observables`).
    It equals enumeration to rounding on small lattices and is exact at any
    size (each bond counts once; on a side of 2 the two bonds between a pair
    both count, as in :class:`~ebmlab.lattice.IsingModel`).

    Example:
        >>> round(float(kaufman_log_z(4, 4, 0.4)), 8)
        14.56109302
    """
    if rows < 2 or cols < 2:
        raise ValueError(f"rows and cols must be >= 2, got {rows}, {cols}")
    k = torch.as_tensor(beta, dtype=torch.float64) * coupling
    if not bool(k > 0):
        raise ValueError(f"beta * coupling must be > 0, got {float(k)}")
    m, n = rows, cols
    ls = torch.arange(2 * n, dtype=torch.float64)
    c = torch.cosh(2 * k) / torch.tanh(2 * k) - torch.cos(ls * math.pi / n)
    gamma = torch.acosh(c.clamp_min(1.0))
    gamma = torch.where(ls == 0, 2 * k + torch.log(torch.tanh(k)), gamma)
    odd, even = gamma[1::2], gamma[0::2]

    def log_2cosh(x: Tensor) -> Tensor:
        a = x.abs()
        return a + torch.log1p(torch.exp(-2 * a))

    def log_2sinh(x: Tensor) -> tuple[Tensor, Tensor]:
        a = x.abs()
        return a + torch.log(-torch.expm1(-2 * a)), torch.sign(x)

    l2, s2 = log_2sinh(0.5 * m * odd)
    l4, s4 = log_2sinh(0.5 * m * even)
    terms = torch.stack(
        [log_2cosh(0.5 * m * odd).sum(), l2.sum(), log_2cosh(0.5 * m * even).sum(), l4.sum()]
    )
    signs = torch.stack([torch.ones_like(k), s2.prod(), torch.ones_like(k), s4.prod()])
    top = terms.max().detach()
    total = (signs * torch.exp(terms - top)).sum()
    return math.log(0.5) + 0.5 * m * n * torch.log(2 * torch.sinh(2 * k)) + top + torch.log(total)


def kaufman_observables(size: int, temperature: float) -> dict[str, float]:
    """Exact energy per spin and specific heat of the periodic ``size x size`` lattice.

    Arguments:
        size: Side ``L``.
        temperature: ``T`` (``J = 1``).

    Returns:
        ``{"energy_per_spin": <H>/N, "specific_heat": beta^2 Var(H) / N}``.

    Example:
        >>> out = kaufman_observables(64, 2.0)
        >>> abs(out["energy_per_spin"] - onsager_energy(2.0)) < 1e-6
        True
    """
    beta = torch.tensor(1.0 / temperature, dtype=torch.float64, requires_grad=True)
    log_z = kaufman_log_z(size, size, beta)
    (d1,) = torch.autograd.grad(log_z, beta, create_graph=True)
    (d2,) = torch.autograd.grad(d1, beta)
    n = size * size
    return {
        "energy_per_spin": -float(d1.detach()) / n,
        "specific_heat": float(beta.detach() ** 2 * d2.detach()) / n,
    }
