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

Toys are looked up by name with :func:`make_toy` or the :data:`TOYS` registry.

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

import abc
import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError

_LOG_2PI = math.log(2.0 * math.pi)
_F64 = torch.float64


def _round_up(value: float) -> float:
    """Round ``value`` up to one decimal (``2.4 -> 2.4``, ``3.25 -> 3.3``)."""
    return math.ceil(value * 10.0 - 1e-9) / 10.0


def _check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def _make_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """The generator to draw from: ``generator``, or a new one seeded with ``seed``."""
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    gen = torch.Generator()
    if seed is None:
        gen.seed()  # fresh entropy; the global RNG is left alone
    elif isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    else:
        gen.manual_seed(seed)
    return gen


def _check_points(x: Tensor) -> Tensor:
    """``x`` as a floating tensor of shape ``(N, 2)``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (N, 2), got {tuple(x.shape)}")
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


#: Gauss-Legendre nodes per panel of the curve integrals (two moons, spirals), and the
#: longest panel along the curve in noise standard deviations: against a rule 20 times
#: finer this is exact to 1e-13 in log p on samples and 1e-7 anywhere in the bounds.
_GL_ORDER = 12
_PANEL_STDS = 2.5
#: Points per chunk when a density sums over many quadrature nodes.
_CHUNK = 2048


def _gauss_legendre(edges: np.ndarray, order: int = _GL_ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre rule on the panels ``[edges[i], edges[i + 1]]``.

    Returns:
        ``(nodes, weights)``, each of shape ``(len(edges) - 1) * order``.
    """
    t, w = np.polynomial.legendre.leggauss(order)
    a, b = edges[:-1, None], edges[1:, None]
    return ((a + b) / 2 + (b - a) / 2 * t).ravel(), ((b - a) / 2 * w).ravel()


def _log_curve_density(x: Tensor, centres: Tensor, log_w: Tensor, std: float) -> Tensor:
    """``log sum_j w_j N(x; c_j, std^2 I)`` in float64, chunked over ``x``.

    A quadrature rule (nodes ``c_j`` on a curve, weights ``w_j`` summing to 1)
    for the density of "a point on the curve plus isotropic Gaussian noise".

    Arguments:
        x: Points, shape ``(N, 2)``, float64.
        centres: Quadrature nodes on the curve, shape ``(M, 2)``, float64.
        log_w: Log weights, shape ``(M,)``.
        std: Noise standard deviation.

    Returns:
        Log densities, shape ``(N,)``, float64.
    """
    # |x - c|^2 = |x|^2 + |c|^2 - 2 x.c: the |x|^2 term leaves the sum over nodes, the
    # rest is one matrix product (6x faster than forming distances; rounding ~1e-13).
    scale = -0.5 / std**2
    bias = (log_w + scale * centres.pow(2).sum(1))[None]
    out = []
    for chunk in x.split(_CHUNK):
        b = torch.addmm(bias, chunk, centres.T, alpha=-2.0 * scale)
        top = b.amax(1, keepdim=True)
        lse = b.sub_(top).exp_().sum(1).log_() + top[:, 0]
        out.append(lse + scale * chunk.pow(2).sum(1))
    log_norm = _LOG_2PI + 2.0 * math.log(std)
    return torch.cat(out) - log_norm if out else x.new_zeros(0)


