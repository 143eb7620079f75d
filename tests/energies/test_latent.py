"""Architectural and regularized energies: PCA, K-means, sparse coding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ebmlab.energies import KMeansEnergy, PCAEnergy, SparseCodingEnergy
from ebmlab.objectives import fit_energy_loss


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is fastest, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_pca_energy_loss_finds_the_principal_subspace(generator):
    # Data on a noisy 2-D plane in R^4: the energy loss alone recovers the
    # plane, because no setting of the weights can lower the energy anywhere
    # but on some 2-D subspace.
    basis, _ = torch.linalg.qr(torch.randn(4, 2, dtype=torch.float64, generator=generator))
    codes = 3 * torch.randn(1000, 2, dtype=torch.float64, generator=generator)
    noise = 0.01 * torch.randn(1000, 4, dtype=torch.float64, generator=generator)
    data = 1.0 + codes @ basis.T + noise
    E = PCAEnergy(4, 2, generator=generator).double()
    fit_energy_loss(E, data, n_steps=150, lr=0.1, generator=generator)
    q = E.basis().detach()
    # Same subspace: the projections agree.
    assert torch.allclose(q @ q.T, basis @ basis.T, atol=1e-2)
    far = 1.0 + 3 * torch.randn(200, 4, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        assert float(E(data).mean()) < 1e-3 < 1.0 < float(E(far).mean())
    assert E.encode(data).shape == (1000, 2)


def test_kmeans_energy_loss_moves_prototypes_to_the_clusters(generator):
    centers = torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    labels = torch.randint(3, (600,), generator=generator)
    data = centers[labels] + 0.2 * torch.randn(600, 2, dtype=torch.float64, generator=generator)
    init = data[torch.tensor([labels.tolist().index(k) for k in range(3)])]
    E = KMeansEnergy(2, 3, init=init).double()
    fit_energy_loss(E, data, n_steps=300, lr=0.05, generator=generator)
    got = E.prototypes.detach()
    dist = torch.cdist(got, centers)
    assert float(dist.min(1).values.max()) < 0.1, got
    assert torch.equal(E.assign(centers), dist.argmin(0))


def test_sparse_coding_collapses_without_the_l1_penalty(generator):
    # Overcomplete dictionary (8 atoms in R^4): without L1 every y is
    # reconstructed exactly and the energy is 0 everywhere; with L1 the
    # energy stays low on sparse data and high on dense random points.
    atoms = torch.randn(4, 8, dtype=torch.float64, generator=generator)
    atoms = atoms / atoms.norm(dim=0)
    mask = torch.rand(500, 8, generator=generator, dtype=torch.float64) < 0.15
    data = (mask * 2 * torch.randn(500, 8, dtype=torch.float64, generator=generator)) @ atoms.T
    dense = 2 * torch.randn(300, 4, dtype=torch.float64, generator=generator)
    free = SparseCodingEnergy(4, 8, l1=0.0, n_steps=300, generator=generator).double()
    with torch.no_grad():
        assert float(free(dense).max()) < 1e-3  # flat: every answer equally good
    sparse = SparseCodingEnergy(4, 8, l1=0.5, n_steps=100, generator=generator).double()
    fit_energy_loss(sparse, data, n_steps=150, lr=0.05, generator=generator)
    with torch.no_grad():
        assert float(sparse(dense).mean()) > 2 * float(sparse(data).mean())
    z = sparse.encode(data)
    assert float((z == 0).double().mean()) > 0.5  # codes are sparse


def test_ista_solves_the_lasso():
    # 1 atom: the L1-penalized least squares has the soft-threshold solution.
    E = SparseCodingEnergy(1, 1, l1=0.3, n_steps=50).double()
    y = torch.tensor([[1.0], [0.2], [-2.0]], dtype=torch.float64)
    d = float(E.dictionary().detach()[0, 0])
    z = E.encode(y)[:, 0]
    expected = torch.sign(d * y[:, 0]) * (torch.abs(y[:, 0]) - 0.3).clamp_min(0)
    assert torch.allclose(z, expected, atol=1e-10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_components"):
        PCAEnergy(3, 3)
    with pytest.raises(ValueError, match="init must have shape"):
        KMeansEnergy(2, 3, init=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="l1"):
        SparseCodingEnergy(2, 4, l1=-1.0)
    with pytest.raises(ValueError, match="data must have shape"):
        fit_energy_loss(PCAEnergy(2, 1), torch.zeros(3))
