"""Tractable base distributions for annealed importance sampling.

A base is an :class:`~ebmlab.energies.Energy` that also knows its exact
``log_z`` and draws exact samples with ``sample(n, generator=)``. Any energy
with those two members works (``Gaussian``, ``GaussianMixture``...); this
module adds the ones AIS builds for itself:

- :class:`DiagonalGaussian`: independent normals for any event shape;
- :func:`fit_gaussian`: a Gaussian fitted to data (full covariance when the
  data allow, else diagonal), optionally widened;
- :func:`pilot_gaussian`: with the event shape alone, a broad Gaussian placed
  and shaped by a short adaptive MALA run on the target itself;
- :class:`UniformDiscrete`: the uniform distribution over a discrete domain.

AIS itself uses the Gaussian bases through an :class:`AffineMap`
``x = mean + L u``: it anneals in the whitened coordinates ``u`` from
``N(0, c^2 I)``, where the target is close to isotropic and HMC mixes along
every direction at one step size (equivalent to a Gaussian base with a full
mass matrix); ``log Z`` picks up ``log |det L|``.
"""

from __future__ import annotations

__all__ = [
    "AffineMap",
    "DiagonalGaussian",
    "FullGaussian",
    "UniformDiscrete",
    "Whitened",
    "fit_affine",
    "fit_gaussian",
    "pilot_affine",
    "pilot_gaussian",
]

import math
from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from ..energies import Energy, Gaussian
from ..samplers import MALA
from ._adapt import StepSizeAdapter
from .domain import Domain, parse_domain


class DiagonalGaussian(Energy):
    """Independent normals ``E(x) = sum ((x - mean) / std)^2 / 2`` over any event shape.

    Arguments:
        mean: Mean, shaped like one event.
        std: Standard deviations, positive, broadcastable to the event shape.

    Example:
        >>> base = DiagonalGaussian(torch.zeros(2, 3), torch.ones(2, 3))
        >>> tuple(base.sample(5).shape), round(float(base.log_z), 4)  # 3 log(2 pi)
        ((5, 2, 3), 5.5136)
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Tensor, std: Tensor | float) -> None:
        mean = torch.as_tensor(mean)
        if not mean.is_floating_point():
            mean = mean.to(torch.get_default_dtype())
        std_t = torch.as_tensor(std, dtype=mean.dtype, device=mean.device).expand_as(mean)
        if not bool((std_t > 0).all()) or not bool(torch.isfinite(std_t).all()):
            raise ValueError("std must be positive and finite")
        super().__init__(tuple(mean.shape) if mean.dim() else (1,))
        self.register_buffer("mean", mean.reshape(self.event_shape).clone())
        self.register_buffer("std", std_t.reshape(self.event_shape).clone().contiguous())

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` of ``x`` ``(N, *event_shape)``."""
        z = (x - self.mean) / self.std
        return 0.5 * z.reshape(x.shape[0], -1).pow(2).sum(1)

    @property
    def log_z(self) -> Tensor:
        """``D/2 log(2 pi) + sum log std``, a 0-d tensor."""
        return 0.5 * self.dim * math.log(2 * math.pi) + torch.log(self.std).sum()

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Exact samples, shape ``(n, *event_shape)``."""
        z = torch.randn(
            (n, *self.event_shape), generator=generator, dtype=self.mean.dtype,
            device=self.mean.device,
        )  # fmt: skip
        return self.mean + self.std * z

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}"


class FullGaussian(Energy):
    """A full-covariance :class:`~ebmlab.energies.Gaussian` over any event shape.

    Events are flattened to ``D`` coordinates for the Gaussian and reshaped back.

    Example:
        >>> base = FullGaussian(torch.zeros(4), torch.eye(4), (2, 2))
        >>> tuple(base.sample(3).shape), tuple(base(torch.zeros(3, 2, 2)).shape)
        ((3, 2, 2), (3,))
    """

    def __init__(self, mean: Tensor, covariance: Tensor, event_shape: tuple[int, ...]) -> None:
        super().__init__(event_shape)
        self.gaussian = Gaussian(mean.reshape(-1), covariance)
        if self.gaussian.mean.numel() != self.dim:
            raise ValueError(
                f"mean has {self.gaussian.mean.numel()} entries, event_shape {event_shape} "
                f"needs {self.dim}"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` of ``x`` ``(N, *event_shape)``."""
        return self.gaussian(x.reshape(x.shape[0], -1))

    @property
    def log_z(self) -> Tensor:
        """Exact log normalizer, a 0-d tensor."""
        return self.gaussian.log_z

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Exact samples, shape ``(n, *event_shape)``."""
        return self.gaussian.sample(n, generator=generator).reshape((n, *self.event_shape))


class UniformDiscrete(Energy):
    """The uniform distribution over a discrete domain: ``E = 0``, ``Z = K ** n_vars``.

    Arguments:
        event_shape: Shape of one configuration.
        domain: A discrete domain (``"binary"``, ``"spin"``, ``K``, values, ``"onehot"``).
        dtype: Dtype of samples and energies.
        device: Their device.

    Example:
        >>> u = UniformDiscrete((3,), "binary")
        >>> round(float(u.log_z), 4), tuple(u.sample(2).shape)  # 3 log 2
        (2.0794, (2, 3))
    """

    def __init__(
        self,
        event_shape: tuple[int, ...] | int,
        domain: Any = "binary",
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(event_shape)
        d = parse_domain(domain, self.event_shape)
        if not d.is_discrete:
            raise ValueError(f"UniformDiscrete needs a discrete domain, got {domain!r}")
        self.domain_spec: Domain = d
        dtype = dtype or torch.get_default_dtype()
        self.register_buffer("alts", d.alternatives(self.event_shape, dtype, device))

    alts: Tensor

    @property
    def domain(self) -> Domain:
        """The discrete domain (so enumeration and Gibbs know it)."""
        return self.domain_spec

    def forward(self, x: Tensor) -> Tensor:
        """Zeros, shape ``(N,)``."""
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    @property
    def log_z(self) -> Tensor:
        """``n_vars log K``, a 0-d tensor."""
        return torch.tensor(
            self.domain_spec.log_n_states(self.event_shape),
            dtype=self.alts.dtype,
            device=self.alts.device,
        )

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Uniform configurations, shape ``(n, *event_shape)``."""
        k = self.alts.shape[0]
        n_vars = self.domain_spec.n_vars(self.event_shape)
        idx = torch.randint(k, (n, n_vars), generator=generator, device=self.alts.device)
        return self.alts[idx].reshape((n, *self.event_shape))

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, domain={self.domain_spec.name}"