class Toy(abc.ABC):
    """Base class of the 2-D toy distributions.

    Subclasses draw float64 samples in :meth:`_sample` and give their plotting
    box in :attr:`bounds`; those with a closed-form density set
    ``has_log_prob = True`` and implement :meth:`log_prob`, which makes
    :meth:`entropy` available.

    Attributes:
        name: Registry name, e.g. ``"eight_gaussians"``.
        has_log_prob: Whether :meth:`log_prob` and :meth:`entropy` are available.
    """

    name: ClassVar[str]
    has_log_prob: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def bounds(self) -> tuple[float, float, float, float]:
        """Box ``(xmin, xmax, ymin, ymax)`` holding essentially all of the mass."""

    @abc.abstractmethod
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw ``n`` float64 points, shape ``(n, 2)``, on ``generator.device``."""

    def _params(self) -> dict[str, Any]:
        """Constructor arguments, for :meth:`__repr__`."""
        return {}

    def sample(
        self,
        n: int,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Draw ``n`` independent points.

        All randomness comes from one ``torch.Generator``: ``generator`` when
        given (it is advanced), else a new CPU generator seeded with ``seed``.
        The same seed gives identical output; ``sample(n, seed=s)`` equals
        ``sample(n, generator=torch.Generator().manual_seed(s))``. With neither,
        the generator is seeded from fresh entropy (the global RNG is untouched).

        Arguments:
            n: Number of points, ``n >= 0``.
            seed: Seed for a new generator; exclusive with ``generator``.
            generator: Generator to draw from; samples live on its device.
            dtype: Floating dtype of the result (sampling is done in float64).

        Returns:
            Points, shape ``(n, 2)``.

        Raises:
            ValueError: ``n`` negative, ``dtype`` not floating, or both
                ``seed`` and ``generator`` given.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        gen = _make_generator(seed, generator)
        return self._sample(n, gen).to(dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact normalised log density ``log p(x)``.

        Arguments:
            x: Points, shape ``(N, 2)``.

        Returns:
            Log densities, shape ``(N,)``, in the dtype of ``x``.

        Raises:
            NotImplementedError: The toy has no closed-form density.
        """
        raise NotImplementedError(
            f"toy {self.name!r} has no closed-form density (has_log_prob is False); "
            f"toys with one: {', '.join(k for k, v in TOYS.items() if v.has_log_prob)}"
        )

    def entropy(self, n: int = 200_000, *, seed: int = 0) -> tuple[float, float]:
        """Monte-Carlo estimate of the differential entropy ``-E[log p(x)]``.

        Draws ``n`` float64 samples with ``seed`` and averages ``-log_prob``.
        Only sampled points are scored, so toys whose density is zero somewhere
        (checkerboard) still give a finite answer.

        Arguments:
            n: Number of samples, ``n >= 2``.
            seed: Seed of the sampling generator.

        Returns:
            ``(entropy, standard_error)`` in nats; the standard error is
            ``std(log p) / sqrt(n)``.

        Raises:
            NotImplementedError: The toy has no closed-form density.
        """
        if not self.has_log_prob:
            raise NotImplementedError(
                f"toy {self.name!r} has no closed-form density, so its entropy "
                "cannot be estimated from log_prob"
            )
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        log_p = self.log_prob(self.sample(n, seed=seed, dtype=_F64))
        if not torch.isfinite(log_p).all():  # pragma: no cover - internal invariant
            raise RuntimeError(f"toy {self.name!r}: log_prob is not finite on its own samples")
        return float(-log_p.mean()), float(log_p.std() / math.sqrt(n))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


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


