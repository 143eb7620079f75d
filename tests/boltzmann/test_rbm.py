"""RBMs: hand-written gradients, exact enumeration, block Gibbs, AIS, CD training.

Exact answers come from brute-force sums over every joint state ``(v, h)`` of
tiny models (or quadrature for Gaussian visible units); Gibbs samplers are
checked by total variation against exact probabilities (bound from the sample
size) or KS tests against exact marginals; AIS by repeated runs against the
exact log Z.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ebmlab.boltzmann import (
    RBM,
    BernoulliRBM,
    CDTrainer,
    GaussianBernoulliRBM,
    enumerate_binary,
    fit_cd,
    parse_training,
)
from ebmlab.partition import quadrature_log_z
from helpers import assert_ks_marginals, assert_tv_below, mixture_marginal_cdf

F64 = torch.float64


def random_rbm(cls: type[RBM], n_v: int, n_h: int, scale: float, seed: int, **kw) -> RBM:
    g = torch.Generator().manual_seed(seed)
    rbm = cls(n_v, n_h, weight_scale=scale, generator=g, dtype=F64, **kw)
    with torch.no_grad():
        rbm.visible_bias.normal_(0, 0.5, generator=g)
        rbm.hidden_bias.normal_(0, 0.5, generator=g)
    return rbm


def brute_log_joint(rbm: BernoulliRBM) -> torch.Tensor:
    """-E(v, h) for every (v, h), shape (2^V, 2^H)."""
    vs, hs = enumerate_binary(rbm.n_visible, dtype=F64), enumerate_binary(rbm.n_hidden, dtype=F64)
    v = vs.repeat_interleave(len(hs), 0)
    h = hs.repeat(len(vs), 1)
    with torch.no_grad():
        return -rbm.energy(v, h).reshape(len(vs), len(hs))


# -- structure and gradients -----------------------------------------------------


def test_bernoulli_free_energy_gradcheck():
    g = torch.Generator().manual_seed(0)
    rbm = random_rbm(BernoulliRBM, 5, 4, 0.7, 0)
    v = torch.rand(3, 5, generator=g, dtype=F64, requires_grad=True)  # real v: all gradients
    assert "BernoulliFreeEnergy" in rbm.free_energy(v).grad_fn.name()  # hand-written backward
    params = [p.detach().clone().requires_grad_(True) for p in rbm.parameters()]

    def free_energy(v, weight, visible_bias, hidden_bias):
        with torch.no_grad():
            rbm.weight.copy_(weight)
            rbm.visible_bias.copy_(visible_bias)
            rbm.hidden_bias.copy_(hidden_bias)
        from ebmlab.boltzmann.rbm import _BernoulliFreeEnergy

        return _BernoulliFreeEnergy.apply(v, weight, visible_bias, hidden_bias)

    assert torch.autograd.gradcheck(free_energy, (v, *params))


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_cd_grads_equal_autograd(cls):
    rbm = random_rbm(cls, 6, 4, 0.5, 1)
    g = torch.Generator().manual_seed(1)
    v_pos = torch.bernoulli(torch.full((7, 6), 0.4, dtype=F64), generator=g)
    v_neg = torch.randn(5, 6, generator=g, dtype=F64)
    loss = rbm.free_energy(v_pos).mean() - rbm.free_energy(v_neg).mean()
    auto = torch.autograd.grad(loss, list(rbm.parameters()))
    fast = rbm.cd_grads(v_pos, v_neg)
    assert rbm.cd_parameters() is not None
    for name, a, b in zip(("weight", "visible_bias", "hidden_bias"), auto, fast, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")


def test_cd_grads_not_used_when_sigma_is_learned():
    rbm = GaussianBernoulliRBM(3, 2, learn_sigma=True, dtype=F64)
    assert rbm.cd_parameters() is None
    assert not CDTrainer(rbm).is_fast
    assert CDTrainer(BernoulliRBM(3, 2)).is_fast


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_free_energy_sums_out_the_hidden_units(cls):
    rbm = random_rbm(cls, 5, 4, 0.8, 2)
    g = torch.Generator().manual_seed(2)
    v = torch.bernoulli(torch.full((6, 5), 0.5, dtype=F64), generator=g) + 0.3 * torch.randn(
        6, 5, generator=g, dtype=F64
    )
    hs = enumerate_binary(4, dtype=F64)
    with torch.no_grad():
        e = rbm.energy(v.repeat_interleave(len(hs), 0), hs.repeat(len(v), 1)).reshape(len(v), -1)
        torch.testing.assert_close(rbm(v), -torch.logsumexp(-e, 1), rtol=1e-12, atol=1e-12)


def test_bernoulli_exact_log_z_both_layers_and_brute_force():
    rbm = random_rbm(BernoulliRBM, 7, 5, 1.0, 3)
    brute = float(torch.logsumexp(brute_log_joint(rbm).flatten(), 0))
    assert rbm.exact_log_z("hidden").value == pytest.approx(brute, rel=1e-12)
    assert rbm.exact_log_z("visible").value == pytest.approx(brute, rel=1e-12)
    assert rbm.exact_log_z(chunk_size=3).value == pytest.approx(brute, rel=1e-12)
    assert rbm.exact_log_z().details["layer"] == "hidden"  # the smaller one
    probs = rbm.log_prob(enumerate_binary(7, dtype=F64)).exp()
    assert float(probs.sum()) == pytest.approx(1.0, rel=1e-12)


def test_gaussian_exact_log_z_matches_quadrature():
    rbm = random_rbm(GaussianBernoulliRBM, 2, 3, 0.8, 4, sigma=0.7)
    exact = rbm.exact_log_z().value
    quad = quadrature_log_z(rbm, [(-8.0, 8.0), (-8.0, 8.0)], 512)
    assert abs(exact - quad.log_z) < 10 * quad.error + 1e-8, (exact, quad)


def test_log_z_dispatch_and_limits():
    small = BernoulliRBM(30, 4)
    assert small.log_z().method == "exact"
    assert small.log_z().details["layer"] == "hidden"
    wide = BernoulliRBM(27, 27)
    with pytest.raises(ValueError, match="more than 26"):
        wide.exact_log_z()
    with pytest.raises(ValueError, match="layer must be"):
        GaussianBernoulliRBM(3, 3).exact_log_z("visible")
    with pytest.raises(ValueError, match="method must be"):
        small.log_z("magic")


def test_contract_shapes_dtypes_repr_and_state_dict():
    for dtype in (torch.float32, F64):
        rbm = BernoulliRBM(6, 3, dtype=dtype)
        v = torch.ones(4, 6)
        assert rbm(v).shape == (4,) and rbm(v).dtype == dtype
        assert rbm.gibbs(v, 3).shape == (4, 6)
    rbm = random_rbm(BernoulliRBM, 6, 3, 1.0, 5)
    assert "n_visible=6, n_hidden=3" in repr(rbm)
    copy = BernoulliRBM(6, 3, dtype=F64)
    copy.load_state_dict(rbm.state_dict())
    torch.testing.assert_close(copy(torch.ones(2, 6)), rbm(torch.ones(2, 6)))
    with pytest.raises(ValueError, match="x must have shape"):
        rbm(torch.ones(2, 5))
    with pytest.raises(ValueError, match="n_hidden must be >= 1"):
        BernoulliRBM(3, 0)


# -- sampling ----------------------------------------------------------------------


@pytest.mark.slow
def test_block_gibbs_matches_exact_probabilities():
    """End states of independent chains vs the exact p(v) (TV below a bound from n)."""
    rbm = random_rbm(BernoulliRBM, 4, 3, 1.5, 6)
    g = torch.Generator().manual_seed(6)
    x = rbm.sample(20_000, n_steps=30, generator=g)
    idx = (x * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=F64)).sum(1).long()
    counts = torch.bincount(idx, minlength=16)
    exact = rbm.log_prob(enumerate_binary(4, dtype=F64)).exp()
    assert_tv_below(counts, exact)


@pytest.mark.slow
def test_gaussian_bernoulli_gibbs_matches_exact_marginals():
    """p(v) is a mixture over h of N(b + sigma W^T h, sigma^2): KS per marginal."""
    rbm = random_rbm(GaussianBernoulliRBM, 3, 3, 1.0, 7, sigma=0.8)
    g = torch.Generator().manual_seed(7)
    x = rbm.sample(4000, n_steps=40, generator=g)
    hs = enumerate_binary(3, dtype=F64)
    with torch.no_grad():
        log_w = -rbm.hidden_free_energy(hs)
        means = rbm.visible_mean(hs)
    var = (rbm.sigma**2).expand_as(means)
    assert_ks_marginals(x, mixture_marginal_cdf(log_w.softmax(0), means, var))


# -- annealed importance sampling ----------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kw"), [(BernoulliRBM, {}), (GaussianBernoulliRBM, {"sigma": 0.8})]
)
def test_ais_matches_exact_within_repeated_run_errors(cls, kw):
    rbm = random_rbm(cls, 10, 8, 0.8, 8, **kw)
    exact = rbm.exact_log_z().value
    g = torch.Generator().manual_seed(8)
    values = np.array(
        [rbm.ais_log_z(n_chains=64, n_betas=300, generator=g).value for _ in range(8)]
    )
    se = values.std(ddof=1) / math.sqrt(len(values))
    # Annealing bias is negative and small next to the noise at 300 temperatures.
    assert abs(values.mean() - exact) < 4 * se + 0.01, (values, exact)


def test_ais_argument_checks():
    rbm = BernoulliRBM(4, 3)
    with pytest.raises(ValueError, match="betas must increase"):
        rbm.ais_log_z(betas=torch.tensor([0.0, 0.7, 0.5, 1.0]))
    with pytest.raises(ValueError, match="base_visible_bias must have shape"):
        rbm.ais_log_z(base_visible_bias=torch.zeros(3))
    with pytest.raises(ValueError, match="binary visible units only"):
        GaussianBernoulliRBM(4, 3).ais_log_z(data=torch.zeros(2, 4))
    est = rbm.ais_log_z(betas=torch.linspace(0, 1, 11), n_chains=10)
    assert est.details["n_betas"] == 10 and est.n_samples == 10


# -- training --------------------------------------------------------------------


def test_parse_training():
    assert parse_training("pcd") == ("pcd", 1)
    assert parse_training("cd") == ("cd", 1)
    assert parse_training("cd-10") == ("cd", 10)
    assert parse_training("pcd-3") == ("pcd", 3)
    for bad in ("cd-0", "pcd3", "gibbs", "cd-"):
        with pytest.raises(ValueError, match="training must be"):
            parse_training(bad)


@pytest.mark.parametrize("training", ["pcd", "cd-1"])
def test_cd_training_approaches_the_target_likelihood(training):
    """Data from a known RBM: the exact held-out NLL of the fit nears the target's."""
    target = random_rbm(BernoulliRBM, 8, 3, 2.0, 9)
    probs = target.log_prob(enumerate_binary(8, dtype=F64)).exp()
    g = torch.Generator().manual_seed(9)
    states = enumerate_binary(8, dtype=F64)
    train = states[torch.multinomial(probs, 4000, replacement=True, generator=g)]
    test = states[torch.multinomial(probs, 4000, replacement=True, generator=g)]
    model = BernoulliRBM(8, 3, generator=g, dtype=F64)
    nll0 = -float(model.log_prob(test).mean())
    result = fit_cd(
        model, train, n_epochs=15, batch_size=50, learning_rate=0.1, training=training,
        momentum=0.5, lr_schedule="linear", generator=g,
    )  # fmt: skip
    nll = -float(model.log_prob(test).mean())
    best = -float(target.log_prob(test).mean())
    assert len(result.gaps) == 15
    # The fit closes most of the gap between the start and the target.
    assert nll - best < 0.15 * (nll0 - best), (nll0, nll, best)