class AffineMap:
    """The affine change of variables ``x = mean + L u`` used to precondition AIS.

    ``u`` is flat, shape ``(N, D)``; ``x`` has the event shape. ``L`` is a
    lower-triangular ``(D, D)`` factor or a ``(D,)`` diagonal.

    Arguments:
        mean: Shift, ``D`` entries (any shape).
        factor: ``(D, D)`` lower-triangular or ``(D,)`` positive diagonal.
        event_shape: Shape of one ``x``.

    Example:
        >>> m = AffineMap(torch.ones(2), torch.tensor([2.0, 3.0]), (2,))
        >>> m.to_x(torch.ones(1, 2)).tolist(), round(m.log_det, 4)  # log 6
        ([[3.0, 4.0]], 1.7918)
    """

    def __init__(self, mean: Tensor, factor: Tensor, event_shape: tuple[int, ...]) -> None:
        self.mean = mean.reshape(-1)
        self.factor = factor
        self.event_shape = tuple(event_shape)
        self.is_diagonal = factor.dim() == 1
        diag = factor if self.is_diagonal else torch.diagonal(factor)
        if not bool((diag > 0).all()):
            raise ValueError("the factor of an AffineMap needs a positive diagonal")
        self.log_det = float(torch.log(diag.double()).sum())

    @property
    def dim(self) -> int:
        """Number of coordinates ``D``."""
        return self.mean.numel()

    @property
    def std(self) -> Tensor:
        """Per-coordinate standard deviation of ``x`` for ``u ~ N(0, I)``, shape ``(D,)``."""
        return self.factor.abs() if self.is_diagonal else self.factor.norm(dim=1)

    def to(self, dtype: torch.dtype, device: torch.device | str | None = None) -> AffineMap:
        """A copy with tensors in ``dtype`` on ``device``."""
        return AffineMap(
            self.mean.to(dtype=dtype, device=device),
            self.factor.to(dtype=dtype, device=device),
            self.event_shape,
        )

    def to_x(self, u: Tensor) -> Tensor:
        """``(N, D) -> (N, *event_shape)``."""
        y = u * self.factor if self.is_diagonal else u @ self.factor.T
        return (self.mean + y).reshape((u.shape[0], *self.event_shape))

    def to_u(self, x: Tensor) -> Tensor:
        """``(N, *event_shape) -> (N, D)``."""
        r = x.reshape(x.shape[0], -1) - self.mean
        if self.is_diagonal:
            return r / self.factor
        return torch.linalg.solve_triangular(self.factor, r.T, upper=False).T

    def gaussian(self, inflation: float = 1.0) -> Energy:
        """The Gaussian ``N(mean, inflation^2 L L^T)`` as a base energy."""
        mean = self.mean.reshape(self.event_shape)
        if self.is_diagonal:
            return DiagonalGaussian(mean, inflation * self.factor.reshape(self.event_shape))
        cov = inflation**2 * self.factor @ self.factor.T
        return FullGaussian(self.mean, 0.5 * (cov + cov.T), self.event_shape)


