"""Closed-form targets with exact log Z and exact samplers (tests and baselines).

These energies know their normalizer, so samplers and partition estimators can
be checked against exact answers.
"""

from __future__ import annotations

__all__ = ["Gaussian", "GaussianMixture"]

import math

import torch
from torch import Tensor

from .base import Energy


def _as_tensor(value: Tensor | list | float, dtype: torch.dtype | None = None) -> Tensor:
    t = torch.as_tensor(value)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t.to(dtype) if dtype is not None else t


class Gaussian(Energy):
    """Multivariate normal energy ``E(x) = (x - mu)^T P (x - mu) / 2`` (P = Sigma^-1).

    The energy omits the normalizer, so ``log_z`` is
    ``d/2 log(2 pi) + 1/2 log det Sigma``. Low energy = high probability.

    Arguments:
        mean: Mean, shape ``(D,)``.
        covariance: Symmetric positive-definite covariance, shape ``(D, D)``.

    Example:
        >>> g = Gaussian(torch.zeros(2), torch.eye(2))
        >>> round(g.log_z.item(), 4)  # log(2 pi)
        1.8379
        >>> tuple(g.sample(4, generator=torch.Generator().manual_seed(0)).shape)
        (4, 2)
    """

    is_sample_exact = True

    def __init__(self, mean: Tensor, covariance: Tensor) -> None:
        mean = _as_tensor(mean)
        covariance = _as_tensor(covariance, mean.dtype)
        if mean.dim() != 1:
            raise ValueError(f"mean must have shape (D,), got {tuple(mean.shape)}")
        d = mean.shape[0]
        if tuple(covariance.shape) != (d, d):
            raise ValueError(
                f"covariance must have shape ({d}, {d}) to match mean, "
                f"got {tuple(covariance.shape)}"
            )
        if not torch.allclose(covariance, covariance.T, atol=1e-8, rtol=1e-6):
            raise ValueError("covariance must be symmetric")
        chol, info = torch.linalg.cholesky_ex(covariance)
        if int(info) != 0:
            raise ValueError("covariance must be positive definite")
        super().__init__((d,))
        self.register_buffer("mean", mean.clone())
        self.register_buffer("covariance", covariance.clone())
        # LAPACK returns column-major factors; safetensors only saves contiguous tensors.
        self.register_buffer("scale_tril", chol.contiguous())
        self.register_buffer("precision", torch.cholesky_inverse(chol).contiguous())

    mean: Tensor
    covariance: Tensor
    scale_tril: Tensor
    precision: Tensor

    @classmethod
    def standard(cls, dim: int, dtype: torch.dtype | None = None) -> Gaussian:
        """Standard normal in ``dim`` dimensions."""
        dtype = dtype or torch.get_default_dtype()
        return cls(torch.zeros(dim, dtype=dtype), torch.eye(dim, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` of points ``(N, D)``."""
        r = x - self.mean
        return 0.5 * ((r @ self.precision) * r).sum(-1)

    @property
    def log_z(self) -> Tensor:
        """Exact log normalizer of ``exp(-E)``, a 0-d tensor."""
        d = self.mean.shape[0]
        half_logdet = torch.log(torch.diagonal(self.scale_tril)).sum()
        return 0.5 * d * math.log(2 * math.pi) + half_logdet

    def log_prob(self, x: Tensor) -> Tensor:
        """Normalized log density ``-E(x) - log Z``, shape ``(N,)``."""
        return -self.forward(x) - self.log_z

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Exact samples, shape ``(n, D)``."""
        z = torch.randn(
            n,
            self.mean.shape[0],
            generator=generator,
            dtype=self.mean.dtype,
            device=self.mean.device,
        )
        return self.mean + z @ self.scale_tril.T

    def extra_repr(self) -> str:
        return f"dim={self.mean.shape[0]}"


class GaussianMixture(Energy):
    """Mixture of Gaussians, ``E(x) = -log sum_k w_k N(x; mu_k, Sigma_k)``.

    The energy is the normalized negative log density, so ``log_z`` is 0.

    Arguments:
        weights: Mixture weights, shape ``(K,)``, positive (normalized here).
        means: Component means, shape ``(K, D)``.
        covariances: Component covariances, shape ``(K, D, D)``; or shape
            ``(K,)`` / a float for isotropic components with that variance.

    Example:
        >>> m = GaussianMixture(torch.ones(2), torch.tensor([[-2.0, 0], [2.0, 0]]), 0.25)
        >>> tuple(m(torch.zeros(3, 2)).shape), float(m.log_z)
        ((3,), 0.0)
    """

    is_sample_exact = True

    def __init__(self, weights: Tensor, means: Tensor, covariances: Tensor | float) -> None:
        means = _as_tensor(means)
        weights = _as_tensor(weights, means.dtype)
        if means.dim() != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}")
        k, d = means.shape
        if tuple(weights.shape) != (k,) or not bool((weights > 0).all()):
            raise ValueError(f"weights must be {k} positive numbers, got {weights.tolist()}")
        cov = _as_tensor(covariances, means.dtype)
        if cov.dim() == 0:
            cov = cov.expand(k)
        if cov.dim() == 1:
            if cov.shape[0] != k:
                raise ValueError(
                    f"covariances (isotropic variances) must have shape ({k},), "
                    f"got {tuple(cov.shape)}"
                )
            cov = cov[:, None, None] * torch.eye(d, dtype=means.dtype, device=means.device)
        if tuple(cov.shape) != (k, d, d):
            raise ValueError(f"covariances must have shape ({k}, {d}, {d}), got {cov.shape}")
        chol, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            raise ValueError("every covariance must be positive definite")
        super().__init__((d,))
        self.register_buffer("log_weights", torch.log(weights / weights.sum()))
        self.register_buffer("means", means.clone())
        self.register_buffer("covariances", cov.clone())
        self.register_buffer("scale_tril", chol.contiguous())
        log_norm = 0.5 * d * math.log(2 * math.pi) + torch.log(
            torch.diagonal(chol, dim1=-2, dim2=-1)
        ).sum(-1)
        self.register_buffer("_log_norm", log_norm)

    log_weights: Tensor
    means: Tensor
    covariances: Tensor
    scale_tril: Tensor
    _log_norm: Tensor

    def component_log_prob(self, x: Tensor) -> Tensor:
        """``log w_k + log N(x; mu_k, Sigma_k)``, shape ``(N, K)``."""
        r = x[:, None, :] - self.means  # (N, K, D)
        # Solve L z = r for every component: z = L^{-1} r.
        z = torch.linalg.solve_triangular(
            self.scale_tril, r.transpose(0, 1).transpose(1, 2), upper=False
        )  # (K, D, N)
        maha = z.pow(2).sum(1).T  # (N, K)
        return self.log_weights - self._log_norm - 0.5 * maha

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` (= normalized negative log density) of points ``(N, D)``."""
        return -torch.logsumexp(self.component_log_prob(x), dim=-1)

    @property
    def log_z(self) -> Tensor:
        """Exact log normalizer: 0, the energy is already normalized."""
        return torch.zeros((), dtype=self.means.dtype, device=self.means.device)

    def log_prob(self, x: Tensor) -> Tensor:
        """Normalized log density, shape ``(N,)``."""
        return -self.forward(x)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Exact samples, shape ``(n, D)``."""
        k = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        z = torch.randn(
            n,
            self.means.shape[1],
            generator=generator,
            dtype=self.means.dtype,
            device=self.means.device,
        )
        return self.means[k] + (self.scale_tril[k] @ z[:, :, None]).squeeze(-1)

    def extra_repr(self) -> str:
        k, d = self.means.shape
        return f"n_components={k}, dim={d}"
