"""Energies whose volume of low energy is limited without a contrastive term.

The plain energy loss (push the data's energy down, nothing up) collapses a
flexible energy to a flat one. Two of the tutorial's three ways to shape an
energy avoid that without negative samples (LeCun et al. 2006, section 4;
LeCun and Huang 2005):

* **architectural**: the model can only give low energy to a fixed volume.
  :class:`PCAEnergy` (``E(y) = |y - W W^T y|^2`` with orthonormal ``W``: low
  only on a ``k``-dimensional subspace) and :class:`KMeansEnergy`
  (``E(y) = min_k |y - w_k|^2``: low only near ``k`` points);
* **regularized**: a penalty on the latent code limits it.
  :class:`SparseCodingEnergy` (``E(y) = min_z 1/2 |y - D z|^2 + lambda |z|_1``
  with unit-norm atoms): without the L1 term an overcomplete dictionary
  reconstructs every ``y`` and the energy is 0 everywhere.

Each is an unconditional :class:`~ebmlab.energies.Energy` over ``y`` of shape
``(N, D)`` whose latent code (projection, cluster, sparse code) is found by
exact minimization inside ``forward``; :func:`ebmlab.objectives.fit_energy_loss`
trains any of them with the energy loss alone, through :func:`ebmlab.train.fit`.

References:
    LeCun, Y., Chopra, S., Hadsell, R., Ranzato, M. and Huang, F. J. (2006).
    A tutorial on energy-based learning. http://yann.lecun.com/exdb/publis/pdf/lecun-06.pdf

    Olshausen, B. A. and Field, D. J. (1996). Emergence of simple-cell
    receptive field properties by learning a sparse code for natural images.
    Nature 381, 607-609.
"""

from __future__ import annotations

__all__ = ["KMeansEnergy", "PCAEnergy", "SparseCodingEnergy"]

import torch
from torch import Tensor, nn

from ..energies.base import Energy


