"""Score matching: fit the score ``grad_x log p = -grad_x E`` without sampling the model.

The normalizer ``Z`` does not depend on ``x``, so it drops out of the score:
these objectives never need MCMC negatives. Three forms, all minimized by the
data distribution's energy (up to a constant):

* :class:`ScoreMatching` (Hyvärinen 2005): by integration by parts,
  ``E_data[ 1/2 |grad E(x)|^2 - tr(Hess E(x)) ]``; the Hessian trace is
  computed exactly (one extra backward pass per dimension) for small
  dimension, and estimated by Hutchinson's ``v^T (Hess E) v`` for large.
* :class:`SlicedScoreMatching` (Song et al. 2019): the same objective seen
  along random directions ``v``; the variance-reduced form replaces
  ``(v^T grad E)^2 / 2`` by its expectation ``|grad E|^2 / 2``. Cost: one
  Hessian-vector product per projection, independent of dimension.
* :class:`DenoisingScoreMatching` (Vincent 2011): match the score of the data
  smoothed by Gaussian noise ``x~ = x + sigma eps``, whose conditional score
  ``-eps / sigma`` is known; no second derivatives of ``E`` in ``x``, only the
  usual backward pass through ``grad E``. It fits the *smoothed* density. With
  several noise levels each point draws a level and the per-level losses get
  the usual ``sigma^2`` weighting (Song & Ermon 2019).
* :class:`NoiseConditionalScoreMatching`: denoising score matching of a
  noise-conditional energy ``E_sigma(x)`` (:class:`~ebmlab.energies.NoiseConditionalEnergy`)
  over a continuum of levels, ``log sigma`` uniform in a range, optionally
  with half of every batch at one level of interest (the denoiser's).

Every objective maps ``(energy, x_pos, state, generator=)`` to
``(loss, diagnostics, state)`` like
:class:`~ebmlab.objectives.ContrastiveDivergence`; ``state`` is passed through
(these objectives keep none). The loss's gradient reaches the energy's
parameters through ``grad_x E`` (built with ``create_graph=True``).

Sign convention: low energy = high probability; the model score is ``-grad E``.
"""

from __future__ import annotations

__all__ = [
    "HESSIAN_METHODS",
    "DenoisingScoreMatching",
    "NoiseConditionalScoreMatching",
    "ScoreMatching",
    "ScoreMatchingDiagnostics",
    "SlicedScoreMatching",
]

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._types import EnergyFn

#: How exact score matching gets the Hessian trace: ``exact`` (one backward pass per
#: dimension), ``hutchinson`` (random probes) or ``auto`` (exact in low dimension).
HESSIAN_METHODS = ("auto", "exact", "hutchinson")
PROJECTIONS = ("rademacher", "gaussian")


class ScoreMatchingDiagnostics(NamedTuple):
    """Diagnostics of one score-matching evaluation (0-d tensors, detached).

    Attributes:
        loss: The scalar loss that was returned.
        energy_pos: Mean energy of the data batch (for denoising score matching,
            of the noisy points the loss used: they are within ``sigma`` of the
            data, and evaluating the clean batch would cost a forward pass).
        score_norm: Mean of ``|grad E|^2 / 2`` at the points the loss used
            (the noisy points for denoising score matching).
        divergence: Mean Hessian trace ``tr(Hess E)`` (exact or estimated);
            for denoising score matching the mean of ``sigma eps . grad E(x~)``,
            whose expectation is ``sigma^2 tr(Hess E)`` for small noise.
    """

    loss: Tensor
    energy_pos: Tensor
    score_norm: Tensor
    divergence: Tensor


def _flat(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1)


