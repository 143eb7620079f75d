"""The toy-distribution contract, :class:`Toy`, and the helpers the toys share.

A toy draws points from an explicit ``torch.Generator``, knows a box holding
essentially all of its mass and, when ``has_log_prob``, its exact normalised log
density (closed form or quadrature; :func:`_log_curve_density` integrates
Gaussian noise around a curve). The toys themselves are in
:mod:`ebmlab.data.toys` and :mod:`ebmlab.data.pinwheel`.
"""

from __future__ import annotations

__all__ = ["Toy"]

import abc
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

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
        known = sorted(c.name for c in Toy.__subclasses__() if c.has_log_prob)
        raise NotImplementedError(
            f"toy {self.name!r} has no closed-form density (has_log_prob is False); "
            f"toys with one: {', '.join(known)}"
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
