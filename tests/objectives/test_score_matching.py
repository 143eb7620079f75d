"""Score matching (exact, sliced, denoising): losses and gradients against autograd in
float64, and recovery of a Gaussian's mean and precision within sandwich standard errors."""

from __future__ import annotations

import math

import pytest
import torch
from quadratic_fit import (
    assert_recovers,
    minimize,
    objective_loss,
    pack,
    parameter_names,
    sandwich_se,
    unpack,
)
from torch.func import functional_call

from ebmlab.energies import Gaussian, MLPEnergy
from ebmlab.objectives import (
    OBJECTIVES,
    DenoisingScoreMatching,
    ScoreMatching,
    ScoreMatchingDiagnostics,
    SlicedScoreMatching,
    build_objective,
)
from ebmlab.train import TrainSettings, fit

D = 2
MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)


def gaussian_data(n: int, seed: int = 1) -> torch.Tensor:
    return Gaussian(MU, COV).sample(n, generator=torch.Generator().manual_seed(seed))


def small_mlp(dim: int = 2) -> MLPEnergy:
    torch.manual_seed(0)
    return MLPEnergy(dim, hidden=(6, 6), activation="softplus", base_scale=2.0).double()


# --- losses and gradients against autograd ---------------------------------------------------


def test_exact_loss_matches_autograd_hessian():
    """1/2 |grad E|^2 - tr(Hess E) with the Hessian from torch.autograd.functional.hessian."""
    energy = small_mlp(3)
    x = torch.randn(7, 3, dtype=torch.float64)
    loss, diag, state = ScoreMatching("exact")(energy, x, "state")
    assert state == "state" and isinstance(diag, ScoreMatchingDiagnostics)
    expected = []
    for xi in x:
        g = torch.autograd.functional.jacobian(lambda z: energy(z[None])[0], xi)
        h = torch.autograd.functional.hessian(lambda z: energy(z[None])[0], xi)
        expected.append(0.5 * g.pow(2).sum() - torch.trace(h))
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    torch.testing.assert_close(diag.energy_pos, energy(x).mean().detach())


@pytest.mark.parametrize(
    "objective",
    [
        ScoreMatching("exact"),
        ScoreMatching("hutchinson", n_probes=2),
        SlicedScoreMatching(2),
        SlicedScoreMatching(1, variance_reduction=False, projection="rademacher"),
        DenoisingScoreMatching(0.3),
        DenoisingScoreMatching(noise_levels=[1.0, 0.3, 0.1]),
    ],
    ids=["sm", "sm-hutchinson", "ssm-vr", "ssm", "dsm", "dsm-multi"],
)
def test_parameter_gradient_gradcheck(objective):
    """The loss's gradient in the network's parameters (through grad_x E, built with
    create_graph) agrees with finite differences in float64."""
    energy = small_mlp()
    names = [n for n, _ in energy.named_parameters()]
    x = torch.randn(5, 2, dtype=torch.float64)

    def loss(*params: torch.Tensor) -> torch.Tensor:
        def e(z: torch.Tensor) -> torch.Tensor:
            return functional_call(energy, dict(zip(names, params, strict=True)), (z,))

        return objective(e, x, None, generator=torch.Generator().manual_seed(3))[0]

    params = tuple(p.detach().clone().requires_grad_(True) for p in energy.parameters())
    assert torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-6)


def test_closed_forms_on_a_quadratic_energy():
    """Each loss equals its closed form for E = (x - mu)^T P (x - mu) / 2, with the
    same random draws; so does its gradient in (mu, P) by autograd."""
    theta = pack(torch.tensor([0.3, -0.2], dtype=torch.float64), COV.inverse())
    theta.requires_grad_(True)
    mu, prec = unpack(theta, D)
    x = gaussian_data(64)
    r = x - mu
    grad_e = r @ prec
    g = torch.Generator().manual_seed(5)
    v = torch.randn(x.shape, generator=g, dtype=torch.float64)  # what SSM draws first
    sigma = 0.3
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    closed = {
        "sm": (0.5 * grad_e.pow(2).sum(1) - torch.trace(prec)).mean(),
        "ssm": (0.5 * grad_e.pow(2).sum(1) - ((v @ prec) * v).sum(1)).mean(),
        "dsm": 0.5 * (sigma * (x + sigma * eps - mu) @ prec - eps).pow(2).sum(1).mean(),
    }
    objectives = {
        "sm": ScoreMatching(),
        "ssm": SlicedScoreMatching(1),
        "dsm": DenoisingScoreMatching(sigma),
    }

    def energy(z):
        return 0.5 * (((z - mu) @ prec) * (z - mu)).sum(-1)

    for name, obj in objectives.items():
        loss = obj(energy, x, None, generator=torch.Generator().manual_seed(5))[0]
        torch.testing.assert_close(loss, closed[name])
        (got,) = torch.autograd.grad(loss, theta, retain_graph=True)
        (want,) = torch.autograd.grad(closed[name], theta, retain_graph=True)
        torch.testing.assert_close(got, want)


def test_hutchinson_trace_is_unbiased():
    """Above exact_max_dim, 'auto' estimates the trace; the mean of many estimates matches
    the exact value within 4.5 standard errors of that mean."""
    torch.manual_seed(0)
    energy = MLPEnergy(20, hidden=(16,), activation="tanh").double()
    x = torch.randn(4, 20, dtype=torch.float64)
    auto = ScoreMatching()
    assert not auto.is_exact(20) and auto.is_exact(16)
    exact = ScoreMatching("exact")(energy, x)[1].divergence
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([auto(energy, x, generator=g)[1].divergence for _ in range(400)])
    se = draws.std() / math.sqrt(len(draws))
    print(f"mean {float(draws.mean()):.5f} exact {float(exact):.5f} SE {float(se):.2e}")
    assert abs(float(draws.mean() - exact)) < 4.5 * float(se)


