"""Two-dimensional toy distributions for training, sampling and plotting demos.

Every toy is a :class:`Toy`: :meth:`Toy.sample` draws points of shape ``(n, 2)``
from an explicit ``torch.Generator`` (never the global RNG), and
:attr:`Toy.bounds` is a box holding essentially all of the mass (the support
widened by five noise standard deviations, rounded up to 0.1), for plots and
quadrature grids.

Every toy knows its density (``has_log_prob`` is True): :meth:`Toy.log_prob`
returns the exact, normalised log density (in closed form, or by a quadrature
accurate to about 1e-12 where the data lie) and :meth:`Toy.entropy` a
Monte-Carlo estimate of the differential entropy:

=============== ========== ================================================
name            log_prob   density
=============== ========== ================================================
eight_gaussians closed     mixture of 8 isotropic Gaussians on a circle
checkerboard    closed     uniform on the 8 black unit squares of [-2, 2]^2
rings           closed     concentric rings with Gaussian radial noise
two_moons       quadrature arcs plus Gaussian noise (curve integral)
spirals         quadrature two spiral arms plus Gaussian noise (curve integral)
pinwheel        exact      curved blades (Johnson et al., 2016), change of
                           variables with numerically solved preimages
=============== ========== ================================================

The contract (:class:`Toy`) is in :mod:`ebmlab.data.base`, the pinwheel in
:mod:`ebmlab.data.pinwheel`. Toys are looked up by name with :func:`make_toy` or
the :data:`TOYS` registry.

Example:
    >>> toy = make_toy("eight_gaussians")
    >>> toy.sample(5, seed=0).shape
    torch.Size([5, 2])
    >>> sorted(TOYS)[:3]
    ['checkerboard', 'eight_gaussians', 'pinwheel']
"""

from __future__ import annotations

__all__ = [
    "TOYS",
    "Checkerboard",
    "EightGaussians",
    "Pinwheel",
    "Rings",
    "Spirals",
    "Toy",
    "TwoMoons",
    "make_toy",
]

import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from .base import (
    _F64,
    _LOG_2PI,
    _PANEL_STDS,
    Toy,
    _check_points,
    _check_positive,
    _gauss_legendre,
    _log_curve_density,
    _round_up,
)
from .pinwheel import Pinwheel


class EightGaussians(Toy):
    """Equal-weight mixture of 8 isotropic Gaussians with centres on a circle.

    Centre ``k`` is ``radius * (cos(2 pi k / 8), sin(2 pi k / 8))``; each
    component has covariance ``std^2 I``. The density is exact:

    .. math:: p(x) = \\frac18 \\sum_{k=0}^{7} \\mathcal N(x; c_k, \\sigma^2 I).

    With the defaults the components are 6.1 standard deviations apart, so the
    entropy is close to ``log 8 + log(2 pi e std^2)``.

    Arguments:
        radius: Radius of the circle of centres.
        std: Standard deviation of each component.

    Example:
        >>> toy = EightGaussians()
        >>> toy.sample(4, seed=0).shape
        torch.Size([4, 2])
        >>> toy.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
        >>> toy.bounds
        (-3.3, 3.3, -3.3, 3.3)
    """

    name = "eight_gaussians"
    has_log_prob = True
    n_components: ClassVar[int] = 8

    def __init__(self, radius: float = 2.0, std: float = 0.25) -> None:
        self.radius = _check_positive(radius, "radius")
        self.std = _check_positive(std, "std")

    def _params(self) -> dict[str, Any]:
        return {"radius": self.radius, "std": self.std}

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        b = _round_up(self.radius + 5.0 * self.std)
        return (-b, b, -b, b)

    def centers(self, dtype: torch.dtype = _F64, device: torch.device | None = None) -> Tensor:
        """Component centres, shape ``(8, 2)``."""
        angle = torch.arange(self.n_components, dtype=_F64) * (2.0 * math.pi / self.n_components)
        c = self.radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        return c.to(dtype=dtype, device=device)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        k = torch.randint(self.n_components, (n,), generator=generator, device=dev)
        noise = torch.randn(n, 2, generator=generator, device=dev, dtype=_F64)
        return self.centers(device=dev)[k] + self.std * noise

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log density, shape ``(N,)``, of points ``x`` of shape ``(N, 2)``."""
        x = _check_points(x)
        c = self.centers(x.dtype, x.device)
        d2 = ((x[:, None, :] - c) ** 2).sum(-1)  # (N, 8)
        log_comp = -0.5 * d2 / self.std**2 - (_LOG_2PI + 2.0 * math.log(self.std))
        return torch.logsumexp(log_comp, dim=1) - math.log(self.n_components)


class Checkerboard(Toy):
    """Uniform density on the black squares of a 4x4 checkerboard on ``[-2, 2]^2``.

    The unit square ``[-2 + i, -1 + i] x [-2 + j, -1 + j]`` (``i, j`` in
    ``0..3``) is black when ``i + j`` is even, so the density is exactly
    ``1/8`` on 8 squares and 0 elsewhere: ``log_prob`` is ``-log 8`` on the
    (closed) black squares and ``-inf`` off them, and the entropy is ``log 8``.
    Edges shared with white squares count as support, so samples rounded to
    float32 never land at ``-inf``.

    Example:
        >>> toy = Checkerboard()
        >>> toy.sample(4, seed=0).shape
        torch.Size([4, 2])
        >>> toy.log_prob(torch.tensor([[-1.5, -1.5], [-0.5, -1.5]]))
        tensor([-2.0794,    -inf])
    """

    name = "checkerboard"
    has_log_prob = True
    _log_density: ClassVar[float] = -math.log(8.0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (-2.2, 2.2, -2.2, 2.2)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        k = torch.randint(8, (n,), generator=generator, device=dev)
        row = k // 2  # j in 0..3
        col = 2 * (k % 2) + row % 2  # i with i + j even
        corner = torch.stack([col, row], dim=1).to(_F64) - 2.0
        return corner + torch.rand(n, 2, generator=generator, device=dev, dtype=_F64)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log density, shape ``(N,)``: ``-log 8`` on black squares, else ``-inf``."""
        x = _check_points(x)
        f = x + 2.0  # cell coordinates in [0, 4]
        inside = ((f >= 0) & (f <= 4)).all(dim=1)
        lo = torch.floor(f).clamp(0, 3)  # cell containing the point
        hi = (torch.ceil(f) - 1).clamp(0, 3)  # its other neighbour when on an inner edge
        # On an inner edge one neighbour of each colour touches the point: closed support.
        is_black = (lo != hi).any(dim=1) | (torch.remainder(lo.sum(dim=1), 2) == 0)
        full = torch.full_like(x[:, 0], self._log_density)
        return torch.where(inside & is_black, full, torch.full_like(full, -math.inf))


