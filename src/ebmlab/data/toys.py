"""Two-dimensional toy distributions for training, sampling and plotting demos.

Every toy is a :class:`Toy`: :meth:`Toy.sample` draws points of shape ``(n, 2)``
from an explicit ``torch.Generator`` (never the global RNG), and
:attr:`Toy.bounds` is a box holding essentially all of the mass (the support
widened by five noise standard deviations, rounded up to 0.1), for plots and
quadrature grids.

Toys with a closed-form density (``has_log_prob`` is True) return the exact,
normalised log density from :meth:`Toy.log_prob` and a Monte-Carlo estimate of
their differential entropy from :meth:`Toy.entropy`:

=============== ======== ================================================
name            log_prob density
=============== ======== ================================================
eight_gaussians exact    mixture of 8 isotropic Gaussians on a circle
checkerboard    exact    uniform on the 8 black unit squares of [-2, 2]^2
rings           exact    concentric rings with Gaussian radial noise
two_moons       none     arcs plus Gaussian noise
spirals         none     two spiral arms plus Gaussian noise
pinwheel        none     curved blades (Johnson et al., 2016)
=============== ======== ================================================

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
    horizontally and ``[-1, 1]`` vertically. No closed-form density.

    Arguments:
        noise: Standard deviation of the Gaussian noise, before scaling.

    Example:
        >>> TwoMoons().sample(4, seed=0).shape
        torch.Size([4, 2])
    """

    name = "two_moons"
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


class Spirals(Toy):
    """Two interleaved Archimedean spirals with Gaussian noise.

    A point picks an arm (probability 1/2), ``u`` uniform on ``[0, 1)``, the
    angle ``theta = 2 pi n_turns sqrt(u)`` and the radius
    ``radius * sqrt(u)`` (about uniform along the arm); the second arm is the
    first rotated by pi. Gaussian noise of std ``noise`` is added. With the
    defaults the arms are 0.83 apart and the data fit in about ``[-3, 3]^2``.
    No closed-form density.

    Arguments:
        noise: Standard deviation of the Gaussian noise.
        n_turns: Number of turns of each arm.
        radius: Outer radius of the arms.

    Example:
        >>> Spirals().sample(4, seed=0).shape
        torch.Size([4, 2])
    """

    name = "spirals"

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


class Pinwheel(Toy):
    """Pinwheel: ``n_classes`` curved blades (Johnson et al., 2016).

    Blade ``k`` draws features ``f = (1 + radial_std * e1, tangential_std * e2)``
    and rotates them by ``-(2 pi k / n_classes + rate * exp(f_1))``, so blades
    bend more the further out they reach; the result is multiplied by ``scale``
    (1.5 puts about 99.7% of the mass within radius 2.9). No closed-form
    density.

    Arguments:
        n_classes: Number of blades.
        radial_std: Standard deviation along a blade.
        tangential_std: Standard deviation across a blade.
        rate: How fast blades bend with distance.
        scale: Final scale factor.

    Example:
        >>> Pinwheel().sample(4, seed=0).shape
        torch.Size([4, 2])

    References:
        Johnson, Duvenaud, Wiltschko, Datta, Adams (2016). Composing graphical
        models with neural networks for structured representations and fast
        inference. https://arxiv.org/abs/1603.06277
    """

    name = "pinwheel"

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