def test_dsm_levels_are_drawn_per_point():
    dsm = DenoisingScoreMatching(noise_levels=[2.0, 0.5])
    energy = small_mlp()
    x = torch.zeros(4000, 2, dtype=torch.float64)
    loss, _, _ = dsm(energy, x, None, generator=torch.Generator().manual_seed(0))
    assert loss.shape == () and torch.isfinite(loss)
    assert dsm.noise_levels == (2.0, 0.5)
    assert repr(dsm) == "DenoisingScoreMatching(noise_levels=[2.0, 0.5])"


def test_invalid_arguments():
    with pytest.raises(ValueError, match="hessian must be one of"):
        ScoreMatching("bogus")
    with pytest.raises(ValueError, match="n_probes"):
        ScoreMatching(n_probes=0)
    with pytest.raises(ValueError, match="n_projections"):
        SlicedScoreMatching(0)
    with pytest.raises(ValueError, match="projection must be"):
        SlicedScoreMatching(projection="sphere")
    with pytest.raises(ValueError, match="noise_std"):
        DenoisingScoreMatching(0.0)
    with pytest.raises(ValueError, match="noise_levels"):
        DenoisingScoreMatching(noise_levels=[0.1, -1.0])
    with pytest.raises(ValueError, match="noise_levels"):
        DenoisingScoreMatching(noise_levels=[])
    with pytest.raises(ValueError, match="objective must be one of"):
        build_objective("ml")


def test_registry_and_command_line_names_agree():
    from ebmlab.cli import OBJECTIVE_NAMES
    from ebmlab.config import ObjectiveConfig, RunConfig
    from ebmlab.runs.build import _objective

    assert set(OBJECTIVE_NAMES) == set(OBJECTIVES)
    data = torch.randn(100, 2)
    for name in OBJECTIVES:
        assert ObjectiveConfig(name=name).name == name
        cfg = RunConfig.model_validate({"objective": {"name": name, "noise_levels": [0.2, 0.1]}})
        built = _objective(cfg, [(-3.0, 3.0)] * 2, (2,), torch.device("cpu"), data=data)
        assert isinstance(built, OBJECTIVES[name]), (name, built)
    assert isinstance(build_objective("ssm", 3), SlicedScoreMatching)


def test_fit_logs_missing_fields_as_nan(tmp_path):
    """train.fit runs an objective without negatives and keeps the CSV columns."""
    energy = MLPEnergy(2, hidden=(8,), base_scale=3.0)
    settings = TrainSettings(steps=6, batch_size=32, log_every=3, checkpoint_every=0)
    data = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    res = fit(
        energy, data, DenoisingScoreMatching(0.2), settings, run_dir=tmp_path, progress=False
    )
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == [
        "step",
        "loss",
        "energy_pos",
        "energy_neg",
        "energy_gap",
        "acceptance_rate",
    ]
    assert len(res.metrics) == 2
    row = res.metrics[-1]
    assert math.isfinite(row["loss"]) and math.isfinite(row["energy_pos"])
    assert math.isnan(row["energy_neg"]) and math.isnan(row["acceptance_rate"])


# --- recovery of a Gaussian --------------------------------------------------------------------


def _expected(precision: torch.Tensor) -> torch.Tensor:
    return pack(MU, precision)


def _smoothed_precision(levels: list[float]) -> torch.Tensor:
    """Optimum of sigma^2-weighted DSM for a quadratic energy: the data covariance plus
    sum(sigma^4) / sum(sigma^2) times the identity."""
    s2 = torch.tensor(levels, dtype=torch.float64) ** 2
    inflation = float((s2**2).sum() / s2.sum())
    return torch.linalg.inv(COV + inflation * torch.eye(D, dtype=torch.float64))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("objective", "precision"),
    [
        (ScoreMatching("exact"), COV.inverse()),
        (ScoreMatching("hutchinson"), COV.inverse()),
        (SlicedScoreMatching(1), COV.inverse()),
        (SlicedScoreMatching(2, variance_reduction=False, projection="rademacher"), COV.inverse()),
        (DenoisingScoreMatching(0.5), _smoothed_precision([0.5])),
        (
            DenoisingScoreMatching(noise_levels=[1.0, 0.5, 0.25]),
            _smoothed_precision([1.0, 0.5, 0.25]),
        ),
    ],
    ids=["sm", "sm-hutchinson", "ssm-vr", "ssm", "dsm", "dsm-multi"],
)
def test_recovers_gaussian_mean_and_precision(objective, precision):
    """On 4000 draws of a correlated Gaussian, the minimizer (random draws fixed) is within
    4 sandwich standard errors (Bonferroni over the 5 parameters) of the objective's
    population optimum: the true mean and precision for score matching, the precision of
    the noise-smoothed data for denoising score matching."""
    x = gaussian_data(4000)
    loss = objective_loss(objective, D)
    theta0 = pack(torch.zeros(D, dtype=torch.float64), torch.eye(D, dtype=torch.float64))
    theta = minimize(loss, theta0, x)
    se = sandwich_se(loss, theta, x)
    assert_recovers(theta, _expected(precision), se, parameter_names(D))
    if isinstance(objective, ScoreMatching) and objective.hessian == "exact":
        # Exact score matching of a Gaussian is its maximum likelihood: the sample mean and
        # the inverse of the (1/n) sample covariance, to optimizer precision.
        mu, prec = unpack(theta, D)
        torch.testing.assert_close(mu, x.mean(0))
        cov_mle = torch.cov(x.T, correction=0)
        torch.testing.assert_close(prec, torch.linalg.inv(cov_mle), rtol=1e-6, atol=1e-6)
