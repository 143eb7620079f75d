"""Noise-contrastive estimation: loss and gradients against autograd in float64, the
learned log Z against the exact one, recovery of a Gaussian, and training with fit
(log Z trained, checkpointed and restored)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from quadratic_fit import assert_recovers, minimize, pack, parameter_names, quadratic, unpack
from torch.func import functional_call

from ebmlab.energies import Gaussian, GaussianMixture, MLPEnergy
from ebmlab.objectives import (
    NCEDiagnostics,
    NoiseContrastiveEstimation,
    fit_gaussian_noise,
    fit_mixture_noise,
)
from ebmlab.train import TrainSettings, fit

D = 2
MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
TARGET = Gaussian(MU, COV)
# Noise: wider than the data and off-centre, so the classifier has work to do.
NOISE = Gaussian(torch.tensor([0.5, 0.0], dtype=torch.float64), 2.0 * torch.eye(2).double())


def data(n: int, seed: int = 1) -> torch.Tensor:
    return TARGET.sample(n, generator=torch.Generator().manual_seed(seed))


def test_loss_and_gradients_match_the_formula():
    """J = -mean log s(G(x)) - nu mean log s(-G(y)), G = -E - c - log q - log nu, with the
    same noise draws; gradients in the network's parameters and in c by autograd."""
    torch.manual_seed(0)
    energy = MLPEnergy(2, hidden=(8,), base_scale=2.0).double()
    nce = NoiseContrastiveEstimation(NOISE, noise_ratio=3.0, log_z_init=0.7).double()
    x = data(20)
    loss, diag, state = nce(energy, x, "s", generator=torch.Generator().manual_seed(4))
    assert state == "s" and isinstance(diag, NCEDiagnostics)
    y = NOISE.sample(60, generator=torch.Generator().manual_seed(4))
    c = nce.log_z

    def g(z: torch.Tensor) -> torch.Tensor:
        return -energy(z) - c - NOISE.log_prob(z) - math.log(3.0)

    want = -(F.logsigmoid(g(x)).mean() + 3.0 * F.logsigmoid(-g(y)).mean())
    torch.testing.assert_close(loss, want)
    params = [*energy.parameters(), c]
    for a, b in zip(
        torch.autograd.grad(loss, params), torch.autograd.grad(want, params), strict=True
    ):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(diag.energy_neg, energy(y).mean().detach())
    assert 0.0 <= float(diag.accuracy) <= 1.0


def test_parameter_gradient_gradcheck():
    torch.manual_seed(0)
    energy = MLPEnergy(2, hidden=(5,), activation="tanh").double()
    nce = NoiseContrastiveEstimation(NOISE, noise_ratio=2.0, log_z_init=0.0).double()
    names = [n for n, _ in energy.named_parameters()]
    x = data(6)

    def loss(c: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        def e(z: torch.Tensor) -> torch.Tensor:
            return functional_call(energy, dict(zip(names, params, strict=True)), (z,))

        g = torch.Generator().manual_seed(1)
        return functional_call(nce, {"log_z": c}, (e, x, None), {"generator": g})[0]

    params = tuple(p.detach().clone().requires_grad_(True) for p in energy.parameters())
    inputs = (torch.tensor(0.3, dtype=torch.float64, requires_grad=True), *params)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-6)