class Pinwheel(Toy):
    """Pinwheel: ``n_classes`` curved blades (Johnson et al., 2016).

    Blade ``k`` draws features ``f = (1 + radial_std * e1, tangential_std * e2)``
    and rotates them by ``-(2 pi k / n_classes + rate * exp(f_1))``, so blades
    bend more the further out they reach; the result is multiplied by ``scale``
    (1.5 puts about 99.7% of the mass within radius 2.9).

    The density follows by change of variables. For blade ``k`` the map
    ``f -> x = scale * Rot(-a(f_1)) f`` with ``a = 2 pi k / n_classes + rate *
    exp(f_1)`` keeps ``|f| = |x| / scale`` and has Jacobian determinant
    ``scale^2 (1 + rate * exp(f_1) f_2)``. Given ``x`` (``u = x / scale`` at
    polar angle ``psi``), every preimage solves the scalar equation
    ``f_1 = |u| cos(psi + a(f_1))`` on ``[-|u|, |u|]``, with
    ``f_2 = |u| sin(psi + a(f_1))``, so

    .. math::
        p(x) = \\frac{1}{K} \\sum_k \\sum_{f \\in \\text{preimages}}
               \\frac{\\mathcal N(f; (1, 0), \\operatorname{diag}(r^2, t^2))}
                    {\\text{scale}^2 \\, |1 + \\text{rate} \\, e^{f_1} f_2|}.

    :meth:`log_prob` finds every root: it halves the cells of a grid until
    bounds on ``h'`` and ``h''`` show each cell to be monotone (one root if its
    ends differ in sign) or free of roots, then refines each root by
    safeguarded Newton steps to machine precision. The map is
    one-to-one wherever the determinant is positive, which fails only on a set
    of probability about 1e-14 (``f_2 < -exp(-f_1) / rate``, far out along the
    blades); there the extra preimages are summed too.

    Arguments:
        n_classes: Number of blades.
        radial_std: Standard deviation along a blade.
        tangential_std: Standard deviation across a blade.
        rate: How fast blades bend with distance.
        scale: Final scale factor.

    Example:
        >>> Pinwheel().sample(4, seed=0).shape
        torch.Size([4, 2])
        >>> Pinwheel().log_prob(torch.ones(3, 2)).shape
        torch.Size([3])

    References:
        Johnson, Duvenaud, Wiltschko, Datta, Adams (2016). Composing graphical
        models with neural networks for structured representations and fast
        inference. https://arxiv.org/abs/1603.06277
    """

    name = "pinwheel"
    has_log_prob = True
    _n_grid: ClassVar[int] = 16
    _n_levels: ClassVar[int] = 30

    def __init__(
        self,
        n_classes: int = 5,
        radial_std: float = 0.3,
        tangential_std: float = 0.05,
        rate: float = 0.25,
        scale: float = 1.5,
    ) -> None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"n_classes must be an int >= 1, got {n_classes!r}")
        self.n_classes = n_classes
        self.radial_std = _check_positive(radial_std, "radial_std")
        self.tangential_std = _check_positive(tangential_std, "tangential_std")
        self.rate = _check_positive(rate, "rate")
        self.scale = _check_positive(scale, "scale")

    def _params(self) -> dict[str, Any]:
        return {
            "n_classes": self.n_classes,
            "radial_std": self.radial_std,
            "tangential_std": self.tangential_std,
            "rate": self.rate,
            "scale": self.scale,
        }

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        b = _round_up(
            self.scale * math.hypot(1.0 + 5.0 * self.radial_std, 5.0 * self.tangential_std)
        )
        return (-b, b, -b, b)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        label = torch.randint(self.n_classes, (n,), generator=generator, device=dev)
        std = torch.tensor([self.radial_std, self.tangential_std], dtype=_F64, device=dev)
        f = torch.randn(n, 2, generator=generator, device=dev, dtype=_F64) * std
        f[:, 0] += 1.0
        angle = label.to(_F64) * (2.0 * math.pi / self.n_classes) + self.rate * torch.exp(f[:, 0])
        cos, sin = torch.cos(angle), torch.sin(angle)
        x = torch.stack([f[:, 0] * cos + f[:, 1] * sin, -f[:, 0] * sin + f[:, 1] * cos], dim=1)
        return self.scale * x

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density ``(N,)`` of points ``x`` of shape ``(N, 2)`` (change of variables)."""
        x = _check_points(x)
        return torch.cat(
            [self._log_prob(c) for c in x.to(_F64).split(16 * _CHUNK)]
            or [x.new_zeros(0, dtype=_F64)]
        ).to(x.dtype)

    def _h(self, f1: Tensor, phase: Tensor, rho: Tensor) -> Tensor:
        """``f_1 - |u| cos(psi + a(f_1))``: zero exactly at the preimages of ``u``."""
        return f1 - rho * torch.cos(phase + self.rate * torch.exp(f1))

    def _dh(self, f1: Tensor, phase: Tensor, rho: Tensor) -> Tensor:
        """``h'(f_1) = 1 + |u| a sin(psi + a)``, ``a = rate exp(f_1)``: the Jacobian factor."""
        a = self.rate * torch.exp(f1)
        return 1.0 + rho * a * torch.sin(phase + a)

    def _newton(
        self, lo: Tensor, hi: Tensor, lo_neg: Tensor, phase: Tensor, rho: Tensor, n_iter: int
    ) -> Tensor:
        """Safeguarded Newton for the one root of ``h`` in each bracket ``[lo, hi]``.

        ``lo_neg``: whether ``h(lo) <= 0``. A step that leaves the bracket is
        replaced by bisection, so every iteration at least halves the bracket.
        """
        root = 0.5 * (lo + hi)
        for _ in range(n_iter):
            h_root = self._h(root, phase, rho)
            right = (h_root <= 0) == lo_neg
            lo, hi = torch.where(right, root, lo), torch.where(right, hi, root)
            step = root - h_root / self._dh(root, phase, rho)
            inside = (step >= lo) & (step <= hi)
            root = torch.where(inside, step, 0.5 * (lo + hi))
        return root

    def _classify(
        self,
        lo: Tensor,
        hi: Tensor,
        h_lo: Tensor,
        h_hi: Tensor,
        phase: Tensor,
        rho: Tensor,
        last: bool,
    ) -> tuple[Tensor, Tensor]:
        """Masks of cells done (exactly one root) and of cells to halve.

        With ``|h''| <= |u| a (a + 1)`` (``a`` at ``hi``), ``|h'(mid)|`` above
        that bound times half the width makes ``h`` monotone on the cell: one
        root if its ends differ in sign, else none. Other cells are halved
        unless ``|h'| <= 1 + |u| a`` rules out a dip to zero between two ends of
        one sign. On the last level every cell with a sign change is done.
        """
        width = hi - lo
        a_hi = self.rate * torch.exp(hi)
        monotone = (
            self._dh(0.5 * (lo + hi), phase, rho).abs() > rho * a_hi * (a_hi + 1) * width / 2
        )
        change = (h_lo <= 0) != (h_hi <= 0)
        could_dip = h_lo.abs() + h_hi.abs() <= (1.0 + rho * a_hi) * width
        if last:
            return change, torch.zeros_like(change)
        return monotone & change, ~monotone & (change | could_dip)

    def _log_prob(self, x: Tensor) -> Tensor:
        n, k_blades = x.shape[0], self.n_classes
        dev = x.device
        u = x / self.scale
        rho = torch.linalg.vector_norm(u, dim=1).clamp_min(1e-300)
        psi = torch.atan2(u[:, 1], u[:, 0])
        blade = torch.arange(k_blades, dtype=_F64, device=dev) * (2 * math.pi / k_blades)
        # Cells of a grid over [-|u|, |u|] (h(-|u|) <= 0 <= h(|u|)), one set per blade.
        edges = rho[:, None] * torch.linspace(-1.0, 1.0, self._n_grid + 1, dtype=_F64, device=dev)
        phase = (psi[:, None] + blade)[..., None]  # (n, K, 1)
        h_edges = self._h(edges[:, None, :], phase, rho[:, None, None])  # (n, K, G + 1)
        lo, hi = edges[:, None, :-1], edges[:, None, 1:]
        h_lo, h_hi = h_edges[..., :-1], h_edges[..., 1:]
        final, split = self._classify(lo, hi, h_lo, h_hi, phase, rho[:, None, None], False)
        done: list[tuple[Tensor, Tensor]] = []
        for mask in (final, split):
            i_pt, i_k, i_cell = mask.nonzero(as_tuple=True)
            cells = torch.stack(
                [
                    edges[i_pt, i_cell],
                    edges[i_pt, i_cell + 1],
                    h_edges[i_pt, i_k, i_cell],
                    h_edges[i_pt, i_k, i_cell + 1],
                    phase[i_pt, i_k, 0],
                    rho[i_pt],
                ]
            )  # (6, m): lo, hi, h(lo), h(hi), phase, |u|
            done.append((cells, i_pt))
        cells, pt = done.pop()
        for level in range(1, self._n_levels + 1):
            if pt.numel() == 0:
                break
            lo, hi, h_lo, h_hi, ph, rr = cells
            mid = 0.5 * (lo + hi)
            h_mid = self._h(mid, ph, rr)
            cells = torch.cat(
                [
                    torch.stack([lo, mid, h_lo, h_mid, ph, rr]),
                    torch.stack([mid, hi, h_mid, h_hi, ph, rr]),
                ],
                dim=1,
            )
            pt = torch.cat([pt, pt])
            c_lo, c_hi, c_hlo, c_hhi, c_ph, c_rr = cells
            final, split = self._classify(
                c_lo, c_hi, c_hlo, c_hhi, c_ph, c_rr, level == self._n_levels
            )
            idx = final.nonzero().squeeze(1)
            done.append((cells.index_select(1, idx), pt.index_select(0, idx)))
            idx = split.nonzero().squeeze(1)
            cells, pt = cells.index_select(1, idx), pt.index_select(0, idx)
        cells = torch.cat([c for c, _ in done], dim=1)
        pt = torch.cat([p for _, p in done])
        lo, hi, h_lo, _, ph, rr = cells
        lo_neg = h_lo <= 0
        root = self._newton(lo, hi, lo_neg, ph, rr, 5)
        # A few roots near the end of their interval converge slowly: finish those.
        slow = (self._h(root, ph, rr).abs() > 1e-13).nonzero().squeeze(1)
        if slow.numel():
            s_lo, s_hi, s_neg, s_ph, s_rr = (
                t.index_select(0, slow) for t in (lo, hi, lo_neg, ph, rr)
            )
            root = root.index_copy(0, slow, self._newton(s_lo, s_hi, s_neg, s_ph, s_rr, 40))
        e = self.rate * torch.exp(root)
        f2 = rr * torch.sin(ph + e)
        det = (1.0 + e * f2).abs()
        log_gauss = (
            -0.5 * ((root - 1.0) / self.radial_std) ** 2
            - 0.5 * (f2 / self.tangential_std) ** 2
            - _LOG_2PI
            - math.log(self.radial_std * self.tangential_std)
        )
        terms = log_gauss - torch.log(det)
        # log-sum-exp over the preimages of each point.
        top = torch.full((n,), -math.inf, dtype=_F64, device=dev)
        top = top.scatter_reduce(0, pt, terms, reduce="amax")
        shift = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        total = torch.zeros(n, dtype=_F64, device=dev).index_add(
            0, pt, torch.exp(terms - shift[pt])
        )
        return torch.log(total) + shift - 2.0 * math.log(self.scale) - math.log(k_blades)


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