class Whitened:
    """An energy seen through an :class:`AffineMap`: ``u -> E(mean + L u)``.

    ``Z_x = Z_u |det L|``, so ``log Z = log Z_u + log_det``. ``event_shape``
    is ``(D,)``.
    """

    def __init__(self, energy: EnergyFn, amap: AffineMap) -> None:
        self.energy = energy
        self.amap = amap
        self.event_shape = (amap.dim,)

    def __call__(self, u: Tensor) -> Tensor:
        return self.energy(self.amap.to_x(u))


def fit_affine(
    samples: Tensor,
    *,
    diagonal: bool | None = None,
    shrinkage: float = 1e-3,
) -> AffineMap:
    """Mean and Cholesky factor of the covariance of samples ``(N, *event_shape)``.

    The covariance is shrunk towards its mean variance (``shrinkage``) and is
    full when ``N > 4 D`` and ``D <= 1024`` (default), else diagonal.
    Computed in float64; the result has the samples' dtype.
    """
    if samples.dim() < 2 or samples.shape[0] < 2:
        raise ValueError(
            f"samples must have shape (N, *event_shape) with N >= 2, got {tuple(samples.shape)}"
        )
    if not 0 <= shrinkage < 1:
        raise ValueError(f"shrinkage must be in [0, 1), got {shrinkage}")
    dtype = samples.dtype if samples.is_floating_point() else torch.get_default_dtype()
    event_shape = tuple(samples.shape[1:])
    x = samples.detach().reshape(samples.shape[0], -1).double()
    if not bool(torch.isfinite(x).all()):
        raise ValueError("samples must be finite to fit a Gaussian")
    n, d = x.shape
    mean = x.mean(0)
    var = x.var(0)
    floor = max(float(var.mean()), 1e-12)
    if diagonal is None:
        diagonal = not (n > 4 * d and d <= 1024)
    if diagonal:
        std = (var * (1 - shrinkage) + shrinkage * floor).clamp_min(1e-6 * floor).sqrt()
        return AffineMap(mean.to(dtype), std.to(dtype), event_shape)
    xc = x - mean
    cov = xc.T @ xc / (n - 1)
    eye = torch.eye(d, dtype=cov.dtype, device=x.device)
    cov = (1 - shrinkage) * cov + shrinkage * floor * eye
    chol, info = torch.linalg.cholesky_ex(0.5 * (cov + cov.T))
    if int(info) != 0:  # pragma: no cover - shrinkage keeps it positive definite
        return AffineMap(mean.to(dtype), var.clamp_min(1e-6 * floor).sqrt().to(dtype), event_shape)
    return AffineMap(mean.to(dtype), chol.contiguous().to(dtype), event_shape)


def fit_gaussian(
    data: Tensor,
    *,
    inflation: float = 1.0,
    diagonal: bool | None = None,
    shrinkage: float = 1e-3,
) -> Energy:
    """A Gaussian base fitted to data by moments, optionally widened.

    Arguments:
        data: Samples, shape ``(N, *event_shape)``, ``N >= 2``, finite.
        inflation: Multiply every standard deviation by this (``> 1`` makes
            the base broader than the data: safer for AIS).
        diagonal: Diagonal covariance; default: full when ``N > 4 D`` and
            ``D <= 1024``, else diagonal.
        shrinkage: Share of the mean variance mixed into the covariance,
            keeping it well conditioned.

    Returns:
        A :class:`FullGaussian` or :class:`DiagonalGaussian` (both with
        ``log_z`` and ``sample``) in the dtype and on the device of ``data``.

    Example:
        >>> x = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) * 2
        >>> base = fit_gaussian(x)
        >>> type(base).__name__, tuple(base.sample(4).shape)
        ('FullGaussian', (4, 3))
    """
    if not inflation > 0:
        raise ValueError(f"inflation must be > 0, got {inflation}")
    return fit_affine(data, diagonal=diagonal, shrinkage=shrinkage).gaussian(inflation)