def _nce_loss(nce: NoiseContrastiveEstimation, d: int):
    """loss(theta_full, x, seed) with theta_full = (mu, P upper, log Z)."""

    def loss(theta: torch.Tensor, x: torch.Tensor, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        args = (quadratic(theta[:-1], d), x, None)
        return functional_call(nce, {"log_z": theta[-1]}, args, {"generator": g})[0]

    return loss


def _sandwich(loss, theta: torch.Tensor, x: torch.Tensor, n_groups: int = 50):
    """Covariance of the minimizer (see quadratic_fit.sandwich_se)."""
    hess = torch.autograd.functional.hessian(lambda t: loss(t, x, 0), theta)
    grads = torch.stack(
        [
            torch.autograd.functional.jacobian(lambda t, c=c, i=i: loss(t, c, 10_000 + i), theta)
            for i, c in enumerate(x.chunk(n_groups))
        ]
    )
    h_inv = torch.linalg.inv(hess)
    return h_inv @ (torch.atleast_2d(torch.cov(grads.T)) / n_groups) @ h_inv


@pytest.mark.slow
def test_recovers_gaussian_and_its_log_z():
    """Energy and log Z fitted together on 4000 draws (noise ratio 2): mean, precision and
    the learned log Z within 4 sandwich SE (Bonferroni over 6) of the truth, and the learned
    log Z within 4 SE (delta method) of the exact log Z of the fitted energy itself."""
    x = data(4000)
    nce = NoiseContrastiveEstimation(NOISE, noise_ratio=2.0, log_z_init=0.0).double()
    loss = _nce_loss(nce, D)
    eye = torch.eye(D, dtype=torch.float64)
    theta0 = torch.cat([pack(torch.zeros(D, dtype=torch.float64), eye), torch.zeros(1).double()])
    theta = minimize(loss, theta0, x)
    cov = _sandwich(loss, theta, x)
    se = cov.diagonal().sqrt()
    exact_log_z = 0.5 * torch.logdet(2 * math.pi * COV)
    expected = torch.cat([pack(MU, COV.inverse()), exact_log_z.reshape(1)])
    assert_recovers(theta, expected, se, [*parameter_names(D), "log Z"])

    def consistency(t: torch.Tensor) -> torch.Tensor:
        _, prec = unpack(t[:-1], D)
        return t[-1] - 0.5 * (D * math.log(2 * math.pi) - torch.logdet(prec))

    grad = torch.autograd.functional.jacobian(consistency, theta)
    se_c = torch.sqrt(grad @ cov @ grad)
    gap = consistency(theta)
    print(f"learned log Z - log Z(fitted energy) = {float(gap):+.5f}, SE {float(se_c):.2e}")
    assert abs(float(gap)) < 4 * float(se_c)


def test_learned_log_z_of_a_known_energy():
    """With the energy fixed to the true one, NCE estimates only log Z: the fitted value is
    within 4 sandwich SE of the exact log Z, and the importance-sampling initialization
    already lands within 4 of its own standard errors."""
    x = data(4000)
    nce = NoiseContrastiveEstimation(NOISE, noise_ratio=4.0).double()
    energy = Gaussian(MU, COV)  # E = (x - mu)^T Sigma^-1 (x - mu) / 2, log Z exact
    exact = float(energy.log_z)
    # First call: log Z <- log mean exp(-E(y) - log q(y)) over the 16000 noise draws.
    nce(energy, x, None, generator=torch.Generator().manual_seed(0))
    y = NOISE.sample(16000, generator=torch.Generator().manual_seed(0))
    w = torch.exp(-energy(y) - NOISE.log_prob(y))
    se_is = float(w.std() / w.mean()) / math.sqrt(len(w))  # delta method for log mean w
    print(f"IS init {float(nce.log_z.detach()):.5f} exact {exact:.5f} SE {se_is:.2e}")
    assert abs(float(nce.log_z.detach()) - exact) < 4 * se_is

    def loss(theta: torch.Tensor, xs: torch.Tensor, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return functional_call(nce, {"log_z": theta[0]}, (energy, xs, None), {"generator": g})[0]

    theta = minimize(loss, torch.zeros(1, dtype=torch.float64), x)
    se = _sandwich(loss, theta, x).diagonal().sqrt()
    assert_recovers(theta, torch.tensor([exact], dtype=torch.float64), se, ["log Z"])


class _Interrupted(NoiseContrastiveEstimation):
    """Raises KeyboardInterrupt on its n-th call (a run killed mid-training)."""

    def __init__(self, *args, stop_at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls, self.stop_at = 0, stop_at

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return super().forward(*args, **kwargs)


def test_fit_trains_log_z_and_resumes_it(tmp_path):
    """fit adds log Z to the optimizer and checkpoints it: a run interrupted after its
    checkpoint at step 5 and resumed ends exactly where an uninterrupted one does."""
    train = TARGET.sample(300, generator=torch.Generator().manual_seed(2)).float()
    s = TrainSettings(steps=10, batch_size=32, log_every=5, checkpoint_every=5, lr=1e-2)

    def run(out, nce: NoiseContrastiveEstimation, resume: bool = False) -> MLPEnergy:
        torch.manual_seed(0)
        energy = MLPEnergy(2, hidden=(8,), base_scale=3.0)
        fit(energy, train, nce, s, run_dir=out, resume=resume, progress=False)
        return energy

    nce_full = NoiseContrastiveEstimation(train, noise_ratio=2.0, noise_scale=1.5)
    e_full = run(tmp_path / "a", nce_full)
    cut = _Interrupted(train, noise_ratio=2.0, noise_scale=1.5, stop_at=8)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", cut)
    log_z_at_7 = float(cut.log_z.detach())
    nce_res = NoiseContrastiveEstimation(train, noise_ratio=2.0, noise_scale=1.5)
    e_res = run(tmp_path / "b", nce_res, resume=True)
    assert bool(nce_res.is_initialized)
    torch.testing.assert_close(nce_res.log_z, nce_full.log_z, rtol=0, atol=0)
    for p, q in zip(e_full.parameters(), e_res.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # log Z is trained: it moved between step 7 and the end.
    assert log_z_at_7 != float(nce_full.log_z.detach())


def test_noise_from_data_and_from_any_energy_with_exact_samples():
    x = TARGET.sample(20_000, generator=torch.Generator().manual_seed(3))
    g = fit_gaussian_noise(x, scale=2.0)
    # Sample mean and covariance; the covariance is scaled by 2^2.
    torch.testing.assert_close(g.mean, x.mean(0))
    torch.testing.assert_close(g.covariance, 4 * torch.cov(x.T), rtol=1e-5, atol=1e-5)
    mix = GaussianMixture(
        torch.tensor([0.5, 0.5]).double(), torch.tensor([[0.0, 0.0], [2.0, 0.0]]).double(), 1.0
    )
    nce = NoiseContrastiveEstimation(mix, noise_ratio=0.5)
    loss, diag, _ = nce(TARGET, x[:40], None, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and torch.isfinite(diag.log_z)
    assert [n for n, _ in nce.named_parameters()] == ["log_z"]  # the noise is not trained


def test_invalid_arguments():
    with pytest.raises(ValueError, match="noise_ratio must be"):
        NoiseContrastiveEstimation(NOISE, noise_ratio=0.0)
    with pytest.raises(TypeError, match="noise must be"):
        NoiseContrastiveEstimation("gaussian")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale must be"):
        fit_gaussian_noise(torch.randn(10, 2), scale=-1.0)
    with pytest.raises(ValueError, match="at least 2 points"):
        fit_gaussian_noise(torch.randn(1, 2))


def test_mixture_noise_recovers_the_components():
    # Two well-separated components: EM finds their weights, means and covariances within
    # a few standard errors of the sample size (SE of a mean: sigma / sqrt(n_k)).
    n = 8000
    truth = GaussianMixture(
        torch.tensor([0.25, 0.75]).double(),
        torch.tensor([[-3.0, 0.0], [3.0, 1.0]]).double(),
        torch.tensor([0.5, 1.0]).double(),
    )
    x = truth.sample(n, generator=torch.Generator().manual_seed(4))
    q = fit_mixture_noise(x, n_components=2, random_state=0)
    order = torch.argsort(q.means[:, 0])
    w = q.log_weights.exp()[order]
    assert torch.allclose(w, torch.tensor([0.25, 0.75]).double(), atol=4 * math.sqrt(0.25 / n))
    for k, (var, share) in enumerate([(0.5, 0.25), (1.0, 0.75)]):
        se = math.sqrt(var / (share * n))
        assert torch.allclose(q.means[order[k]], truth.means[k], atol=5 * se)
    # A normalized density: exact samples of q score higher under q than under a wider
    # single Gaussian fitted to the same data (the reason to use a mixture as noise).
    y = q.sample(4000, generator=torch.Generator().manual_seed(5))
    assert bool(torch.isfinite(q.log_prob(y)).all())
    assert float(q.log_prob(x).mean()) > float(fit_gaussian_noise(x).log_prob(x).mean()) + 0.5
    with pytest.raises(ValueError, match="n_components must be"):
        fit_mixture_noise(x[:3], n_components=5)