def test_trainer_options_and_errors():
    rbm = BernoulliRBM(5, 3, dtype=F64)
    trainer = CDTrainer(rbm, training="pcd-2", n_chains=7, momentum=0.9, weight_decay=0.1)
    info = trainer.step(torch.ones(4, 5, dtype=F64))
    assert trainer.chains is not None and trainer.chains.shape == (7, 5)
    assert info is not None and info.gap.shape == ()
    assert trainer.step(torch.ones(4, 5, dtype=F64), return_info=False) is None
    for kw, msg in [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"n_chains": 0}, "n_chains"),
    ]:
        with pytest.raises(ValueError, match=msg):
            CDTrainer(rbm, **kw)
    with pytest.raises(ValueError, match="lr_schedule"):
        fit_cd(rbm, torch.ones(4, 5), lr_schedule="cosine")


def test_weight_decay_shrinks_weights_only():
    rbm = BernoulliRBM(4, 3, weight_scale=1.0, dtype=F64)
    with torch.no_grad():
        rbm.visible_bias.fill_(1.0)
    trainer = CDTrainer(rbm, learning_rate=0.1, weight_decay=1.0, training="cd-1")
    w0 = rbm.weight.detach().clone()
    # The same batch as data and negatives: the likelihood gradient is 0.
    v = torch.ones(3, 4, dtype=F64)
    trainer.model.gibbs = lambda x, k, generator=None: x  # type: ignore[method-assign]
    trainer.step(v)
    torch.testing.assert_close(rbm.weight.detach(), 0.9 * w0)
    torch.testing.assert_close(rbm.visible_bias.detach(), torch.ones(4, dtype=F64))