def pilot_affine(
    energy: EnergyFn,
    event_shape: tuple[int, ...],
    *,
    n_chains: int = 128,
    n_rounds: int = 3,
    n_steps: int = 150,
    init_scale: float = 1.0,
    max_scale: float = 10.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[AffineMap, dict[str, Any]]:
    """Locate and shape the target's mass from the event shape alone, by adaptive MALA.

    ``n_chains`` chains start from ``r z`` with ``z ~ N(0, I)`` and radii ``r``
    spread log-uniformly over ``[init_scale, max_scale]`` (a multi-start, so
    that chains settle in basins near and far from the origin); each of
    ``n_rounds`` rounds runs ``n_steps`` MALA steps (step size adapted
    towards acceptance 0.57) in the coordinates whitened by the previous
    round's moments, then refits mean and covariance to the second half of
    the round. Preconditioning this way lets the later rounds mix along
    elongated directions the first round crawls through.

    Returns:
        ``(amap, info)``: the fitted :class:`AffineMap` and the pilot's last
        step size and acceptance.
    """
    dtype = dtype or torch.get_default_dtype()
    d = math.prod(event_shape)
    x = torch.randn((n_chains, *event_shape), generator=generator, dtype=dtype, device=device)
    # Multi-start: radii spread log-uniformly over [init_scale, max_scale] so that
    # chains fall into basins near and far from the origin.
    frac = torch.rand(n_chains, generator=generator, dtype=dtype, device=x.device)
    radii = init_scale * (max_scale / init_scale) ** frac
    x = x * radii.reshape((n_chains,) + (1,) * len(event_shape))
    amap = AffineMap(
        torch.zeros(d, dtype=dtype, device=x.device),
        torch.full((d,), float(init_scale), dtype=dtype, device=x.device),
        event_shape,
    )
    step = 0.5 * d ** (-1 / 3)
    acc = 0.0
    for r in range(n_rounds):
        target = Whitened(energy, amap)
        u = amap.to_u(x)
        adapter = StepSizeAdapter(step, target=0.57)
        sampler = MALA(adapter.step_size)
        state = sampler.init(u, target)
        kept: list[Tensor] = []
        for t in range(n_steps):
            sampler.step_size = adapter.step_size
            state, info = sampler.step(state, target, generator=generator)
            acc = float(info.acceptance_rate.mean())
            adapter.update(acc)
            if t >= n_steps // 2 and (t - n_steps // 2) % 5 == 0:
                kept.append(amap.to_x(state.x))
        x = amap.to_x(state.x)
        draws = torch.cat(kept)
        finite = torch.isfinite(draws.reshape(draws.shape[0], -1)).all(1)
        if int(finite.sum()) < 2:
            raise ValueError("pilot MCMC for the AIS base produced only non-finite states")
        amap = fit_affine(draws[finite], diagonal=True if r == 0 else None, shrinkage=1e-2)
        x = torch.where(torch.isfinite(x), x, amap.mean.reshape(event_shape))
        step = adapter.step_size
    return amap, {"pilot_step_size": step, "pilot_acceptance": acc}


def pilot_gaussian(
    energy: EnergyFn,
    event_shape: tuple[int, ...],
    *,
    inflation: float = 2.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    **pilot: Any,
) -> tuple[Energy, dict[str, Any]]:
    """A broad Gaussian base found from the event shape alone.

    The moments of a short adaptive MALA run on the target itself
    (:func:`pilot_affine`), the standard deviations widened by ``inflation``.
    The base only needs to cover the target's mass roughly: AIS corrects the
    rest.

    Returns:
        ``(base, info)``.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> target = Gaussian(torch.full((2,), 3.0), torch.eye(2))
        >>> g = torch.Generator().manual_seed(0)
        >>> base, _ = pilot_gaussian(target, (2,), generator=g, n_chains=32, n_steps=60)
        >>> bool((base.gaussian.mean - 3.0).abs().max() < 0.5)
        True
    """
    if not inflation > 0:
        raise ValueError(f"inflation must be > 0, got {inflation}")
    amap, info = pilot_affine(
        energy, event_shape, generator=generator, dtype=dtype, device=device, **pilot
    )
    return amap.gaussian(inflation), info