def _randn(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    return torch.randn(shape, generator=generator)


class PCAEnergy(Energy):
    """``E(y) = |(y - mu) - Q Q^T (y - mu)|^2``: squared distance to a subspace.

    ``Q`` is the orthonormal basis (QR) of a learned ``(D, k)`` matrix, so the
    zero-energy set is always a ``k``-dimensional affine subspace: the volume of
    low energy is fixed by the architecture, and the energy loss alone fits
    principal component analysis.

    Arguments:
        dim: ``D``, the width of ``y``.
        n_components: ``k < D``.
        generator: Draw the initial basis from it.

    Example:
        >>> E = PCAEnergy(3, 1)
        >>> tuple(E(torch.randn(5, 3)).shape)
        (5,)
    """

    def __init__(
        self, dim: int, n_components: int, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(dim)
        if not 1 <= int(n_components) < int(dim):
            raise ValueError(f"n_components must be in [1, {dim}), got {n_components}")
        self.n_components = int(n_components)
        self.weight = nn.Parameter(_randn((int(dim), self.n_components), generator))
        self.center = nn.Parameter(torch.zeros(int(dim)))

    def basis(self) -> Tensor:
        """Orthonormal basis ``Q`` of the subspace, shape ``(D, k)``."""
        q, _ = torch.linalg.qr(self.weight)
        return q

    def encode(self, y: Tensor) -> Tensor:
        """The latent code ``Q^T (y - mu)``, shape ``(N, k)``."""
        return (y - self.center) @ self.basis()

    def forward(self, y: Tensor) -> Tensor:
        """Squared reconstruction errors, shape ``(N,)``."""
        q = self.basis()
        r = y - self.center
        return (r - (r @ q) @ q.T).pow(2).sum(-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_components={self.n_components}"


class KMeansEnergy(Energy):
    """``E(y) = min_k |y - w_k|^2``: squared distance to the nearest prototype.

    Low energy only near ``K`` points, whatever the weights: the energy loss
    alone fits (online) K-means. The minimizing ``k`` is the latent variable.

    Arguments:
        dim: Width of ``y``.
        n_clusters: ``K``.
        init: Initial prototypes ``(K, D)`` (e.g. ``K`` data points, as
            K-means is usually started); default: standard normal draws.
        generator: Random generator of the default initialization.

    Example:
        >>> E = KMeansEnergy(2, 3, init=torch.eye(3, 2))
        >>> E(torch.tensor([[1.0, 0.0]])).item()
        0.0
    """

    def __init__(
        self,
        dim: int,
        n_clusters: int,
        *,
        init: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(dim)
        if int(n_clusters) < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
        if init is not None and tuple(init.shape) != (int(n_clusters), int(dim)):
            raise ValueError(
                f"init must have shape ({n_clusters}, {dim}), got {tuple(init.shape)}"
            )
        w = (
            init.detach().clone().float()
            if init is not None
            else _randn((n_clusters, dim), generator)
        )
        self.prototypes = nn.Parameter(w)

    def assign(self, y: Tensor) -> Tensor:
        """Index of the nearest prototype, shape ``(N,)``."""
        return torch.cdist(y, self.prototypes.to(y)).argmin(1)

    def forward(self, y: Tensor) -> Tensor:
        """Squared distances to the nearest prototype, shape ``(N,)``."""
        d2 = (y.unsqueeze(1) - self.prototypes.to(y).unsqueeze(0)).pow(2).sum(-1)
        return d2.min(1).values


class SparseCodingEnergy(Energy):
    """``E(y) = min_z 1/2 |y - D z|^2 + lambda |z|_1`` with unit-norm atoms.

    The code ``z`` is found by ISTA (proximal gradient descent with step
    ``1 / |D|_2^2``, ``n_steps`` iterations) inside ``forward`` and held fixed
    when differentiating (exact at the minimum: envelope theorem). The
    atoms (columns of ``D``) are normalized to unit length, so the penalty
    cannot be dodged by growing ``D`` and shrinking ``z``. With
    ``l1 = 0`` and at least ``dim`` atoms every ``y`` is reconstructed exactly:
    the energy collapses to 0 everywhere.

    Arguments:
        dim: Width of ``y``.
        n_atoms: Number of atoms (``> dim``: overcomplete).
        l1: ``lambda >= 0``.
        n_steps: ISTA iterations.
        generator: Draw the initial atoms from it.

    Example:
        >>> E = SparseCodingEnergy(4, 8, l1=0.1)
        >>> tuple(E(torch.randn(5, 4)).shape), tuple(E.encode(torch.randn(5, 4)).shape)
        ((5,), (5, 8))
    """

    def __init__(
        self,
        dim: int,
        n_atoms: int,
        *,
        l1: float = 0.1,
        n_steps: int = 100,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(dim)
        if int(n_atoms) < 1:
            raise ValueError(f"n_atoms must be >= 1, got {n_atoms}")
        if not l1 >= 0:
            raise ValueError(f"l1 must be >= 0, got {l1}")
        if int(n_steps) < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        self.n_atoms = int(n_atoms)
        self.l1 = float(l1)
        self.n_steps = int(n_steps)
        self.weight = nn.Parameter(_randn((int(dim), self.n_atoms), generator))

    def dictionary(self) -> Tensor:
        """``D`` with unit-norm columns, shape ``(dim, n_atoms)``."""
        return self.weight / self.weight.norm(dim=0, keepdim=True).clamp_min(1e-12)

    def encode(self, y: Tensor) -> Tensor:
        """The sparse code ``argmin_z``, shape ``(N, n_atoms)`` (detached; ISTA)."""
        with torch.no_grad():
            d = self.dictionary().to(y)
            step = 1.0 / float(torch.linalg.matrix_norm(d, ord=2)) ** 2
            z = torch.zeros(y.shape[0], self.n_atoms, dtype=y.dtype, device=y.device)
            dty = y @ d
            gram = d.T @ d
            for _ in range(self.n_steps):
                u = z - step * (z @ gram - dty)
                z = torch.sign(u) * (u.abs() - step * self.l1).clamp_min(0.0)
        return z

    def forward(self, y: Tensor) -> Tensor:
        """``1/2 |y - D z*|^2 + lambda |z*|_1``, shape ``(N,)``."""
        z = self.encode(y)
        r = y - z @ self.dictionary().to(y).T
        return 0.5 * r.pow(2).sum(-1) + self.l1 * z.abs().sum(-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_atoms={self.n_atoms}, l1={self.l1}"
