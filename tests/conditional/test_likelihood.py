"""Energies with a closed-form normalizer: their NLLs are the classic losses."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F_
from torch import nn

from ebmlab.conditional import (
    BernoulliEnergy,
    CategoricalEnergy,
    ExponentialEnergy,
    GaussianEnergy,
    fit_likelihood,
    fit_mle,
    gibbs_conditional,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is fastest, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_gaussian_nll_is_squared_error_plus_a_constant(dtype):
    F = GaussianEnergy(3, 2, sigma=0.5).to(dtype)
    x, y = torch.randn(6, 3, dtype=dtype), torch.randn(6, 2, dtype=dtype)
    mse = (y - F.mean(x)).pow(2).sum(-1)
    const = math.log(2 * math.pi * 0.25)
    assert torch.allclose(F.nll(x, y), mse / (2 * 0.25) + const)
    normal = torch.distributions.Normal(F.mean(x), 0.5)
    assert torch.allclose(F.nll(x, y), -normal.log_prob(y).sum(-1))


def test_bernoulli_nll_is_binary_cross_entropy(dtype):
    F = BernoulliEnergy(3, hidden=(4,)).to(dtype)
    x = torch.randn(8, 3, dtype=dtype)
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    bce = F_.binary_cross_entropy_with_logits(F.logit(x), y.to(dtype), reduction="none")
    assert torch.allclose(F.nll(x, y), bce)
    assert torch.allclose(F.energies(x).gather(1, y[:, None])[:, 0], F(x, y))


def test_categorical_nll_is_cross_entropy(dtype):
    F = CategoricalEnergy(3, 5).to(dtype)
    x, y = torch.randn(8, 3, dtype=dtype), torch.randint(5, (8,))
    ce = F_.cross_entropy(-F.energies(x), y, reduction="none")
    assert torch.allclose(F.nll(x, y), ce)


def test_exponential_nll_matches_torch_distribution(dtype):
    F = ExponentialEnergy(2).to(dtype)
    x, y = torch.randn(8, 2, dtype=dtype), torch.rand(8, 1, dtype=dtype) * 3
    expo = torch.distributions.Exponential(F.rate(x))
    assert torch.allclose(F.nll(x, y), -expo.log_prob(y[:, 0]))
    assert bool(torch.isinf(F(x[:1], -torch.ones(1, 1, dtype=dtype))).all())


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_log_z_agrees_with_enumeration_and_quadrature(beta):
    x = torch.randn(3, 2, dtype=torch.float64)
    for F in (BernoulliEnergy(2), CategoricalEnergy(2, 4)):
        F = F.double()
        exact = gibbs_conditional(F, x, beta).log_z
        assert torch.allclose(F.log_z(x, beta), exact)
    g = GaussianEnergy(2, 1, sigma=0.7).double()
    quad = gibbs_conditional(g, x, beta, bounds=(-15, 15), resolution=4000).log_z
    assert torch.allclose(g.log_z(x, beta), quad, atol=1e-6)
    e = ExponentialEnergy(2, network=nn.Sequential(nn.Linear(2, 1), nn.Tanh())).double()
    # Rates are softplus(tanh) in (0.13, 1.32): the mass beyond y = 150 is < e^-19.
    quad = gibbs_conditional(e, x, beta, bounds=(0.0, 150.0), resolution=60_000).log_z
    assert torch.allclose(e.log_z(x, beta), quad, atol=1e-3)


def test_fit_mle_closed_forms():
    sample = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]])
    g = fit_mle("gaussian", sample)
    assert torch.allclose(g["mean"], torch.tensor([2.0, 1.0], dtype=torch.float64))
    cov = np.cov(sample.numpy().T, bias=True)
    assert torch.allclose(g["covariance"], torch.tensor(cov))
    assert float(fit_mle("bernoulli", torch.tensor([0, 1, 1, 1]))["p"]) == 0.75
    probs = fit_mle("categorical", torch.tensor([0, 2, 2, 2]), n_classes=4)["probs"]
    assert probs.tolist() == [0.25, 0.0, 0.75, 0.0]
    assert float(fit_mle("exponential", torch.tensor([0.5, 1.5]))["rate"]) == 1.0
    for family, bad, msg in [
        ("poisson", torch.ones(2), "family must be one of"),
        ("bernoulli", torch.tensor([0.0, 0.5]), "only 0 and 1"),
        ("exponential", torch.tensor([-1.0, 2.0]), ">= 0"),
        ("gaussian", torch.tensor([[float("nan")]]), "NaN"),
        ("categorical", torch.tensor([0, 3]), "n_classes"),
    ]:
        with pytest.raises(ValueError, match=msg):
            fit_mle(family, bad, **({"n_classes": 2} if family == "categorical" else {}))


def test_gradient_mle_reaches_the_closed_form(generator):
    n = 1000
    none = torch.empty(n, 0, dtype=torch.float64)
    y = 2.0 + 0.5 * torch.randn(n, 1, dtype=torch.float64, generator=generator)
    g = GaussianEnergy(0, 1, learn_sigma=True).double()
    fit_likelihood(g, none, y)
    mle = fit_mle("gaussian", y)
    assert float(g.mean(none[:1]).detach()) == pytest.approx(float(mle["mean"][0]), abs=1e-6)
    sigma2 = float(torch.exp(2 * g.log_sigma).detach())
    # Both fit the same sample: equal up to the optimizer's tolerance.
    assert sigma2 == pytest.approx(float(mle["covariance"][0, 0]), rel=1e-6)

    t = torch.distributions.Exponential(3.0).sample((n, 1)).double()
    e = ExponentialEnergy(0).double()
    fit_likelihood(e, none, t)
    rate = float(e.rate(none[:1]).detach())
    assert rate == pytest.approx(float(fit_mle("exponential", t)["rate"]), rel=1e-6)

    labels = torch.multinomial(torch.tensor([0.2, 0.5, 0.3]), n, replacement=True)
    c = CategoricalEnergy(0, 3).double()
    fit_likelihood(c, none, labels)
    probs = torch.softmax(-c.energies(none[:1]).detach()[0], 0)
    assert torch.allclose(probs, fit_mle("categorical", labels, n_classes=3)["probs"], atol=1e-6)


def test_logistic_regression_matches_scikit_learn(generator):
    from sklearn.linear_model import LogisticRegression

    x = torch.randn(300, 2, dtype=torch.float64, generator=generator)
    p = torch.sigmoid(x @ torch.tensor([2.0, -1.0], dtype=torch.float64) + 0.5)
    y = torch.bernoulli(p, generator=generator).long()
    F = BernoulliEnergy(2).double()
    fit_likelihood(F, x, y)
    ref = LogisticRegression(C=1e8, tol=1e-10, max_iter=1000).fit(x.numpy(), y.numpy())
    w = F.network[0].weight.detach()[0].numpy()
    b = float(F.network[0].bias.detach()[0])
    # Same data, same likelihood: equal up to the optimizers' tolerances.
    assert np.allclose(w, ref.coef_[0], atol=1e-3)
    assert b == pytest.approx(float(ref.intercept_[0]), abs=1e-3)


def test_saturated_sigmoid_gradient_mse_vanishes_bce_does_not():
    # Output sigmoid(s) for a target 0 while s is large: the prediction is
    # confidently wrong. Gradients with respect to the logit s:
    #   MSE (Gaussian energy on sigmoid(s)): (p - y) p (1 - p) -> 0,
    #   BCE (Bernoulli energy with logit s): p - y -> 1.
    s = torch.tensor([[0.0], [4.0], [8.0]], dtype=torch.float64, requires_grad=True)
    x = torch.empty(3, 0, dtype=torch.float64)
    gauss = GaussianEnergy(0, 1, network=nn.Identity(), sigma=1.0)
    y = torch.zeros(3, 1, dtype=torch.float64)
    (g_mse,) = torch.autograd.grad(gauss(torch.sigmoid(s), y).sum(), s)
    bern = BernoulliEnergy(0, network=nn.Identity())
    (g_bce,) = torch.autograd.grad(bern.nll(s, torch.zeros(3)).sum(), s)
    p = torch.sigmoid(s.detach())
    assert torch.allclose(g_mse, p * p * (1 - p))
    assert torch.allclose(g_bce, p)
    assert float(g_mse[2]) < 1e-3 < 0.99 < float(g_bce[2])
    del x