def _energy_and_grad_graph(energy: EnergyFn, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(x_leaf, E(x), grad_x E)`` with the graph kept for differentiating ``grad E``."""
    x_leaf = x.detach().requires_grad_(True)
    with torch.enable_grad():
        e = energy(x_leaf)
        (g,) = torch.autograd.grad(e.sum(), x_leaf, create_graph=True)
    return x_leaf, e, g


def _projections(like: Tensor, kind: str, generator: torch.Generator | None) -> Tensor:
    """Random directions shaped like ``like`` with ``E[v v^T] = I``."""
    v = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    if kind == "rademacher":
        v = torch.sign(v)
        v = torch.where(v == 0, torch.ones_like(v), v)
    return v


class ScoreMatching:
    """Exact (implicit) score matching, Hyvärinen (2005).

    Minimizes

    .. math:: J(\\theta) = \\mathbb E_{x \\sim p_{data}}\\Big[\\tfrac12
              \\lVert \\nabla_x E_\\theta(x) \\rVert^2
              - \\operatorname{tr} \\nabla_x^2 E_\\theta(x)\\Big],

    which equals ``1/2 E|grad log p_data + grad E|^2`` up to a constant
    (integration by parts; needs the data density to vanish at the boundary).
    The trace is exact with ``D`` extra backward passes (``hessian="exact"``)
    or estimated without bias by Hutchinson's ``v^T (Hess E) v`` with
    Rademacher ``v`` (``hessian="hutchinson"``, ``n_probes`` vectors, one
    Hessian-vector product each). ``"auto"`` is exact up to ``exact_max_dim``
    dimensions.

    Arguments:
        hessian: ``"auto"``, ``"exact"`` or ``"hutchinson"``.
        n_probes: Probe vectors per point for Hutchinson's estimator.
        exact_max_dim: Largest dimension ``"auto"`` computes exactly.

    Example:
        >>> from ebmlab.energies import MLPEnergy
        >>> sm = ScoreMatching()
        >>> loss, diag, state = sm(MLPEnergy(2, hidden=(8,)), torch.randn(16, 2), None)
        >>> loss.shape, diag.divergence.shape, state is None
        (torch.Size([]), torch.Size([]), True)

    References:
        Hyvärinen, A. (2005). Estimation of non-normalized statistical models by
        score matching. JMLR 6. https://jmlr.org/papers/v6/hyvarinen05a.html
    """

    def __init__(
        self, hessian: str = "auto", *, n_probes: int = 1, exact_max_dim: int = 16
    ) -> None:
        if hessian not in HESSIAN_METHODS:
            raise ValueError(f"hessian must be one of {list(HESSIAN_METHODS)}, got {hessian!r}")
        if int(n_probes) < 1:
            raise ValueError(f"n_probes must be >= 1, got {n_probes}")
        if int(exact_max_dim) < 1:
            raise ValueError(f"exact_max_dim must be >= 1, got {exact_max_dim}")
        self.hessian = hessian
        self.n_probes = int(n_probes)
        self.exact_max_dim = int(exact_max_dim)

    def __repr__(self) -> str:
        return (
            f"ScoreMatching(hessian={self.hessian!r}, n_probes={self.n_probes}, "
            f"exact_max_dim={self.exact_max_dim})"
        )

    def init_state(self, *args: Any, **kwargs: Any) -> None:
        """Score matching keeps no state between updates."""
        return None

    def is_exact(self, dim: int) -> bool:
        """Whether the Hessian trace is computed exactly for dimension ``dim``."""
        return self.hessian == "exact" or (self.hessian == "auto" and dim <= self.exact_max_dim)

    def __call__(
        self,
        energy: EnergyFn,
        x_pos: Tensor,
        state: Any = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, ScoreMatchingDiagnostics, Any]:
        """Loss for one data batch ``x_pos`` of shape ``(B, *event_shape)``.

        Returns:
            ``(loss, diagnostics, state)``; ``state`` is returned unchanged.
        """
        x, e, g = _energy_and_grad_graph(energy, x_pos)
        gf = _flat(g)
        dim = gf.shape[1]
        with torch.enable_grad():
            if self.is_exact(dim):
                trace = torch.zeros_like(gf[:, 0])
                for i in range(dim):
                    (row,) = torch.autograd.grad(gf[:, i].sum(), x, create_graph=True)
                    trace = trace + _flat(row)[:, i]
            else:
                trace = torch.zeros_like(gf[:, 0])
                for _ in range(self.n_probes):
                    v = _projections(g, "rademacher", generator)
                    (hv,) = torch.autograd.grad((g * v).sum(), x, create_graph=True)
                    trace = trace + _flat(hv * v).sum(1)
                trace = trace / self.n_probes
            half_sq = 0.5 * gf.pow(2).sum(1)
            loss = (half_sq - trace).mean()
        diag = ScoreMatchingDiagnostics(
            loss.detach(), e.detach().mean(), half_sq.detach().mean(), trace.detach().mean()
        )
        return loss, diag, state


class SlicedScoreMatching:
    """Sliced score matching, Song, Garg, Shi & Ermon (2019).

    Projects the score-matching objective on random directions ``v`` with
    ``E[v v^T] = I``:

    .. math:: J(\\theta) = \\mathbb E_{x, v}\\Big[ -v^\\top \\nabla_x^2 E_\\theta(x)\\, v
              + \\tfrac12 (v^\\top \\nabla_x E_\\theta(x))^2 \\Big].

    The variance-reduced form (``variance_reduction=True``, SSM-VR) uses the
    exact expectation ``|grad E|^2 / 2`` of the second term. Each projection
    costs one Hessian-vector product, whatever the dimension. With Rademacher
    directions and variance reduction this is exactly score matching with
    Hutchinson's trace estimator.

    Arguments:
        n_projections: Directions per data point.
        variance_reduction: Use the SSM-VR form.
        projection: ``"gaussian"`` (as in the paper) or ``"rademacher"``.

    Example:
        >>> from ebmlab.energies import MLPEnergy
        >>> ssm = SlicedScoreMatching(n_projections=2)
        >>> loss, diag, _ = ssm(MLPEnergy(3, hidden=(8,)), torch.randn(16, 3), None)
        >>> loss.shape
        torch.Size([])

    References:
        Song, Y., Garg, S., Shi, J. & Ermon, S. (2019). Sliced score matching: a
        scalable approach to density and score estimation. UAI.
        https://arxiv.org/abs/1905.07088
    """

    def __init__(
        self,
        n_projections: int = 1,
        *,
        variance_reduction: bool = True,
        projection: str = "gaussian",
    ) -> None:
        if int(n_projections) < 1:
            raise ValueError(f"n_projections must be >= 1, got {n_projections}")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {list(PROJECTIONS)}, got {projection!r}")
        self.n_projections = int(n_projections)
        self.variance_reduction = bool(variance_reduction)
        self.projection = projection

    def __repr__(self) -> str:
        return (
            f"SlicedScoreMatching(n_projections={self.n_projections}, "
            f"variance_reduction={self.variance_reduction}, projection={self.projection!r})"
        )

    def init_state(self, *args: Any, **kwargs: Any) -> None:
        """Sliced score matching keeps no state between updates."""
        return None

    def __call__(
        self,
        energy: EnergyFn,
        x_pos: Tensor,
        state: Any = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, ScoreMatchingDiagnostics, Any]:
        """Loss for one data batch ``x_pos`` of shape ``(B, *event_shape)``.

        Returns:
            ``(loss, diagnostics, state)``; ``state`` is returned unchanged.
        """
        x, e, g = _energy_and_grad_graph(energy, x_pos)
        half_sq = 0.5 * _flat(g).pow(2).sum(1)
        with torch.enable_grad():
            curvature = torch.zeros_like(half_sq)
            projected_sq = torch.zeros_like(half_sq)
            for _ in range(self.n_projections):
                v = _projections(g, self.projection, generator)
                gv = _flat(g * v).sum(1)
                (hv,) = torch.autograd.grad(gv.sum(), x, create_graph=True)
                curvature = curvature + _flat(hv * v).sum(1)
                if not self.variance_reduction:
                    projected_sq = projected_sq + 0.5 * gv.pow(2)
            curvature = curvature / self.n_projections
            second = half_sq if self.variance_reduction else projected_sq / self.n_projections
            loss = (second - curvature).mean()
        diag = ScoreMatchingDiagnostics(
            loss.detach(), e.detach().mean(), half_sq.detach().mean(), curvature.detach().mean()
        )
        return loss, diag, state


class DenoisingScoreMatching:
    """Denoising score matching, Vincent (2011); several noise levels as in
    Song & Ermon (2019).

    Each data point ``x`` draws a level ``sigma`` (uniformly from
    ``noise_levels``, or the single ``noise_std``) and a perturbation
    ``x~ = x + sigma eps``; the model score at ``x~`` should match the score of
    the Gaussian kernel, ``-eps / sigma``. With the ``lambda(sigma) = sigma^2``
    weighting of the per-level losses the objective reads

    .. math:: J(\\theta) = \\mathbb E_{\\sigma, x, \\epsilon}\\Big[\\tfrac12
              \\lVert \\sigma \\nabla_x E_\\theta(x + \\sigma\\epsilon) - \\epsilon
              \\rVert^2\\Big]

    (with one level, Vincent's loss times ``sigma^2``; the minimizer is the
    same). With one level the optimum is the energy of the data smoothed by
    ``N(0, sigma^2 I)``, a bias of order ``sigma^2``; with several levels and an
    energy that does not see ``sigma``, it is a ``sigma^2``-weighted blend of
    the smoothed densities (wide levels help the score far from the data,
    narrow ones set the detail).

    Arguments:
        noise_std: ``sigma`` of the single noise level.
        noise_levels: Several levels (overrides ``noise_std``), e.g.
            geometric from 1.0 down to 0.05.

    Example:
        >>> from ebmlab.energies import MLPEnergy
        >>> dsm = DenoisingScoreMatching(noise_levels=[0.5, 0.1])
        >>> loss, diag, _ = dsm(MLPEnergy(2, hidden=(8,)), torch.randn(16, 2), None)
        >>> loss.shape
        torch.Size([])

    References:
        Vincent, P. (2011). A connection between score matching and denoising
        autoencoders. Neural Computation 23(7).
        Song, Y. & Ermon, S. (2019). Generative modeling by estimating gradients
        of the data distribution. NeurIPS. https://arxiv.org/abs/1907.05600
    """

    def __init__(
        self, noise_std: float = 0.1, *, noise_levels: Sequence[float] | None = None
    ) -> None:
        levels = [noise_std] if noise_levels is None else list(noise_levels)
        if not levels:
            raise ValueError("noise_levels must hold at least one level, got []")
        for s in levels:
            if not (isinstance(s, int | float) and math.isfinite(s) and s > 0):
                name = "noise_std" if noise_levels is None else "noise_levels"
                raise ValueError(f"{name} must be finite numbers > 0, got {s!r}")
        self.noise_levels = tuple(float(s) for s in levels)

    def __repr__(self) -> str:
        return f"DenoisingScoreMatching(noise_levels={list(self.noise_levels)})"

    def init_state(self, *args: Any, **kwargs: Any) -> None:
        """Denoising score matching keeps no state between updates."""
        return None

    def __call__(
        self,
        energy: EnergyFn,
        x_pos: Tensor,
        state: Any = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, ScoreMatchingDiagnostics, Any]:
        """Loss for one data batch ``x_pos`` of shape ``(B, *event_shape)``.

        Returns:
            ``(loss, diagnostics, state)``; ``state`` is returned unchanged.
        """
        b = x_pos.shape[0]
        shape = (b,) + (1,) * (x_pos.dim() - 1)
        kw: dict[str, Any] = {"dtype": x_pos.dtype, "device": x_pos.device}
        if len(self.noise_levels) == 1:
            sigma = torch.full(shape, self.noise_levels[0], **kw)
        else:
            levels = torch.tensor(self.noise_levels, **kw)
            pick = torch.randint(len(levels), (b,), generator=generator, device=x_pos.device)
            sigma = levels[pick].reshape(shape)
        eps = torch.randn(x_pos.shape, generator=generator, **kw)
        _, e, g = _energy_and_grad_graph(energy, x_pos.detach() + sigma * eps)
        with torch.enable_grad():
            residual = _flat(sigma * g - eps)
            loss = 0.5 * residual.pow(2).sum(1).mean()
        sg = _flat(sigma * g).detach()
        diag = ScoreMatchingDiagnostics(
            loss.detach(),
            e.detach().mean(),
            (0.5 * _flat(g).detach().pow(2).sum(1)).mean(),
            (sg * _flat(eps)).sum(1).mean(),
        )
        return loss, diag, state


class NoiseConditionalScoreMatching:
    """Denoising score matching of ``E_sigma(x)`` for ``log sigma`` uniform in a range.

    Each row of the batch draws ``log sigma ~ U[log sigma_min, log sigma_max]``
    (with ``focus``, the first half of the batch is at ``focus`` instead), is
    noised ``x~ = x + sigma eps`` and contributes
    ``|sigma grad E_sigma(x~) - eps|^2 / 2``.

    Arguments:
        sigma_min: Smallest noise level (``> 0``).
        sigma_max: Largest noise level (``> sigma_min``).
        focus: A level that half of every batch is trained at (``None``: none).

    Example:
        >>> from ebmlab.energies import NoiseConditionalEnergy, make_mlp
        >>> e = NoiseConditionalEnergy(make_mlp([3, 8, 1], "silu", torch.Generator()))
        >>> loss, diag, _ = NoiseConditionalScoreMatching(0.05, 1.0)(e, torch.randn(6, 2), None)
        >>> loss.shape
        torch.Size([])
    """

    def __init__(self, sigma_min: float, sigma_max: float, *, focus: float | None = None) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        if focus is not None and not focus > 0:
            raise ValueError(f"focus must be > 0 or None, got {focus}")
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.focus = None if focus is None else float(focus)

    def __repr__(self) -> str:
        return (
            f"NoiseConditionalScoreMatching(sigma_min={self.sigma_min:g}, "
            f"sigma_max={self.sigma_max:g}, focus={self.focus})"
        )

    def init_state(self, *args: Any, **kwargs: Any) -> None:
        """No state between updates."""
        return None

    def __call__(
        self,
        energy: Any,
        x_pos: Tensor,
        state: Any = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, ScoreMatchingDiagnostics, Any]:
        """Loss for one batch ``x_pos`` of shape ``(B, *event_shape)`` (rows ``(B, D)`` or
        images ``(B, C, H, W)``); ``energy(x, sigma) -> (B,)``."""
        b = x_pos.shape[0]
        log_lo, log_hi = math.log(self.sigma_min), math.log(self.sigma_max)
        u = torch.rand(b, generator=generator, dtype=x_pos.dtype, device=x_pos.device)
        log_sigma = log_lo + u * (log_hi - log_lo)
        if self.focus is not None:
            log_sigma[: b // 2] = math.log(self.focus)
        sigma = log_sigma.exp()
        eps = torch.randn(x_pos.shape, generator=generator, dtype=x_pos.dtype, device=x_pos.device)
        s = sigma.reshape((b,) + (1,) * (x_pos.dim() - 1))
        xt = (x_pos.detach() + s * eps).requires_grad_(True)
        with torch.enable_grad():
            e = energy(xt, sigma)
            (g,) = torch.autograd.grad(e.sum(), xt, create_graph=True)
            loss = 0.5 * _flat(s * g - eps).pow(2).sum(1).mean()
        g = _flat(g)
        eps = _flat(eps)
        sg = (sigma[:, None] * g).detach()
        diag = ScoreMatchingDiagnostics(
            loss.detach(),
            e.detach().mean(),
            (0.5 * g.detach().pow(2).sum(1)).mean(),
            (sg * eps).sum(1).mean(),
        )
        return loss, diag, state