class Rings(Toy):
    """Equal-weight mixture of concentric rings with Gaussian radial noise.

    A point picks ring ``k`` uniformly, a signed radius ``r = r_k + std * eps``
    and an angle uniform on ``[0, 2 pi)``, and lands at ``r (cos, sin)``. A
    negative ``r`` just flips the angle by pi, which leaves the angle uniform and
    independent of the distance ``rho = |r|``, so ``rho`` follows a folded
    normal and the density is exact (no approximation):

    .. math::
        p(x) = \\frac{1}{K} \\sum_k \\frac{\\mathcal N(\\rho; r_k, s^2)
               + \\mathcal N(\\rho; -r_k, s^2)}{2 \\pi \\rho},
        \\qquad \\rho = \\lVert x \\rVert.

    The density has an integrable ``1/rho`` singularity at the origin (with a
    weight of order ``exp(-r_k^2 / 2 s^2)``), where ``log_prob`` returns
    ``+inf``; the origin has probability zero.

    Arguments:
        radii: Ring radii, each > 0.
        std: Standard deviation of the radial noise.

    Example:
        >>> toy = Rings()
        >>> toy.sample(4, seed=0).shape
        torch.Size([4, 2])
        >>> toy.log_prob(torch.ones(3, 2)).shape
        torch.Size([3])
    """

    name = "rings"
    has_log_prob = True

    def __init__(self, radii: Sequence[float] = (0.5, 1.0, 1.5, 2.0), std: float = 0.08) -> None:
        radii = tuple(radii)
        if not radii:
            raise ValueError("radii must hold at least one radius, got ()")
        self.radii = tuple(_check_positive(r, "radii") for r in radii)
        self.std = _check_positive(std, "std")

    def _params(self) -> dict[str, Any]:
        return {"radii": self.radii, "std": self.std}

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        b = _round_up(max(self.radii) + 5.0 * self.std)
        return (-b, b, -b, b)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        radii = torch.tensor(self.radii, dtype=_F64, device=dev)
        k = torch.randint(len(self.radii), (n,), generator=generator, device=dev)
        r = radii[k] + self.std * torch.randn(n, generator=generator, device=dev, dtype=_F64)
        theta = 2.0 * math.pi * torch.rand(n, generator=generator, device=dev, dtype=_F64)
        return r[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log density, shape ``(N,)``, of points ``x`` of shape ``(N, 2)``."""
        x = _check_points(x)
        rho = torch.linalg.vector_norm(x, dim=1)
        radii = torch.tensor(self.radii, dtype=x.dtype, device=x.device)
        z = torch.cat([rho[:, None] - radii, rho[:, None] + radii], dim=1) / self.std
        log_normal = -0.5 * z**2 - (0.5 * _LOG_2PI + math.log(self.std))
        log_radial = torch.logsumexp(log_normal, dim=1) - math.log(len(self.radii))
        return log_radial - math.log(2.0 * math.pi) - torch.log(rho)


class TwoMoons(Toy):
    """Two interleaving half circles, as scikit-learn's ``make_moons``, in torch.

    The upper moon is ``(cos t, sin t)`` and the lower one
    ``(1 - cos t, 1/2 - sin t)`` with ``t`` uniform on ``[0, pi]`` and each moon
    chosen with probability 1/2; Gaussian noise of std ``noise`` is added, then
    the points are centred and scaled by 4/3 to span about ``[-2, 2]``
    horizontally and ``[-1, 1]`` vertically.

    The density is a curve integral with no closed form; :meth:`log_prob`
    computes it by quadrature to near machine precision (each moon is a half
    circle ``C_m + R u(tau)`` with ``R = 4/3``, noise ``s = 4/3 * noise``):

    .. math::
        p(x) = \\frac12 \\sum_m \\frac1\\pi \\int_{a_m}^{a_m + \\pi}
               \\mathcal N(x; C_m + R (\\cos\\tau, \\sin\\tau), s^2 I) \\, d\\tau,

    with composite Gauss-Legendre over ``tau`` (12 nodes per panel, panels no
    longer than ``2.5 s`` along the arc): exact to about 1e-13 in ``log p``
    where the data lie and 1e-7 anywhere inside :attr:`bounds`.

    Arguments:
        noise: Standard deviation of the Gaussian noise, before scaling.

    Example:
        >>> TwoMoons().sample(4, seed=0).shape
        torch.Size([4, 2])
        >>> TwoMoons().log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """

    name = "two_moons"
    has_log_prob = True
    _scale: ClassVar[float] = 4.0 / 3.0

    def __init__(self, noise: float = 0.1) -> None:
        self.noise = _check_positive(noise, "noise")

    def _params(self) -> dict[str, Any]:
        return {"noise": self.noise}

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        bx = _round_up(self._scale * (1.5 + 5.0 * self.noise))
        by = _round_up(self._scale * (0.75 + 5.0 * self.noise))
        return (-bx, bx, -by, by)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        is_lower = torch.randint(2, (n, 1), generator=generator, device=dev).bool()
        t = math.pi * torch.rand(n, generator=generator, device=dev, dtype=_F64)
        upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
        lower = torch.stack([1.0 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
        x = torch.where(is_lower, lower, upper)
        x = x + self.noise * torch.randn(n, 2, generator=generator, device=dev, dtype=_F64)
        centre = torch.tensor([0.5, 0.25], dtype=_F64, device=dev)
        return (x - centre) * self._scale

    def _nodes(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """Quadrature nodes ``(M, 2)`` on both arcs and their log weights ``(M,)``."""
        std = self._scale * self.noise
        n_panels = max(8, math.ceil(math.pi * self._scale / (_PANEL_STDS * std)))
        tau, w = _gauss_legendre(np.linspace(0.0, math.pi, n_panels + 1))
        arc = np.stack([np.cos(tau), np.sin(tau)], axis=1)
        upper = self._scale * (arc - np.array([0.5, 0.25]))
        lower = self._scale * (np.array([1.0, 0.5]) - arc - np.array([0.5, 0.25]))
        centres = torch.from_numpy(np.concatenate([upper, lower])).to(device)
        log_w = torch.from_numpy(np.log(np.concatenate([w, w]) / (2.0 * math.pi))).to(device)
        return centres, log_w

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density, shape ``(N,)``, of points ``x`` of shape ``(N, 2)`` (by quadrature)."""
        x = _check_points(x)
        centres, log_w = self._nodes(x.device)
        return _log_curve_density(x.to(_F64), centres, log_w, self._scale * self.noise).to(x.dtype)


class Spirals(Toy):
    """Two interleaved Archimedean spirals with Gaussian noise.

    A point picks an arm (probability 1/2), ``u`` uniform on ``[0, 1)``, the
    angle ``theta = 2 pi n_turns sqrt(u)`` and the radius
    ``radius * sqrt(u)`` (about uniform along the arm); the second arm is the
    first rotated by pi. Gaussian noise of std ``noise`` is added. With the
    defaults the arms are 0.83 apart and the data fit in about ``[-3, 3]^2``.

    The density is a curve integral with no closed form; :meth:`log_prob`
    computes it by quadrature over ``s = sqrt(u)`` (density ``2 s`` on
    ``[0, 1]``), with ``c_a(s)`` the arm's point at ``s``:

    .. math::
        p(x) = \\frac12 \\sum_{a \\in \\{0, 1\\}} \\int_0^1 2 s \\,
               \\mathcal N(x; c_a(s), \\sigma^2 I) \\, ds,

    by composite Gauss-Legendre (12 nodes per panel) on panels of equal arc
    length, at most ``2.5 sigma`` long: exact to about 1e-12 in ``log p`` where
    the data lie.

    Arguments:
        noise: Standard deviation of the Gaussian noise.
        n_turns: Number of turns of each arm.
        radius: Outer radius of the arms.

    Example:
        >>> Spirals().sample(4, seed=0).shape
        torch.Size([4, 2])
        >>> Spirals().log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """

    name = "spirals"
    has_log_prob = True

    def __init__(self, noise: float = 0.1, n_turns: float = 1.5, radius: float = 2.5) -> None:
        self.noise = _check_positive(noise, "noise")
        self.n_turns = _check_positive(n_turns, "n_turns")
        self.radius = _check_positive(radius, "radius")

    def _params(self) -> dict[str, Any]:
        return {"noise": self.noise, "n_turns": self.n_turns, "radius": self.radius}

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        b = _round_up(self.radius + 5.0 * self.noise)
        return (-b, b, -b, b)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        arm = torch.randint(2, (n,), generator=generator, device=dev).to(_F64)
        s = torch.sqrt(torch.rand(n, generator=generator, device=dev, dtype=_F64))
        theta = 2.0 * math.pi * self.n_turns * s + math.pi * arm
        x = (self.radius * s)[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
        return x + self.noise * torch.randn(n, 2, generator=generator, device=dev, dtype=_F64)

    def _arc_length(self, s: np.ndarray) -> np.ndarray:
        """Arc length of one arm from its centre to parameter ``s``."""
        b = 2.0 * math.pi * self.n_turns
        return self.radius * (s / 2 * np.sqrt(1 + (b * s) ** 2) + np.arcsinh(b * s) / (2 * b))

    def _nodes(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """Quadrature nodes ``(M, 2)`` on both arms and their log weights ``(M,)``."""
        fine = np.linspace(0.0, 1.0, 20_001)
        length = self._arc_length(fine)
        n_panels = max(8, math.ceil(length[-1] / (_PANEL_STDS * self.noise)))
        edges = np.interp(np.linspace(0.0, length[-1], n_panels + 1), length, fine)
        edges[0], edges[-1] = 0.0, 1.0
        s, w = _gauss_legendre(edges)
        arms = []
        for arm in (0, 1):
            theta = 2.0 * math.pi * self.n_turns * s + math.pi * arm
            arms.append(self.radius * s[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1))
        centres = torch.from_numpy(np.concatenate(arms)).to(device)
        log_w = torch.from_numpy(np.log(np.concatenate([w * s, w * s]))).to(device)  # 1/2 * 2s
        return centres, log_w

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density, shape ``(N,)``, of points ``x`` of shape ``(N, 2)`` (by quadrature)."""
        x = _check_points(x)
        centres, log_w = self._nodes(x.device)
        return _log_curve_density(x.to(_F64), centres, log_w, self.noise).to(x.dtype)


#: Toy classes by registry name.
TOYS: dict[str, type[Toy]] = {
    cls.name: cls for cls in (EightGaussians, TwoMoons, Rings, Checkerboard, Spirals, Pinwheel)
}


def make_toy(name: str, **kwargs: Any) -> Toy:
    """Build a toy distribution by registry name.

    Arguments:
        name: One of :data:`TOYS` (``"eight_gaussians"``, ``"two_moons"``,
            ``"rings"``, ``"checkerboard"``, ``"spirals"``, ``"pinwheel"``);
            hyphens are read as underscores.
        **kwargs: Constructor arguments of that toy.

    Returns:
        The toy.

    Raises:
        ConfigError: Unknown name or unknown keyword argument.

    Example:
        >>> make_toy("rings", std=0.05)
        Rings(radii=(0.5, 1.0, 1.5, 2.0), std=0.05)
    """
    key = name.replace("-", "_") if isinstance(name, str) else name
    if key not in TOYS:
        raise ConfigError(f"unknown toy {name!r}; valid names: {', '.join(sorted(TOYS))}")
    cls = TOYS[key]
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"unknown argument(s) {', '.join(unknown)} for toy {key!r}; "
            f"valid: {', '.join(accepted) or '(none)'}"
        )
    return cls(**kwargs)
